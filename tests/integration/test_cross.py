#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A cross build's programs, run under qemu-user, against the native ones through a real
Mosquitto over mutual TLS: what one architecture signs, the other verifies, both ways.
Registered only in cross builds (scripts/cross).

Environment: SECUREMQTT_CROSS_BIN (the cross-built examples), SECUREMQTT_EMULATOR (the
emulator command, ';'-separated as CMake lists it), SECUREMQTT_NATIVE_BIN (native examples)."""

import os
import unittest

from harness import Broker, Subscriber, run, main, TIMEOUT

broker = None
CROSS = os.environ["SECUREMQTT_CROSS_BIN"]
EMULATOR = [a for a in os.environ["SECUREMQTT_EMULATOR"].split(";") if a]
NATIVE = os.environ["SECUREMQTT_NATIVE_BIN"]
# A short reading, UTF-8 beyond ASCII, and 60 KB (lengths past 16 bits in the envelope's MAC input).
PAYLOADS = ["21.5", "Zürich ✓ 温度", "x" * 60000]


def setUpModule():
    global broker
    broker = Broker()


def tearDownModule():
    broker.close()


def cross(name):
    return EMULATOR + [os.path.join(CROSS, name)]


def native(name):
    return [os.path.join(NATIVE, name)]


class CrossInterop(unittest.TestCase):
    def exchange(self, subscriber, publisher, topic):
        sub = Subscriber(subscriber + ["-v", "-q", "1", "-C", str(len(PAYLOADS)), "-W", str(TIMEOUT * 4), "-t", topic,
                                       "-d"] + broker.tls_flags("monitor") + broker.key_flags("device-1"),
                         ready_marker="connected to")
        for p in PAYLOADS:
            out = run(publisher + ["-q", "1", "-t", topic, "-m", p] + broker.tls_flags("device-1")
                      + broker.key_flags("device-1"), timeout=TIMEOUT * 4)
            self.assertEqual(out.returncode, 0, out.stderr)
        code, stdout, stderr = sub.finish(timeout=TIMEOUT * 4)
        self.assertEqual(code, 0, stderr)
        self.assertEqual(stdout, "".join("%s %s\n" % (topic, p) for p in PAYLOADS))

    def test_native_signs_and_the_cross_build_verifies(self):
        self.exchange(cross("secure_subscriber"), native("secure_publisher"), "devices/device-1/to-cross")

    def test_the_cross_build_signs_and_native_verifies(self):
        self.exchange(native("secure_subscriber"), cross("secure_publisher"), "devices/device-1/from-cross")


if __name__ == "__main__":
    main()
