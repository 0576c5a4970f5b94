#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Mutual TLS against a real Mosquitto: who gets in, who does not, and what they are told."""

import os
import shutil
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest

from harness import Broker, Subscriber, program, run, main, tool, ROOT

broker = None
other = None  # a second, unrelated CA and broker


def setUpModule():
    global broker, other
    broker = Broker()
    other = Broker("--server-dns", "other.example", "--clients", "device-1")


def tearDownModule():
    broker.close()
    other.close()


def publish(b, identity, extra=(), cafile=None, env=None, topic=None):
    topic = topic or "devices/%s/tls" % identity
    return run([program("secure_publisher"), "-q", "1", "-t", topic, "-m", "x"] + b.tls_flags(identity, cafile) +
               b.key_flags("device-1") + list(extra), env=env)


def make_client_cert(identity, *options):
    """A client certificate for `identity` from the broker's CA, by the project's own script."""
    subprocess.run([os.path.join(ROOT, "certs", "generate_client_cert.sh"), identity, "--out", broker.certs]
                   + list(options), check=True, capture_output=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_listening(port):
    """Until a server just started on `port` takes connections (bounded: 10 s)."""
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)


def raw_tls_connect(port, cafile, cert=None, key=None):
    """A plain TLS client: returns None if the broker accepted us through CONNECT/CONNACK,
    else the error text."""
    ctx = ssl.create_default_context(cafile=cafile)
    if cert:
        ctx.load_cert_chain(cert, key)
    try:
        with socket.create_connection(("localhost", port), timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                # MQTT 3.1.1 CONNECT, client id "raw", clean session, keep-alive 10 s.
                s.sendall(bytes([0x10, 15, 0, 4]) + b"MQTT" + bytes([4, 2, 0, 10, 0, 3]) + b"raw")
                connack = s.recv(4)
                if len(connack) == 4 and connack[0] == 0x20 and connack[3] == 0:
                    return None
                return "no CONNACK (got %r)" % connack
    except (ssl.SSLError, OSError) as e:
        return str(e)


class Credentials(unittest.TestCase):
    def test_valid_client_certificate_gets_in(self):
        out = publish(broker, "device-1")
        self.assertEqual(out.returncode, 0, out.stderr)

    def test_client_without_certificate_is_refused(self):
        err = raw_tls_connect(broker.port, os.path.join(broker.certs, "ca.pem"))
        self.assertIsNotNone(err)
        # And the programs refuse to try: mutual TLS needs a certificate.
        out = run([program("secure_publisher"), "-p", str(broker.port), "-t", "devices/x/y", "-m", "x", "--cafile",
                   os.path.join(broker.certs, "ca.pem")] + broker.key_flags("device-1"))
        self.assertEqual(out.returncode, 3)
        self.assertIn("mutual TLS needs a client certificate", out.stderr)

    def test_certificate_from_another_ca_is_refused(self):
        cert, key = other.cert("device-1")
        # Preflight: it does not chain to the configured CA.
        out = run([program("secure_publisher"), "-p", str(broker.port), "-t", "devices/device-1/t", "-m", "x",
                   "--cafile", os.path.join(broker.certs, "ca.pem"), "--cert", cert, "--key", key] +
                  broker.key_flags("device-1"))
        self.assertEqual(out.returncode, 3)
        self.assertIn("client certificate '%s': does not chain to CA file" % cert, out.stderr)
        # Trusting both CAs locally gets past the preflight; the broker still says no.
        both = os.path.join(broker.dir, "both-cas.pem")
        with open(both, "w") as f:
            f.write(open(os.path.join(broker.certs, "ca.pem")).read() + open(os.path.join(other.certs, "ca.pem")).read())
        out = run([program("secure_publisher"), "-h", "localhost", "-p", str(broker.port), "-t", "devices/device-1/t",
                   "-m", "x", "--cafile", both, "--cert", cert, "--key", key] + broker.key_flags("device-1"))
        self.assertEqual(out.returncode, 1)
        self.assertIn("[certificate_not_trusted]", out.stderr)
        self.assertIsNotNone(raw_tls_connect(broker.port, both, cert, key))

    def test_expired_client_certificate_is_refused(self):
        make_client_cert("expired", "--not-before", "20200101000000Z", "--not-after", "20200201000000Z")
        out = publish(broker, "expired")
        self.assertEqual(out.returncode, 3)
        self.assertIn("expired.pem': expired on Feb  1 00:00:00 2020 GMT", out.stderr)
        cert, key = broker.cert("expired")
        err = raw_tls_connect(broker.port, os.path.join(broker.certs, "ca.pem"), cert, key)
        self.assertIsNotNone(err)

    def test_not_yet_valid_client_certificate_is_refused(self):
        make_client_cert("future", "--not-before", "20990101000000Z", "--not-after", "20991231000000Z")
        out = publish(broker, "future")
        self.assertEqual(out.returncode, 3)
        self.assertIn("future.pem': not valid before Jan  1 00:00:00 2099 GMT", out.stderr)

    def test_der_empty_and_mismatched_files_are_named_with_their_cause(self):
        cert, key = broker.cert("device-1")
        der = os.path.join(broker.dir, "device-1.der")
        subprocess.run(["openssl", "x509", "-in", cert, "-outform", "DER", "-out", der], check=True)
        empty = os.path.join(broker.dir, "empty.pem")
        open(empty, "w").close()
        other_key = broker.cert("monitor")[1]
        cases = [
            (["--cert", der], "client certificate '%s': is a DER certificate, PEM is needed (convert: openssl x509 "
                              "-inform DER -in %s -out %s.pem)" % (der, der, der)),
            (["--cert", empty], "client certificate '%s': file is empty" % empty),
            (["--key", other_key], "client key '%s': does not match certificate '%s'" % (other_key, cert)),
            (["--cafile", os.path.join(broker.dir, "missing-ca.pem")],
             "CA file '%s': No such file or directory" % os.path.join(broker.dir, "missing-ca.pem")),
            (["--tls-version", "tlsv1.1"], "unknown TLS version 'tlsv1.1' (use tlsv1.2 or tlsv1.3)"),
        ]
        for override, message in cases:
            with self.subTest(message=message):
                flags = broker.tls_flags("device-1")
                for i in range(0, len(override), 2):
                    if override[i] in flags:
                        flags[flags.index(override[i]) + 1] = override[i + 1]
                    else:
                        flags += override[i:i + 2]
                out = run([program("secure_publisher"), "-q", "1", "-t", "devices/device-1/t", "-m", "x"] + flags +
                          broker.key_flags("device-1"))
                self.assertEqual(out.returncode, 3, out.stderr)
                self.assertEqual(out.stderr.strip(), "secure_publisher: " + message)
        out = run([program("secure_publisher"), "-p", str(broker.port), "-h", "mqtts://bad host", "-t", "a/b", "-m",
                   "x"] + broker.tls_flags("device-1")[4:] + broker.key_flags("device-1"))
        self.assertEqual(out.returncode, 3)
        self.assertIn("malformed broker URI", out.stderr)

    def test_revoked_client_certificate_is_refused_once_on_the_crl(self):
        make_client_cert("lost-device")
        self.assertEqual(publish(broker, "lost-device").returncode, 0)
        subprocess.run([os.path.join(ROOT, "certs", "revoke_client_cert.sh"), "lost-device", "--out", broker.certs],
                       check=True, capture_output=True)
        broker.restart()  # reads the new CRL (as does SIGHUP)
        out = publish(broker, "lost-device")
        self.assertEqual(out.returncode, 1)
        self.assertIn("certificate revoked", out.stderr)
        self.assertIn("[certificate_revoked]", out.stderr)
        self.assertEqual(publish(broker, "device-1").returncode, 0)  # others unaffected

    def test_encrypted_key_with_and_without_its_passphrase(self):
        passfile = os.path.join(broker.dir, "pass.txt")
        with open(passfile, "w") as f:
            f.write("correct horse\n")
        make_client_cert("locked", "--passphrase-file", passfile)
        out = publish(broker, "locked", ["--key-passphrase-file", passfile])
        self.assertEqual(out.returncode, 0, out.stderr)
        wrong = os.path.join(broker.dir, "wrong.txt")
        with open(wrong, "w") as f:
            f.write("incorrect\n")
        out = publish(broker, "locked", ["--key-passphrase-file", wrong])
        self.assertEqual(out.returncode, 3)
        self.assertIn("locked.key': wrong passphrase", out.stderr)
        self.assertNotIn("incorrect", out.stderr)
        out = publish(broker, "locked")
        self.assertIn("the key is encrypted and no passphrase was given", out.stderr)


def make_crl(b, name, *dates):
    """A CRL from `b`'s CA at b.dir/name (the CA's current revocations); dates: the last and
    next update, for a CRL that is out of date."""
    path = os.path.join(b.dir, name)
    extra = ["-crl_lastupdate", dates[0], "-crl_nextupdate", dates[1]] if dates else []
    subprocess.run(["openssl", "ca", "-batch", "-config", os.path.join(b.certs, "ca.cnf"), "-gencrl", "-out", path]
                   + extra, check=True, capture_output=True)
    return path


class Revocation(unittest.TestCase):
    """--crlfile: the client checks the broker's certificate (and its own) against CRLs."""

    def test_a_broker_whose_certificate_is_revoked_is_refused_with_a_crl(self):
        revoked = Broker("--clients", "device-1,monitor")
        self.addCleanup(revoked.close)
        crl = os.path.join(revoked.certs, "crl.pem")
        self.assertEqual(publish(revoked, "device-1", ["--crlfile", crl]).returncode, 0)  # not revoked yet
        said = subprocess.run([os.path.join(ROOT, "certs", "revoke_client_cert.sh"), "server", "--out", revoked.certs],
                              check=True, capture_output=True, text=True)
        # It names what it revoked by the certificate's own subject, not by the file's name.
        self.assertIn("revoked server.pem (CN=localhost)", said.stdout)
        out = publish(revoked, "device-1", ["--crlfile", crl])
        self.assertEqual(out.returncode, 1, out.stderr)
        self.assertIn("certificate verify failed (certificate revoked) [certificate_revoked]", out.stderr)
        out = run([program("secure_subscriber"), "-t", "devices/#", "-C", "1", "-W", "20", "--crlfile", crl] +
                  revoked.tls_flags("monitor") + revoked.key_flags("device-1"))
        self.assertEqual(out.returncode, 1, out.stderr)
        self.assertIn("[certificate_revoked]", out.stderr)
        # Without a CRL the client does not know (the documented default).
        self.assertEqual(publish(revoked, "device-1").returncode, 0)

    def test_a_good_broker_is_accepted_with_a_crl(self):
        out = publish(broker, "device-1", ["--crlfile", make_crl(broker, "current-crl.pem")])
        self.assertEqual(out.returncode, 0, out.stderr)

    def test_our_own_revoked_certificate_is_refused_by_the_preflight(self):
        make_client_cert("stolen")
        subprocess.run([os.path.join(ROOT, "certs", "revoke_client_cert.sh"), "stolen", "--out", broker.certs],
                       check=True, capture_output=True)
        crl = make_crl(broker, "stolen-crl.pem")
        out = publish(broker, "stolen", ["--crlfile", crl])
        self.assertEqual(out.returncode, 3, out.stderr)
        self.assertEqual(out.stderr.strip(), "secure_publisher: client certificate '%s': revoked (CRL file '%s')"
                         % (broker.cert("stolen")[0], crl))

    def test_an_expired_crl_is_an_error(self):
        crl = make_crl(broker, "expired-crl.pem", "20200101000000Z", "20200201000000Z")
        out = publish(broker, "device-1", ["--crlfile", crl])
        self.assertEqual(out.returncode, 3, out.stderr)
        self.assertEqual(out.stderr.strip(), "secure_publisher: CRL file '%s': expired on Feb  1 00:00:00 2020 GMT "
                                             "(issue a new one: openssl ca -gencrl)" % crl)

    def test_a_crl_not_signed_by_the_configured_ca_is_an_error(self):
        crl = os.path.join(other.certs, "crl.pem")
        out = publish(broker, "device-1", ["--crlfile", crl])
        self.assertEqual(out.returncode, 3, out.stderr)
        self.assertEqual(out.stderr.strip(), "secure_publisher: CRL file '%s': not signed by a CA in CA file '%s'"
                         % (crl, os.path.join(broker.certs, "ca.pem")))

    def test_missing_or_unreadable_crl_files_are_named(self):
        missing = os.path.join(broker.dir, "no-such-crl.pem")
        out = publish(broker, "device-1", ["--crlfile", missing])
        self.assertEqual(out.returncode, 3, out.stderr)
        self.assertEqual(out.stderr.strip(), "secure_publisher: CRL file '%s': No such file or directory" % missing)
        not_a_crl = broker.cert("device-1")[0]
        out = publish(broker, "device-1", ["--crlfile", not_a_crl])
        self.assertEqual(out.returncode, 3, out.stderr)
        self.assertEqual(out.stderr.strip(), "secure_publisher: CRL file '%s': no CRL in the file" % not_a_crl)

    def test_a_broker_chain_without_a_crl_for_its_ca_is_refused(self):
        # Revocation is checked for every certificate of the chain: a CA with no CRL in the
        # file fails closed. Here the broker's CA is trusted, but only our own CA has a CRL.
        both = os.path.join(broker.dir, "both-cas-crl.pem")
        with open(both, "w") as f:
            f.write(open(os.path.join(broker.certs, "ca.pem")).read() + open(os.path.join(other.certs, "ca.pem")).read())
        out = run([program("secure_publisher"), "-h", "localhost", "-p", str(other.port), "-t", "devices/device-1/t",
                   "-m", "x", "--cafile", both, "--cert", broker.cert("device-1")[0], "--key", broker.cert("device-1")[1],
                   "--crlfile", make_crl(broker, "only-ours-crl.pem"), "--insecure"] + broker.key_flags("device-1"))
        self.assertEqual(out.returncode, 1, out.stderr)
        # Both test CAs are named "securemqtt test CA", so OpenSSL may take our CRL for the
        # other CA's by its issuer name and find its signature wrong: refused either way.
        self.assertRegex(out.stderr, r"certificate verify failed \((unable to get certificate CRL|CRL signature "
                                     r"failure)\) \[certificate_not_trusted\]")


class NotAuthorised(unittest.TestCase):
    def test_a_connack_refusal_is_reported_as_not_authorized(self):
        refusing = Broker("--password-auth", "--clients", "device-1")
        self.addCleanup(refusing.close)
        out = publish(refusing, "device-1")
        self.assertEqual(out.returncode, 1)
        self.assertIn("not authorised (CONNACK 5) [not_authorized]", out.stderr)
        # MQTT 5: the CONNACK's reason code, by name.
        out = publish(refusing, "device-1", extra=["-V", "mqttv5"])
        self.assertEqual(out.returncode, 1)
        self.assertRegex(out.stderr, r"the broker refused the connection: (not_authorized|bad_user_name_or_password) "
                                     r"\(MQTT 5 reason code 13[45]\) \[not_authorized\]")


class Hostname(unittest.TestCase):
    def test_server_certificate_for_another_host_is_refused(self):
        # Paho leaves the host name check off unless asked; the session turns it on.
        out = publish(other, "device-1")
        self.assertEqual(out.returncode, 1)
        self.assertIn("hostname mismatch", out.stderr)
        self.assertIn("[hostname_mismatch]", out.stderr)

    def test_an_ip_address_in_a_form_the_certificate_does_not_name_is_a_hostname_mismatch(self):
        # 127.1 reaches 127.0.0.1, but the certificate names "127.0.0.1", and Paho checks the
        # text given (as a host name, then as an IP address); OpenSSL cannot parse "127.1" as one.
        flags = broker.tls_flags("device-1")
        flags[flags.index("-h") + 1] = "127.1"
        out = run([program("secure_publisher"), "-q", "1", "-t", "devices/device-1/tls", "-m", "x"] + flags +
                  broker.key_flags("device-1"))
        self.assertEqual(out.returncode, 1, out.stderr)
        self.assertIn("certificate verify failed (hostname mismatch) [hostname_mismatch]", out.stderr)

    def test_accepted_only_with_hostname_checking_turned_off(self):
        out = publish(other, "device-1", ["--insecure"])
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("hostname verification is turned off", out.stderr)


PERMISSIVE_OPENSSL_CONF = """openssl_conf = default_conf
[default_conf]
ssl_conf = ssl_sect
[ssl_sect]
system_default = system_default_sect
[system_default_sect]
MinProtocol = TLSv1
CipherString = DEFAULT@SECLEVEL=0
"""


class TlsFloor(unittest.TestCase):
    """Paho ignores its TLS version setting on OpenSSL 3; the session enforces the floor through
    the cipher configuration, even when the system's OpenSSL configuration would allow less."""

    def serve(self, *version_flags):
        conf = os.path.join(broker.dir, "permissive-openssl.cnf")
        with open(conf, "w") as f:
            f.write(PERMISSIVE_OPENSSL_CONF)
        env = dict(os.environ, OPENSSL_CONF=conf)
        port = free_port()
        server = subprocess.Popen(
            ["openssl", "s_server", "-accept", str(port), "-cert", os.path.join(broker.certs, "server.pem"), "-key",
             os.path.join(broker.certs, "server.key"), "-cipher", "DEFAULT@SECLEVEL=0", "-quiet"] +
            list(version_flags), env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.addCleanup(server.kill)
        wait_until_listening(port)
        return port, env

    def check_refused(self, port, env, extra=()):
        out = run([program("secure_publisher"), "-h", "localhost", "-p", str(port), "-t", "devices/device-1/t", "-m",
                   "x", "--cafile", os.path.join(broker.certs, "ca.pem"), "--cert", broker.cert("device-1")[0], "--key",
                   broker.cert("device-1")[1]] + broker.key_flags("device-1") + list(extra), env=env)
        self.assertEqual(out.returncode, 1, out.stderr)
        self.assertIn("[tls_handshake]", out.stderr)
        # The handshake fails on the protocol version, not on anything else.
        self.assertRegex(out.stderr, "unsupported protocol|no protocols available|protocol version|no ciphers available")
        return out

    def test_tls_1_1_server_refused_by_the_1_2_floor(self):
        port, env = self.serve("-tls1_1")
        # The server really speaks TLS 1.1 to a client that allows it...
        probe = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-tls1_1", "-cipher",
                                "DEFAULT@SECLEVEL=0"], input="", capture_output=True, text=True, env=env, timeout=20)
        self.assertIn("Protocol  : TLSv1.1", probe.stdout)
        # ...and the session refuses it.
        self.check_refused(port, env)

    def test_tls_1_2_server_refused_by_a_1_3_floor(self):
        port, env = self.serve("-tls1_2")
        self.check_refused(port, env, ["--tls-version", "tlsv1.3"])

    def test_a_cipher_list_that_lowers_the_security_level_is_refused(self):
        port, env = self.serve("-tls1_1")
        for ciphers, level in (("DEFAULT:@SECLEVEL=0", 0), ("HIGH:@SECLEVEL=1", 1)):
            with self.subTest(ciphers=ciphers):
                out = run([program("secure_publisher"), "-h", "localhost", "-p", str(port), "-t",
                           "devices/device-1/t", "-m", "x", "--ciphers", ciphers] + broker.tls_flags("device-1")[4:] +
                          broker.key_flags("device-1"), env=env)
                self.assertEqual(out.returncode, 3, out.stderr)
                self.assertEqual(out.stderr.strip(),
                                 "secure_publisher: TLS: cipher list '%s' (--ciphers) sets OpenSSL's security level "
                                 "to %d; at least 2 is required" % (ciphers, level))

    def test_a_cipher_list_with_a_1_3_floor_is_refused(self):
        out = run([program("secure_publisher"), "-t", "devices/device-1/t", "-m", "x", "--tls-version", "tlsv1.3",
                   "--ciphers", "ECDHE+AESGCM"] + broker.tls_flags("device-1") + broker.key_flags("device-1"))
        self.assertEqual(out.returncode, 3, out.stderr)
        self.assertEqual(out.stderr.strip(),
                         "secure_publisher: TLS: a cipher list (--ciphers) applies to TLS 1.2 only and would be "
                         "ignored with a TLS 1.3 floor (--tls-version tlsv1.3); give one or the other")

    def test_a_stricter_system_policy_is_never_lowered_by_the_floor(self):
        # The system's configuration asks for TLS 1.3 and security level 3: the session must not
        # bring the process down to its own floor of TLS 1.2 and level 2.
        port, _ = self.serve("-tls1_2")
        conf = os.path.join(broker.dir, "strict-openssl.cnf")
        with open(conf, "w") as f:
            f.write(PERMISSIVE_OPENSSL_CONF.replace("MinProtocol = TLSv1", "MinProtocol = TLSv1.3")
                    .replace("DEFAULT@SECLEVEL=0", "DEFAULT:@SECLEVEL=3"))
        cert, key = broker.cert("device-1")
        out = run([tool("securemqtt_tls_floor_probe"), str(port), "DEFAULT", os.path.join(broker.certs, "ca.pem"),
                   cert, key], env=dict(os.environ, OPENSSL_CONF=conf))
        self.assertEqual(out.returncode, 0, out.stderr)
        lines = out.stdout.splitlines()
        self.assertRegex(lines[0], r"^before: refused \(")  # the system policy refuses TLS 1.2
        self.assertRegex(lines[1], r"^after: refused \(")   # and still does with a session

    def test_once_a_session_exists_no_tls_client_in_the_process_goes_below_1_2(self):
        # A client built as Paho builds its context, with a list that allows TLS 1.1: the floor
        # is the process-wide OpenSSL configuration's, not the cipher string's.
        port, env = self.serve("-tls1_1")
        cert, key = broker.cert("device-1")
        out = run([tool("securemqtt_tls_floor_probe"), str(port), "DEFAULT:@SECLEVEL=0",
                   os.path.join(broker.certs, "ca.pem"), cert, key], env=env)
        self.assertEqual(out.returncode, 0, out.stderr)
        lines = out.stdout.splitlines()
        self.assertEqual(lines[0], "before: TLSv1.1")  # the server and the client really allow it
        self.assertRegex(lines[1], r"^after: refused \((unsupported protocol|no protocols available|"
                                   r"tlsv1 alert protocol version)\)$")


