#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Publishes signed securemqtt envelopes over mutual TLS with paho-mqtt (mosquitto_pub's flags).

    secure_publisher.py -h localhost -p 8883 -t devices/device-1/temp -m 21.5 -q 1 \\
        --cafile ca.pem --cert device-1.pem --key device-1.key --key-id device-1 --hmac-key device-1.hex

-l publishes each stdin line. Exit status: 0 published, 1 connection failure, 2 bad usage.
"""

import sys

import paho.mqtt.client as mqtt

import _cli
import securemqtt_envelope as sm


def main():
    p = _cli.parser("Publish signed messages over mutual TLS.")
    p.add_argument("-m", "--message")
    p.add_argument("-f", "--file")
    p.add_argument("-l", "--stdin-line", action="store_true")
    p.add_argument("-r", "--retain", action="store_true")
    args = p.parse_args()
    if sum(x is not None and x is not False for x in (args.message, args.file, args.stdin_line)) != 1:
        p.error("give exactly one of -m MESSAGE, -f FILE, -l")
    keys = _cli.keys(args)
    key_id = next(iter(keys))
    signer = sm.Signer(keys[key_id], key_id)
    client = _cli.client(mqtt, args)
    try:
        client.connect(args.host, args.port, args.keepalive)
    except Exception as e:  # ssl.SSLError, OSError
        print("secure_publisher.py: connect to %s:%d failed: %s" % (args.host, args.port, e), file=sys.stderr)
        return 1
    client.loop_start()
    topic = args.topic[0]
    if args.message is not None:
        payloads = [args.message.encode()]
    elif args.file:
        with open(args.file, "rb") as f:
            payloads = [f.read()]
    else:
        payloads = (line.rstrip("\n").encode() for line in sys.stdin)
    infos = [client.publish(topic, signer.sign(topic, payload, args.retain), args.qos, args.retain)
             for payload in payloads]
    for info in infos:
        info.wait_for_publish(timeout=30)
        if not info.is_published():
            print("secure_publisher.py: a message was not acknowledged within 30 s", file=sys.stderr)
            return 1
    client.disconnect()
    client.loop_stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
