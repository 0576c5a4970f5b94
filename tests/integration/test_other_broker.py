#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A second broker: RabbitMQ 3.10's MQTT plugin over mutual TLS. It speaks MQTT 3.1.1 only, so
it shows what a program asking for MQTT 5 is told, and that everything else works there."""

import os
import unittest

from harness import Subscriber, program, run, main, TIMEOUT
from rabbitmq_server import RabbitMq

rabbit = None


def setUpModule():
    global rabbit
    rabbit = RabbitMq()
    rabbit.key = os.path.join(rabbit.dir, "device-1.hex")
    with open(rabbit.key, "w") as f:
        f.write(os.urandom(32).hex() + "\n")
    os.chmod(rabbit.key, 0o600)


def tearDownModule():
    rabbit.close()


def publish(*extra):
    return run([program("secure_publisher"), "-q", "1", "-t", "devices/device-1/t", "-m", "21.5", "-i", "pub-1",
                "--key-id", "device-1", "--hmac-key", rabbit.key] + rabbit.tls_flags("device-1") + list(extra))


class WithoutMqtt5(unittest.TestCase):
    def test_asking_for_mqtt_5_says_the_broker_does_not_speak_it(self):
        out = publish("-V", "mqttv5")
        self.assertEqual(out.returncode, 1, out.stderr)
        lines = out.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, out.stderr)
        self.assertIn("the broker closed the connection after an MQTT 5 CONNECT without a CONNACK, and accepts MQTT "
                      "3.1.1: it does not support MQTT 5 [protocol_not_supported]", lines[0])

    def test_mqtt_3_1_1_messages_are_signed_and_verified_there(self):
        sub = Subscriber([program("secure_subscriber"), "-v", "-q", "1", "-C", "1", "-W", str(TIMEOUT), "-i", "sub-1",
                          "-t", "devices/#", "--key-id", "device-1", "--hmac-key", rabbit.key, "-d"]
                         + rabbit.tls_flags("device-1"), ready_marker="connected to")
        out = publish("-V", "mqttv311")
        self.assertEqual(out.returncode, 0, out.stderr)
        code, stdout, stderr = sub.finish()
        self.assertEqual(code, 0, stderr)
        self.assertEqual(stdout, "devices/device-1/t 21.5\n")


if __name__ == "__main__":
    main()