class Alpn(unittest.TestCase):
    """ALPN (e.g. AWS IoT Core's x-amzn-mqtt-ca on port 443) against openssl s_server, which
    prints what the client offered and what it selected. s_server speaks no MQTT: the publisher
    fails after the handshake either way; what counts is the handshake."""

    def serve(self, alpn):
        port = free_port()
        log = open(os.path.join(broker.dir, "s_server-%d.log" % port), "w+")
        self.addCleanup(log.close)
        server = subprocess.Popen(
            ["openssl", "s_server", "-accept", str(port), "-cert", os.path.join(broker.certs, "server.pem"), "-key",
             os.path.join(broker.certs, "server.key"), "-CAfile", os.path.join(broker.certs, "ca.pem"), "-Verify",
             "1", "-alpn", alpn], stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT)  # stdin open: it serves
        self.addCleanup(server.wait)
        self.addCleanup(server.kill)
        wait_until_listening(port)
        return port, log

    def publish_to(self, port, *alpn_flags):
        flags = []
        for p in alpn_flags:
            flags += ["--tls-alpn", p]
        return run([program("secure_publisher"), "-h", "localhost", "-p", str(port), "-t", "devices/device-1/t", "-m",
                    "x", "--cafile", os.path.join(broker.certs, "ca.pem"), "--cert", broker.cert("device-1")[0],
                    "--key", broker.cert("device-1")[1], "-k", "5"] + broker.key_flags("device-1") + flags)

    def test_the_protocols_are_offered_and_one_is_agreed(self):
        port, log = self.serve("x-amzn-mqtt-ca")
        out = self.publish_to(port, "mqtt", "x-amzn-mqtt-ca")
        self.assertEqual(out.returncode, 1, out.stderr)  # no MQTT behind it
        self.assertNotIn("ALPN", out.stderr)
        log.seek(0)
        text = log.read()
        self.assertIn("ALPN protocols advertised by the client: mqtt, x-amzn-mqtt-ca", text)
        self.assertIn("ALPN protocols selected: x-amzn-mqtt-ca", text)

    def test_a_server_that_agrees_to_none_is_a_clear_error(self):
        port, _ = self.serve("something-else")
        out = self.publish_to(port, "x-amzn-mqtt-ca")
        self.assertEqual(out.returncode, 1, out.stderr)
        self.assertIn("the broker accepts none of the ALPN protocols offered (x-amzn-mqtt-ca) [tls_handshake]",
                      out.stderr)

    def test_without_alpn_nothing_is_offered(self):
        port, log = self.serve("x-amzn-mqtt-ca")
        out = self.publish_to(port)
        self.assertEqual(out.returncode, 1, out.stderr)
        log.seek(0)
        self.assertNotIn("ALPN protocols advertised", log.read())


