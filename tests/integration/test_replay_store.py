#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The durable replay store (secure_subscriber --replay-store FILE) against a real Mosquitto:
what a subscriber delivered before a SIGKILL stays `replayed` after its restart, retained state
cannot be rolled back with a captured envelope, and -- for contrast -- what the in-memory default
accepts after a restart. The attacker is a raw client with valid TLS credentials and no keys,
re-posting envelopes it captured."""

import os
import shutil
import subprocess
import tempfile
import time
import unittest

from redis_servers import free_port
from harness import TIMEOUT, Broker, LiveSubscriber, program, sm, main

broker = None


def setUpModule():
    global broker
    broker = Broker()


def tearDownModule():
    broker.close()


def Running(filters, extra=()):
    return LiveSubscriber(broker, filters, extra)


def settle(sub, topic, signer):
    """Publishes a sentinel and waits for it: the subscriber confirms each message after its
    handler returned and handles them one at a time, so every message before the sentinel is
    then in the store (the store file is locked by its owner, so it is not read directly)."""
    seen = len(sub.out)
    broker.raw_publish("device-1", [(topic, signer.sign(topic, b"sentinel"), False)])
    sub.wait(lambda: len(sub.out) >= seen + 1, "the sentinel")


class Durable(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="securemqtt-store-it-")
        self.store = os.path.join(self.dir, "replay.db")
        self.key = sm.load_key_file(broker.keys["device-1"])

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def test_what_was_delivered_before_a_sigkill_is_rejected_after_the_restart(self):
        topic = "devices/device-1/store/readings"
        flags = ["-c", "-i", "store-sub-a", "--replay-store", self.store]
        n = 20
        signer = sm.Signer(self.key, "device-1")
        captured = [signer.sign(topic, b"reading-%d" % i) for i in range(n)]
        sub = Running([topic], flags)
        broker.raw_publish("device-1", [(topic, e, False) for e in captured])
        sub.wait(lambda: len(sub.out) >= n, "%d messages" % n)
        settle(sub, topic, signer)
        sub.kill()
        self.assertEqual(sub.out, ["%s reading-%d" % (topic, i) for i in range(n)] + [topic + " sentinel"])

        sub = Running([topic], flags)
        fresh = sm.Signer(self.key, "device-1")
        broker.raw_publish("device-1", [(topic, e, False) for e in captured] +
                           [(topic, fresh.sign(topic, b"after-%d" % i), False) for i in range(3)] +
                           [(topic, signer.sign(topic, b"old stream goes on"), False)])
        sub.wait(lambda: topic + " old stream goes on" in sub.out, "the last new message")
        sub.wait(lambda: len(sub.rejected()) >= n, "%d rejections" % n)
        sub.stop()
        # The sentinel may come first: killed before its confirmation (and so its PUBACK), it is
        # the broker's to redeliver to the persistent session, and delivered once more.
        after = [l for l in sub.out if l != topic + " sentinel"]
        # Confirmed but killed before its PUBACK, it is redelivered and rejected instead.
        redelivered = len(sub.out) - len(after)
        self.assertLessEqual(redelivered, 1)
        self.assertEqual(after, ["%s after-%d" % (topic, i) for i in range(3)] + [topic + " old stream goes on"])
        self.assertIn(len(sub.rejected()), (n, n + 1 - redelivered))
        self.assertEqual(set(sub.rejected()), {"rejected: replayed on topic '%s'" % topic})

    def retained_door(self, topic):
        """unlock-door then lock-door, retained, one second apart by their signed timestamps."""
        now = sm.now_ms()
        unlock = sm.Signer(self.key, "device-1", clock=lambda: now - 1000).sign(topic, b"unlock-door", retain=True)
        self.lock_signer = sm.Signer(self.key, "device-1", clock=lambda: now)
        return unlock, self.lock_signer.sign(topic, b"lock-door", retain=True)

    def test_a_captured_retained_unlock_cannot_roll_back_a_later_lock_after_a_restart(self):
        topic = "devices/device-1/store/door"
        unlock, lock = self.retained_door(topic)
        sub = Running([topic], ["--replay-store", self.store])
        broker.raw_publish("device-1", [(topic, unlock, True), (topic, lock, True)])
        sub.wait(lambda: len(sub.out) >= 2, "both door messages")
        settle(sub, topic, self.lock_signer)
        sub.stop()
        self.assertEqual(sub.out, [topic + " unlock-door", topic + " lock-door", topic + " sentinel"])

        sub = Running([topic], ["--replay-store", self.store])
        sub.wait(lambda: len(sub.rejected()) >= 1, "the retained lock-door, already delivered")
        broker.raw_publish("device-1", [(topic, unlock, True)])  # the attacker's rollback
        sub.wait(lambda: len(sub.rejected()) >= 2, "the rollback rejected")
        sub.stop()
        self.assertEqual(sub.out, [])
        self.assertEqual(sub.rejected(), ["rejected: replayed on topic '%s'" % topic] * 2)

    def test_a_subscriber_that_only_saw_the_lock_rejects_an_unlock_it_never_saw(self):
        # The per-topic record, not the counters: this store never saw unlock-door's stream.
        topic = "devices/device-1/store/door2"
        unlock, lock = self.retained_door(topic)
        broker.raw_publish("device-1", [(topic, unlock, True), (topic, lock, True)])
        sub = Running([topic], ["--replay-store", self.store])
        sub.wait(lambda: len(sub.out) >= 1, "the retained lock-door")
        settle(sub, topic, self.lock_signer)
        sub.stop()
        sub = Running([topic], ["--replay-store", self.store])
        sub.wait(lambda: len(sub.rejected()) >= 1, "the retained lock-door again")
        broker.raw_publish("device-1", [(topic, unlock, True)])
        sub.wait(lambda: len(sub.rejected()) >= 2, "the rollback rejected")
        sub.stop()
        self.assertEqual(sub.rejected(), ["rejected: replayed on topic '%s'" % topic] * 2)

    def test_without_a_store_a_restarted_subscriber_accepts_the_captured_unlock(self):
        # What the store buys: the in-memory default forgets everything at a restart.
        topic = "devices/device-1/store/door3"
        unlock, lock = self.retained_door(topic)
        sub = Running([topic])
        broker.raw_publish("device-1", [(topic, unlock, True), (topic, lock, True)])
        sub.wait(lambda: len(sub.out) >= 2, "both door messages")
        sub.stop()
        sub = Running([topic])
        sub.wait(lambda: len(sub.out) >= 1, "the retained lock-door, delivered again")
        broker.raw_publish("device-1", [(topic, unlock, True)])
        sub.wait(lambda: len(sub.out) >= 2, "the rollback")
        sub.stop()
        self.assertEqual(sub.out, [topic + " lock-door", topic + " unlock-door"])
        self.assertEqual(sub.rejected(), [])

    def test_a_store_that_cannot_be_used_is_one_line_and_exit_3(self):
        garbage = os.path.join(self.dir, "garbage.db")
        with open(garbage, "wb") as f:
            f.write(b"x" * 4096)
        closed = "redis://127.0.0.1:%d" % free_port()  # nothing listens there
        cases = ((garbage, "replay store '%s': file is not a database" % garbage),
                 (self.dir, "replay store '%s'" % self.dir),
                 (closed, "replay store: connect to Redis '%s' failed: Connection refused" % closed),
                 ("redis://127.0.0.1:6379/x", "replay store: Redis location 'redis://127.0.0.1:6379/x': "),
                 ("rediss://127.0.0.1:6379", "replay store: TLS to Redis (rediss://) is not supported"))
        for location, words in cases:
            with self.subTest(location=location):
                out = subprocess.run([program("secure_subscriber"), "-t", "devices/#", "--replay-store", location] +
                                     broker.tls_flags("monitor") + broker.key_flags("device-1"),
                                     capture_output=True, text=True, timeout=TIMEOUT)
                self.assertEqual(out.returncode, 3, out.stderr)
                self.assertEqual(len(out.stderr.strip().splitlines()), 1, out.stderr)
                self.assertIn(words, out.stderr)


if __name__ == "__main__":
    main()
