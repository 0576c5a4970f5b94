#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Signed messages through a real Mosquitto over mutual TLS: delivery at every QoS, between
C++ and Python, retained messages, resubscription after a broker restart, and hostile
messages injected by a client that holds valid TLS credentials."""

import os
import signal
import subprocess
import threading
import time
import unittest

from harness import TIMEOUT, Broker, Subscriber, program, run, sm, PY_EXAMPLES, main
import sys

broker = None


def setUpModule():
    global broker
    broker = Broker()


def tearDownModule():
    broker.close()


def cpp_pub(topic, message, qos=1, retain=False, key="device-1", identity="device-1"):
    args = [program("secure_publisher"), "-t", topic, "-m", message, "-q", str(qos)] + \
        broker.tls_flags(identity) + broker.key_flags(key)
    if retain:
        args.append("-r")
    out = run(args)
    assert out.returncode == 0, out.stderr
    return out


def cpp_sub(filters, count, qos=1, keys=("device-1", "device-2"), wait=20, extra=()):
    args = [program("secure_subscriber"), "-v", "-q", str(qos), "-C", str(count), "-W", str(wait)] + \
        broker.tls_flags("monitor") + broker.key_flags(*keys) + list(extra) + ["-d"]
    for f in filters:
        args += ["-t", f]
    return Subscriber(args, ready_marker="connected to")


class Delivery(unittest.TestCase):
    def test_cpp_to_cpp_verified_at_qos_0_1_2(self):
        for qos in (0, 1, 2):
            with self.subTest(qos=qos):
                topic = "devices/device-1/qos%d" % qos
                sub = cpp_sub([topic], 3, qos=qos)
                for i in range(3):
                    cpp_pub(topic, "reading-%d" % i, qos=qos)
                rc, out, err = sub.finish()
                self.assertEqual(rc, 0, err)
                self.assertEqual(out.splitlines(), ["%s reading-%d" % (topic, i) for i in range(3)])
                self.assertNotIn("rejected:", err)  # no message rejected
                self.assertIn("secure_subscriber: 3 verified, 0 rejected\n", err)

    def test_mqtt_5(self):
        topic = "devices/device-1/v5"
        sub = cpp_sub([topic], 2, extra=["-V", "mqttv5"])
        for text in ("five", "cinq"):
            out = run([program("secure_publisher"), "-V", "mqttv5", "-q", "1", "-t", topic, "-m", text] +
                      broker.tls_flags("device-1") + broker.key_flags("device-1"))
            self.assertEqual(out.returncode, 0, out.stderr)
        rc, out, err = sub.finish()
        self.assertEqual(rc, 0, err)
        self.assertEqual(out.splitlines(), [topic + " five", topic + " cinq"])

    def test_a_persistent_session_keeps_messages_while_away_mqtt_311_and_5(self):
        # -c: the broker queues QoS 1 messages for the absent subscriber; under MQTT 5 only if
        # the session outlives the connection (Session Expiry Interval), as mosquitto_sub -c has.
        for version in ("mqttv311", "mqttv5"):
            with self.subTest(version=version):
                topic = "devices/device-1/away-" + version
                flags = ["-c", "-i", "away-" + version, "-V", version]
                sub = cpp_sub([topic], 1, extra=flags)
                cpp_pub(topic, "present")
                rc, out, err = sub.finish()
                self.assertEqual((rc, out.splitlines()), (0, [topic + " present"]), err)
                cpp_pub(topic, "while away")
                sub = cpp_sub([topic], 1, extra=flags)
                rc, out, err = sub.finish()
                self.assertEqual((rc, out.splitlines()), (0, [topic + " while away"]), err)

    def test_cpp_to_python(self):
        topic = "devices/device-1/to-python"
        args = [sys.executable, os.path.join(PY_EXAMPLES, "secure_subscriber.py"), "-v", "-q", "1", "-C", "2",
                "-W", "20", "-t", topic] + broker.tls_flags("monitor") + broker.key_flags("device-1")
        sub = Subscriber(args, ready_after=1.0)
        cpp_pub(topic, "one")
        cpp_pub(topic, "two")
        rc, out, err = sub.finish()
        self.assertEqual(rc, 0, err)
        self.assertEqual(out.splitlines(), [topic + " one", topic + " two"])

    def test_python_to_cpp(self):
        topic = "devices/device-1/from-python"
        sub = cpp_sub([topic], 2)
        for text in ("uno", "dos"):
            out = run([sys.executable, os.path.join(PY_EXAMPLES, "secure_publisher.py"), "-q", "1", "-t", topic,
                       "-m", text] + broker.tls_flags("device-1") + broker.key_flags("device-1"))
            self.assertEqual(out.returncode, 0, out.stderr)
        rc, out, err = sub.finish()
        self.assertEqual(rc, 0, err)
        self.assertEqual(out.splitlines(), [topic + " uno", topic + " dos"])

    def test_retained_message_verified_by_late_subscriber(self):
        topic = "devices/device-1/config"
        cpp_pub(topic, "retained-setting", retain=True)
        time.sleep(0.2)
        sub = cpp_sub([topic], 1)  # subscribes after the publish
        rc, out, err = sub.finish()
        self.assertEqual(rc, 0, err)
        self.assertEqual(out.splitlines(), [topic + " retained-setting"])

    def test_overlapping_filters_print_a_retained_message_once(self):
        topic = "devices/device-1/overlap-cli/setting"
        cpp_pub(topic, "retained-once", retain=True)
        sub = cpp_sub(["devices/device-1/overlap-cli/#", topic], 2)
        cpp_pub(topic, "live")
        rc, out, err = sub.finish()
        self.assertEqual(rc, 0, err)
        self.assertEqual(out.splitlines(), [topic + " retained-once", topic + " live"])

    def test_lines_from_stdin(self):
        topic = "devices/device-1/lines"
        sub = cpp_sub([topic], 3)
        out = run([program("secure_publisher"), "-l", "-q", "1", "-t", topic] + broker.tls_flags("device-1") +
                  broker.key_flags("device-1"), stdin="a\nb\nc\n")
        self.assertEqual(out.returncode, 0, out.stderr)
        rc, out, err = sub.finish()
        self.assertEqual(out.splitlines(), [topic + " a", topic + " b", topic + " c"])

    def test_subscriptions_restored_after_broker_restart(self):
        topic = "devices/device-1/after-restart"
        sub = cpp_sub([topic], 2, wait=40)
        cpp_pub(topic, "before")
        broker.restart()
        # The subscriber reconnects (backoff from 1 s) and, the broker having kept no session for
        # its clean session, subscribes again; keep publishing until it has the second message.
        deadline = time.monotonic() + 30
        while sub.proc.poll() is None and time.monotonic() < deadline:
            cpp_pub(topic, "after")
            time.sleep(0.5)
        rc, out, err = sub.finish()
        self.assertEqual(rc, 0, err)
        self.assertEqual(out.splitlines()[:2], [topic + " before", topic + " after"])


class HostileMessages(unittest.TestCase):
    """Injected by a raw client with valid TLS credentials: each rejected with its reason,
    none delivered."""

    def test_each_bad_message_is_rejected_with_its_reason(self):
        topic = "devices/device-1/hostile/a"
        key1 = sm.load_key_file(broker.keys["device-1"])
        key2 = sm.load_key_file(broker.keys["device-2"])
        signer = sm.Signer(key1, "device-1")
        genuine = signer.sign(topic, b"genuine")
        tampered = bytearray(signer.sign(topic, b"tampered"))
        tampered[-33] ^= 0x01
        stranger = sm.Signer(os.urandom(32), "stranger").sign(topic, b"unknown key")
        out_of_scope = sm.Signer(key2, "device-2").sign(topic, b"device-2 signing for device-1")
        closing = signer.sign(topic, b"last")

        # device-2's key may sign only under devices/device-2/.
        scoped_keys = ["--key-id", "device-1", "--hmac-key", broker.keys["device-1"]]
        args = [program("secure_subscriber"), "-v", "-q", "1", "-C", "2", "-W", "20", "-t", "devices/device-1/hostile/#"] + \
            broker.tls_flags("monitor") + scoped_keys + ["--key-id", "device-2", "--hmac-key", broker.keys["device-2"],
                                                         "--scope", "device-2=devices/device-2/#", "-d"]
        sub = Subscriber(args, ready_marker="connected to")
        broker.raw_publish("device-1", [
            (topic, genuine, False),
            (topic, genuine, False),                          # replayed
            ("devices/device-1/hostile/b", genuine, False),   # moved to another topic
            (topic, bytes(tampered), False),                  # tampered
            (topic, b"plain unsigned text", False),           # unsigned
            (topic, stranger, False),                         # unknown key
            (topic, out_of_scope, False),                     # key outside its scope
            (topic, closing, False),
        ])
        rc, out, err = sub.finish()
        self.assertEqual(rc, 0, err)
        self.assertEqual(out.splitlines(), [topic + " genuine", topic + " last"])
        rejected = [line for line in err.splitlines() if line.startswith("rejected:")]
        self.assertEqual(rejected, [
            "rejected: replayed on topic '%s'" % topic,
            "rejected: bad_mac on topic 'devices/device-1/hostile/b'",
            "rejected: bad_mac on topic '%s'" % topic,
            "rejected: malformed on topic '%s'" % topic,
            "rejected: unknown_key on topic '%s'" % topic,
            "rejected: key_not_allowed_for_topic on topic '%s'" % topic,
        ])


class LastWill(unittest.TestCase):
    def test_a_will_reaches_a_live_subscriber_verified_after_max_age_and_again_after_a_reconnect(self):
        status = "devices/device-1/status"
        # The subscriber accepts readings up to 2 s old, wills up to an hour.
        sub = cpp_sub([status], 2, wait=TIMEOUT * 4, extra=["--max-age", "2", "--will-max-age", "devices/+/status=3600"])
        pub = subprocess.Popen(
            [program("secure_publisher"), "-i", "will-pub", "-l", "-t", "devices/device-1/data", "-k", "1", "-q", "1",
             "--will-topic", status, "--will-payload", "offline", "--will-qos", "1"] +
            broker.tls_flags("device-1") + broker.key_flags("device-1") + ["-d"],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        lines = []
        reader = threading.Thread(target=lambda: lines.extend(iter(pub.stderr.readline, "")), daemon=True)
        reader.start()

        def wait_for(text, count=1):
            deadline = time.monotonic() + TIMEOUT * 2  # a hang guard only
            while sum(text in l for l in list(lines)) < count:
                self.assertIsNone(pub.poll(), "publisher ended early:\n" + "".join(lines))
                self.assertLess(time.monotonic(), deadline, "no '%s' from the publisher:\n%s" % (text, "".join(lines)))
                time.sleep(0.05)

        try:
            wait_for("connected to")
            time.sleep(3)  # the connection, and so its will, is now older than --max-age
            # Silent past 1.5 keep-alives: the broker drops the connection and sends will 1. The
            # publisher is stopped until the broker has said so, then notices and reconnects.
            dropped = "Client will-pub has exceeded timeout"
            os.kill(pub.pid, signal.SIGSTOP)
            try:
                deadline = time.monotonic() + TIMEOUT * 2  # a hang guard only
                while dropped not in broker.log_text():
                    self.assertLess(time.monotonic(), deadline, "the broker never dropped the stopped publisher")
                    time.sleep(0.1)
            finally:
                os.kill(pub.pid, signal.SIGCONT)
            wait_for("reconnected")  # a new connection, with a will signed for it
            time.sleep(3)
        finally:
            pub.kill()  # dies without DISCONNECT: the broker sends will 2
            pub.wait()
        rc, out, err = sub.finish(timeout=TIMEOUT * 4)
        self.assertEqual(rc, 0, err + "\npublisher:\n" + "".join(lines))
        self.assertEqual(out.splitlines(), [status + " offline"] * 2)
        self.assertNotIn("rejected:", err)  # no message rejected


class RefusedPublish(unittest.TestCase):
    def test_a_publish_the_broker_refuses_under_mqtt_5_is_named_and_fails_the_publisher(self):
        # The ACL lets device-1 write only below devices/device-1/.
        args = [program("secure_publisher"), "-V", "mqttv5", "-q", "1", "-t", "devices/device-2/spoof", "-m", "x"] + \
            broker.tls_flags("device-1") + broker.key_flags("device-1")
        out = run(args)
        self.assertEqual(out.returncode, 1, out.stderr)
        self.assertIn("publish to 'devices/device-2/spoof' refused by the broker: Not authorized "
                      "(MQTT 5 reason code 135)", out.stderr)
        self.assertIn("1 message(s) refused or failed", out.stderr)
        self.assertNotIn("within 30 s", out.stderr)


class Properties(unittest.TestCase):
    FORMAT = r"%t|%p|%q|%r|%l|%x|%C|%D|%R|%P|%E|%F|%%\t."

    def test_publish_properties_with_d_and_print_them_with_f(self):
        topic = "devices/device-1/props"
        sub = cpp_sub([topic], 1, extra=["-V", "mqttv5", "-F", self.FORMAT])
        out = run([program("secure_publisher"), "-V", "mqttv5", "-q", "1", "-t", topic, "-m", "21.5",
                   "-D", "publish", "content-type", "text/plain",
                   "-D", "publish", "response-topic", "devices/device-1/replies",
                   "-D", "publish", "correlation-data", "req-7",
                   "-D", "publish", "user-property", "unit", "C",
                   "-D", "publish", "user-property", "site", "north",
                   "-D", "publish", "payload-format-indicator", "1",
                   "-D", "publish", "message-expiry-interval", "600"] +
                  broker.tls_flags("device-1") + broker.key_flags("device-1"))
        self.assertEqual(out.returncode, 0, out.stderr)
        rc, out, err = sub.finish()
        self.assertEqual(rc, 0, err)
        fields = out.rstrip("\n").split("|")
        self.assertEqual(fields[:10], [topic, "21.5", "1", "0", "4", "32312e35", "text/plain", "req-7",
                                       "devices/device-1/replies", "unit:C site:north"], out)
        self.assertTrue(0 < int(fields[10]) <= 600, out)  # the broker's time remaining
        self.assertEqual(fields[11:], ["1", "%\t."], out)

    def test_python_reference_to_cpp_with_properties_on_the_wire(self):
        # The reference signs the properties; paho-mqtt sends them as MQTT 5 properties; the C++
        # subscriber verifies them: the two implementations agree on §2.1 through a real broker.
        import paho.mqtt.client as mqtt
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties
        topic = "devices/device-1/props-py"
        sub = cpp_sub([topic], 1, extra=["-V", "mqttv5", "-F", "%p|%C|%R|%D|%P"])
        covered = {"content_type": "application/json", "response_topic": "devices/device-1/r",
                   "correlation_data": b"\x00id", "user_properties": [("a", "1"), ("a", "2")]}
        with open(broker.keys["device-1"]) as f:
            key = bytes.fromhex(f.read().strip())
        envelope = sm.Signer(key, "device-1").sign(topic, b'{"t":21}', properties=covered, utf8=True)
        props = Properties(PacketTypes.PUBLISH)
        props.ContentType = covered["content_type"]
        props.ResponseTopic = covered["response_topic"]
        props.CorrelationData = covered["correlation_data"]
        props.UserProperty = covered["user_properties"]
        client = broker.raw_client("device-1", "py-props", protocol=mqtt.MQTTv5)
        try:
            client.publish(topic, envelope, qos=1, properties=props).wait_for_publish(TIMEOUT)
        finally:
            client.disconnect()
            client.loop_stop()
        rc, out, err = sub.finish()
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, '{"t":21}|application/json|devices/device-1/r|\x00id|a:1 a:2\n')


    def test_property_and_format_flags_that_cannot_work_are_usage_errors(self):
        base = broker.tls_flags("device-1") + broker.key_flags("device-1")
        cases = [
            ([program("secure_publisher"), "-t", "devices/device-1/x", "-m", "x", "-D", "publish", "content-type",
              "t"], "-D needs -V mqttv5"),
            ([program("secure_publisher"), "-V", "mqttv5", "-t", "devices/device-1/x", "-m", "x", "-D", "connect",
              "session-expiry-interval", "5"], "only publish properties"),
            ([program("secure_publisher"), "-V", "mqttv5", "-t", "devices/device-1/x", "-m", "x", "-D", "publish",
              "topic-alias", "1"], "not a property this program publishes"),
            ([program("secure_subscriber"), "-t", "devices/device-1/x", "-F", "%t %Z"], "unknown specifier %Z"),
        ]
        for args, expected in cases:
            with self.subTest(expected=expected):
                out = run(args + base)
                self.assertEqual(out.returncode, 2, out.stderr)
                self.assertIn(expected, out.stderr)
        # A value MQTT cannot carry: refused before anything is sent (bad configuration).
        out = run([program("secure_publisher"), "-V", "mqttv5", "-t", "devices/device-1/x", "-m", "x", "-D", "publish",
                   "response-topic", "devices/+/r"] + base)
        self.assertEqual(out.returncode, 3, out.stderr)
        self.assertIn("response topic 'devices/+/r' is not a topic name", out.stderr)


class FailClosedOptions(unittest.TestCase):
    def test_a_scope_for_a_key_id_that_is_not_loaded_is_a_configuration_error(self):
        # "device1" is a typo for "device-1": silently ignoring it would leave device-1 unscoped.
        for name in ("secure_publisher", "secure_subscriber"):
            with self.subTest(program=name):
                args = [program(name), "-t", "devices/device-1/x", "--scope", "device1=devices/device-1/#"] + \
                    broker.tls_flags("device-1") + broker.key_flags("device-1")
                if name == "secure_publisher":
                    args += ["-m", "x"]
                out = run(args)
                self.assertEqual(out.returncode, 3, out.stderr)
                self.assertEqual(len(out.stderr.strip().splitlines()), 1, out.stderr)
                self.assertIn("--scope device1=devices/device-1/#: no key with id 'device1' is loaded", out.stderr)


if __name__ == "__main__":
    main()
