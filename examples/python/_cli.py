# SPDX-License-Identifier: Apache-2.0
"""Flags shared by secure_publisher.py and secure_subscriber.py (as mosquitto_pub/sub spell them)."""

import argparse
import ssl

import securemqtt_envelope as sm


def parser(description):
    p = argparse.ArgumentParser(description=description, add_help=False)
    p.add_argument("--help", action="help", help="show this help and exit")
    p.add_argument("-h", "--host", default="localhost")
    p.add_argument("-p", "--port", type=int, default=8883)
    p.add_argument("-t", "--topic", action="append", required=True)
    p.add_argument("-q", "--qos", type=int, choices=[0, 1, 2], default=0)
    p.add_argument("-i", "--id", default="")
    p.add_argument("-k", "--keepalive", type=int, default=60)
    p.add_argument("-c", "--disable-clean-session", action="store_true")
    p.add_argument("-d", "--debug", action="store_true")
    p.add_argument("--cafile")
    p.add_argument("--capath")
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--tls-version", choices=["tlsv1.2", "tlsv1.3"], default="tlsv1.2")
    p.add_argument("--ciphers")
    p.add_argument("--insecure", action="store_true")
    p.add_argument("--key-id", action="append", default=[])
    p.add_argument("--hmac-key", action="append", required=True)
    return p


def keys(args):
    """{key_id: key bytes} from the --key-id/--hmac-key pairs (key id 'default' when omitted)."""
    ids = args.key_id + ["default"] * (len(args.hmac_key) - len(args.key_id))
    return {kid: sm.load_key_file(path) for kid, path in zip(ids, args.hmac_key)}


def tls_context(args):
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=args.cafile, capath=args.capath)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3 if args.tls_version == "tlsv1.3" else ssl.TLSVersion.TLSv1_2
    if args.ciphers:
        ctx.set_ciphers(args.ciphers)
    ctx.load_cert_chain(args.cert, args.key)
    ctx.check_hostname = not args.insecure
    return ctx


def client(mqtt, args):
    c = mqtt.Client(client_id=args.id, clean_session=not args.disable_clean_session)
    c.tls_set_context(tls_context(args))
    return c