class DiagnosisProbe(unittest.TestCase):
    """What a failed connect is told when the TLS handshake works and MQTT does not: the probe's
    own CONNECT and how the other side answers it. The other side is a small TLS server here
    (mutual TLS, the broker's certificates) that answers each connection as told, because no
    real broker fails in these ways on demand; RabbitMQ (test_other_broker.py) is the real one."""

    def serve(self, answer):
        """`answer(index, level)` says what connection `index` (0: Paho's, then the probe's)
        gets for its CONNECT of protocol level `level`: 'close' (FIN, no close_notify),
        'reset', or bytes to send and then close."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(os.path.join(broker.certs, "server.pem"), os.path.join(broker.certs, "server.key"))
        ctx.load_verify_locations(os.path.join(broker.certs, "ca.pem"))
        ctx.verify_mode = ssl.CERT_REQUIRED
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        listener.settimeout(0.2)
        self.levels = []
        stop = threading.Event()

        def handle(raw, index):
            try:
                raw.settimeout(10)
                with ctx.wrap_socket(raw, server_side=True) as s:
                    head = s.recv(2)  # CONNECT: type, one length byte (short ids only)
                    body = b""
                    while len(head) == 2 and len(body) < head[1]:
                        chunk = s.recv(head[1] - len(body))
                        if not chunk:
                            break
                        body += chunk
                    level = body[6] if len(body) > 6 else None
                    self.levels.append(level)
                    what = answer(index, level)
                    if what == "reset":
                        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    elif what != "close":
                        for i in range(len(what)):  # byte by byte: the reader must gather them
                            s.sendall(what[i:i + 1])
                            time.sleep(0.01)
                        time.sleep(0.2)
            except (OSError, ssl.SSLError):
                pass

        def accept_loop():
            index = 0
            while not stop.is_set():
                try:
                    raw, _ = listener.accept()
                except socket.timeout:
                    continue
                except OSError:
                    return
                threading.Thread(target=handle, args=(raw, index), daemon=True).start()
                index += 1

        thread = threading.Thread(target=accept_loop, daemon=True)
        thread.start()
        self.addCleanup(listener.close)
        self.addCleanup(thread.join, 10)
        self.addCleanup(stop.set)
        return listener.getsockname()[1]

    def publish_to(self, port, version):
        return run([program("secure_publisher"), "-h", "localhost", "-p", str(port), "-t", "devices/device-1/t", "-m",
                    "x", "-V", version, "--cafile", os.path.join(broker.certs, "ca.pem"), "--cert",
                    broker.cert("device-1")[0], "--key", broker.cert("device-1")[1]] + broker.key_flags("device-1"))

    def test_closed_after_mqtt_5_but_answering_3_1_1_is_protocol_not_supported(self):
        connack_ok = bytes([0x20, 0x02, 0x00, 0x00])
        port = self.serve(lambda index, level: connack_ok if level == 4 else "close")
        out = self.publish_to(port, "mqttv5")
        self.assertEqual(out.returncode, 1, out.stderr)
        self.assertIn("the broker closed the connection after an MQTT 5 CONNECT without a CONNACK, and accepts MQTT "
                      "3.1.1: it does not support MQTT 5 [protocol_not_supported]", out.stderr)
        self.assertEqual(self.levels, [5, 5, 4])  # Paho's, the probe's, the probe's 3.1.1 question

    def test_closed_after_both_versions_is_not_blamed_on_the_version(self):
        port = self.serve(lambda index, level: "close")
        out = self.publish_to(port, "mqttv5")
        self.assertEqual(out.returncode, 1, out.stderr)
        self.assertIn("the broker closed the connection after an MQTT 5 CONNECT without a CONNACK (MQTT 3.1.1 "
                      "likewise; its log may say why) [other]", out.stderr)
        out = self.publish_to(port, "mqttv311")
        self.assertIn("the broker closed the connection after CONNECT without a CONNACK (its log may say why) [other]",
                      out.stderr)

    def test_a_3_1_1_refusal_is_not_taken_for_support(self):
        refused = bytes([0x20, 0x02, 0x00, 0x05])
        port = self.serve(lambda index, level: refused if level == 4 else "close")
        out = self.publish_to(port, "mqttv5")
        self.assertEqual(out.returncode, 1, out.stderr)
        self.assertIn("the broker closed the connection after an MQTT 5 CONNECT without a CONNACK; the broker refused "
                      "an MQTT 3.1.1 one: not authorised (CONNACK 5) [other]", out.stderr)

    def test_a_reset_is_named_as_such(self):
        port = self.serve(lambda index, level: "reset")
        out = self.publish_to(port, "mqttv5")
        self.assertEqual(out.returncode, 1, out.stderr)
        self.assertIn("the connection was reset after CONNECT (Connection reset by peer) [other]", out.stderr)

    def test_a_refusal_with_long_properties_is_read_whole(self):
        reason = b"r" * 190  # a reason string: the Remaining Length takes two bytes
        props = bytes([0x1F]) + len(reason).to_bytes(2, "big") + reason
        body = bytes([0x00, 0x87, len(props) & 0x7F | 0x80, len(props) >> 7]) + props
        refusal = bytes([0x20, len(body) & 0x7F | 0x80, len(body) >> 7]) + body
        port = self.serve(lambda index, level: "close" if index == 0 else refusal)
        out = self.publish_to(port, "mqttv5")
        self.assertEqual(out.returncode, 1, out.stderr)
        # The probe's own refusal may be about its client id, not ours: named, not classified.
        self.assertIn("the broker refused a diagnostic connection made just after: not_authorized (MQTT 5 reason code "
                      "135) [other]", out.stderr)

    def test_a_probe_that_gets_in_says_the_failure_did_not_repeat(self):
        port = self.serve(lambda index, level: "close" if index == 0 else bytes([0x20, 0x03, 0x00, 0x00, 0x00]))
        out = self.publish_to(port, "mqttv5")
        self.assertEqual(out.returncode, 1, out.stderr)
        self.assertIn("(a diagnostic connection made just after was accepted) [other]", out.stderr)


class OsTrustStore(unittest.TestCase):
    """--tls-use-os-certs trusts OpenSSL's default locations. The tests point them (SSL_CERT_FILE,
    SSL_CERT_DIR) at a store of their own, never at the machine's."""

    def store(self, *ca_files):
        d = tempfile.mkdtemp(prefix="securemqtt-os-store-")
        self.addCleanup(shutil.rmtree, d, True)
        bundle = os.path.join(d, "ca-certificates.crt")
        with open(bundle, "w") as out:
            for ca in ca_files:
                with open(ca) as f:
                    out.write(f.read())
        empty_dir = os.path.join(d, "certs")
        os.makedirs(empty_dir)
        return dict(os.environ, SSL_CERT_FILE=bundle, SSL_CERT_DIR=empty_dir)

    def publish_os(self, env, *extra):
        cert, key = broker.cert("device-1")
        return run([program("secure_publisher"), "-h", "localhost", "-p", str(broker.port), "-q", "1", "-t",
                    "devices/device-1/os-store", "-m", "x", "--tls-use-os-certs", "--cert", cert, "--key", key] +
                   broker.key_flags("device-1") + list(extra), env=env)

    def test_a_broker_whose_ca_is_in_the_system_store_is_trusted(self):
        out = self.publish_os(self.store(os.path.join(other.certs, "ca.pem"), os.path.join(broker.certs, "ca.pem")))
        self.assertEqual(out.returncode, 0, out.stderr)

    def test_a_broker_whose_ca_is_not_in_it_is_refused(self):
        out = self.publish_os(self.store(os.path.join(other.certs, "ca.pem")))
        self.assertEqual(out.returncode, 1, out.stderr)
        self.assertIn("[certificate_not_trusted]", out.stderr)

    def test_the_system_store_needs_the_host_name_checked(self):
        # With public CAs, --insecure would let any holder of any public certificate pose as the broker.
        out = self.publish_os(self.store(os.path.join(broker.certs, "ca.pem")), "--insecure")
        self.assertEqual(out.returncode, 3, out.stderr)
        self.assertIn("needs the broker's host name checked", out.stderr)

    def test_the_system_store_and_a_ca_file_exclude_each_other(self):
        out = self.publish_os(self.store(os.path.join(broker.certs, "ca.pem")), "--cafile",
                              os.path.join(broker.certs, "ca.pem"))
        self.assertEqual(out.returncode, 3, out.stderr)
        self.assertIn("exclude each other", out.stderr)


class ForeignCertificates(unittest.TestCase):
    """The programs with a CA and certificates made by plain openssl commands (RSA), not by
    the project's scripts."""

    def test_certificates_from_plain_openssl_commands(self):
        d = tempfile.mkdtemp(prefix="securemqtt-foreign-")
        self.addCleanup(shutil.rmtree, d, True)
        certs = os.path.join(d, "certs")
        os.makedirs(certs)

        def sh(*args):
            subprocess.run(args, check=True, capture_output=True, cwd=certs)

        sh("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days",
           "30", "-subj", "/CN=Foreign Test CA", "-addext", "basicConstraints=critical,CA:TRUE")
        for name, ext in (("server", "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth"),
                          ("device-1", "extendedKeyUsage=clientAuth"), ("monitor", "extendedKeyUsage=clientAuth")):
            with open(os.path.join(certs, name + ".ext"), "w") as f:
                f.write(ext + "\n")
            sh("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", name + ".key", "-out", name + ".csr",
               "-subj", "/CN=" + ("localhost" if name == "server" else name))
            sh("openssl", "x509", "-req", "-in", name + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
               "-out", name + ".pem", "-days", "30", "-extfile", name + ".ext")
        sh("openssl", "req", "-new", "-x509", "-key", "ca.key", "-out", "/dev/null", "-subj", "/CN=x")  # key is usable
        # An empty CRL for the broker configuration's crlfile.
        with open(os.path.join(certs, "crl.cnf"), "w") as f:
            f.write("[ca]\ndefault_ca=c\n[c]\ndatabase=%s/index.txt\ncrlnumber=%s/crlnumber\ndefault_md=sha256\n"
                    "default_crl_days=30\n" % (certs, certs))
        open(os.path.join(certs, "index.txt"), "w").close()
        with open(os.path.join(certs, "crlnumber"), "w") as f:
            f.write("01\n")
        sh("openssl", "ca", "-config", "crl.cnf", "-gencrl", "-keyfile", "ca.key", "-cert", "ca.pem", "-out", "crl.pem")
        foreign = Broker.__new__(Broker)
        foreign.dir, foreign.extra = d, ["--clients", ""]
        foreign.start()
        self.addCleanup(foreign.stop)
        foreign.certs = certs
        foreign.keys = broker.keys
        topic = "devices/device-1/foreign"
        sub = Subscriber([program("secure_subscriber"), "-v", "-q", "1", "-C", "1", "-W", "20", "-t", topic] +
                         foreign.tls_flags("monitor") + foreign.key_flags("device-1") + ["-d"],
                         ready_marker="connected to")
        out = publish(foreign, "device-1", topic=topic)
        self.assertEqual(out.returncode, 0, out.stderr)
        rc, out, err = sub.finish()
        self.assertEqual(rc, 0, err)
        self.assertEqual(out.splitlines(), [topic + " x"])


if __name__ == "__main__":
    main()
