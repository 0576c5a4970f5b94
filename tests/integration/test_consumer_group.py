#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Verifying consumer groups against a real Mosquitto and real Redis: three secure_subscriber
processes share one MQTT shared subscription ($share/GROUP/...) and one replay store in Redis (a
server, and a three-node Redis Cluster). One publisher stream of QoS 1 messages; an attacker with
valid TLS credentials (device-1's certificate, its own client id, no keys) re-posts captured
envelopes throughout; one member is SIGKILLed inside a handler and restarted. Every genuine
message must reach the group's output exactly once, every replay be rejected, nothing be lost.

Also the store's outages (Redis stopped and restarted under traffic), and the durable SQLite
store with a single subscriber killed inside its handler."""

import collections
import os
import random
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import unittest

from harness import SANITIZED, SLOWDOWN, TIMEOUT, Broker, LiveSubscriber, sm, main
from redis_servers import RedisCluster, RedisServer

broker = None
N = 120 if SANITIZED else 300  # genuine messages per scenario
LONG = 4 * TIMEOUT  # guards whole scenarios: only ends a hang


def setUpModule():
    global broker
    broker = Broker()


def tearDownModule():
    broker.close()


class Attacker:
    """Re-posts captured envelopes with a raw client of its own (valid TLS, no keys)."""

    def __init__(self, client_id):
        self.client = broker.raw_client("device-1", client_id)
        self.sent = 0

    def replay(self, topic, envelopes):
        for e in envelopes:
            self.client.publish(topic, e, 1).wait_for_publish(timeout=TIMEOUT)
            self.sent += 1

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


def genuine(topic, n):
    signer = sm.Signer(sm.load_key_file(broker.keys["device-1"]), "device-1")
    return [(b"m-%04d" % i, signer.sign(topic, b"m-%04d" % i)) for i in range(n)]


def publish_with_replays(topic, messages, client_id, replay_every=10, replays_each=3):
    """Publishes the genuine stream in order; after every `replay_every` messages the attacker
    re-posts `replays_each` envelopes captured so far (one of them the newest: it races the
    original's handling). Returns how many replays were sent."""
    pub = broker.raw_client("device-1", client_id + "-pub")
    attacker = Attacker(client_id + "-attacker")
    rnd = random.Random(7)
    try:
        for i, (_, envelope) in enumerate(messages):
            pub.publish(topic, envelope, 1).wait_for_publish(timeout=TIMEOUT)
            if (i + 1) % replay_every == 0:
                seen = [e for _, e in messages[:i + 1]]
                attacker.replay(topic, [seen[-1]] + rnd.sample(seen, replays_each - 1))
        return attacker.sent
    finally:
        pub.disconnect()
        pub.loop_stop()
        attacker.close()


class Group:
    """Members of one shared subscription; their outputs and rejections together."""

    def __init__(self, name, topic, store, version, size=3, first_extra=()):
        self.filter = "$share/%s/%s" % (name, topic)
        self.name, self.store, self.version = name, store, version
        self.retired = []  # members that ended (killed), kept for their output
        self.members = [self.start(k, first_extra if k == 0 else ()) for k in range(size)]

    def start(self, k, more=()):
        flags = ["-c", "-i", "%s-member-%d" % (self.name, k), "-V", self.version, "--replay-store", self.store,
                 "--store-lease", "2", "--store-hold", "15"] + list(more)
        return LiveSubscriber(broker, [self.filter], flags)

    def everyone(self):
        return self.retired + self.members

    def outputs(self):
        return [l.split(" ", 1)[1] for m in self.everyone() for l in list(m.out)]

    def rejections(self):
        return [l for m in self.everyone() for l in m.rejected()]

    def wait(self, condition, what):
        deadline = time.monotonic() + LONG
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError("group never got %s; outputs %d, rejections %d; last stderr:\n%s" % (
                    what, len(self.outputs()), len(self.rejections()),
                    "\n".join(l for m in self.everyone() for l in m.err[-8:])))
            time.sleep(0.1)

    def stop(self):
        for m in self.members:
            m.stop()


class ConsumerGroup(unittest.TestCase):
    def scenario(self, name, store, version):
        topic = "devices/device-1/group/%s" % name
        messages = genuine(topic, N)
        # Member 0 dies inside the handler of its 20th message: neither recorded nor
        # acknowledged, so the broker redelivers it to the restarted member (persistent session)
        # once the dead member's reservation lease ends.
        group = Group(name, topic, store, version, first_extra=["--kill-in-handler", "20"])
        done = {}
        publisher = threading.Thread(target=lambda: done.update(
            replays=publish_with_replays(topic, messages, name)))
        publisher.start()
        try:
            victim = group.members[0]
            self.assertEqual(victim.ended(), -signal.SIGKILL)
            group.retired.append(victim)
            group.members[0] = group.start(0)
            publisher.join(LONG)
            self.assertFalse(publisher.is_alive(), "the publisher hung")
            want = sorted(p.decode() for p, _ in messages)
            group.wait(lambda: len(group.outputs()) >= N, "%d genuine messages" % N)
            group.wait(lambda: len(group.rejections()) >= done["replays"], "%d rejections" % done["replays"])
        finally:
            group.stop()
        out = group.outputs()
        duplicates = [p for p, c in collections.Counter(out).items() if c > 1]
        self.assertEqual(duplicates, [], "delivered more than once")
        self.assertEqual(sorted(out), want, "lost or foreign messages")
        reasons = collections.Counter(l.split()[1] for l in group.rejections())
        self.assertEqual(set(reasons), {"replayed"}, reasons)
        # Every replay rejected; beyond them only the broker's redeliveries of what the killed
        # member had recorded but whose acknowledgements Paho had not sent (at most the 19 it
        # handled).
        self.assertGreaterEqual(reasons["replayed"], done["replays"])
        self.assertLessEqual(reasons["replayed"], done["replays"] + 19)
        for m in group.members:
            self.assertTrue(any(l.startswith("secure_subscriber: ") and " verified" in l for l in m.err), m.err[-5:])
        print("\n  %s: %d genuine delivered once (per member %s), %d replays sent, %d rejected as replayed" % (
            name, len(out), [len(m.out) for m in group.everyone()], done["replays"], reasons["replayed"]))
        return reasons

    def test_without_a_shared_store_members_accept_each_others_replays(self):
        # What the shared store buys: each member's own memory has not seen what another member
        # delivered, so a replay the broker hands to another member is accepted.
        topic = "devices/device-1/group/nostore"
        messages = genuine(topic, 4)
        members = [LiveSubscriber(broker, ["$share/nostore/" + topic], ["-i", "nostore-%d" % k]) for k in range(2)]
        try:
            broker.raw_publish("device-1", [(topic, messages[0][1], False)] * 6 +
                               [(topic, e, False) for _, e in messages[1:]])
            wait_until = lambda: sum(len(m.out) + len(m.rejected()) for m in members) >= 9
            members[0].wait(wait_until, "9 outcomes")
        finally:
            for m in members:
                m.stop()
        delivered = [l for m in members for l in m.out]
        self.assertEqual(delivered.count("%s m-0000" % topic), 2, delivered)

    def test_three_members_on_one_redis_server_mqtt5(self):
        redis = RedisServer()
        try:
            self.scenario("r5", "redis://127.0.0.1:%d" % redis.port, "5")
        finally:
            redis.close()

    def test_three_members_on_one_redis_server_mqtt311(self):
        redis = RedisServer()
        try:
            self.scenario("r4", "redis://127.0.0.1:%d/2" % redis.port, "311")
        finally:
            redis.close()

    def test_three_members_on_a_redis_cluster(self):
        cluster = RedisCluster()
        try:
            self.scenario("c5", "redis://127.0.0.1:%d" % cluster.ports[1], "5")
        finally:
            cluster.close()


class StoreOutage(unittest.TestCase):
    """Redis stopped under traffic: delivery waits (the broker keeps the messages), then goes on
    without loss or duplicates; past the hold time a message is rejected, counted and named."""

    def setUp(self):
        self.redis = RedisServer()
        self.store = "redis://127.0.0.1:%d" % self.redis.port

    def tearDown(self):
        self.redis.close()

    def test_a_pause_shorter_than_the_hold_loses_nothing(self):
        topic = "devices/device-1/outage/short"
        messages = genuine(topic, 60)
        sub = LiveSubscriber(broker, [topic], ["-c", "-i", "outage-short", "--replay-store", self.store,
                                               "--store-hold", "20", "--store-lease", "2"])
        try:
            broker.raw_publish("device-1", [(topic, e, False) for _, e in messages[:20]])
            sub.wait(lambda: len(sub.out) >= 20, "the first 20")
            self.redis.proc.send_signal(signal.SIGSTOP)
            try:
                broker.raw_publish("device-1", [(topic, e, False) for _, e in messages[20:40]])
                sub.wait(lambda: any("not answering" in l for l in sub.err), "the outage logged")
                held = len(sub.out)
            finally:
                self.redis.proc.send_signal(signal.SIGCONT)
            sub.wait(lambda: len(sub.out) >= 40, "the held messages")
            broker.raw_publish("device-1", [(topic, e, False) for _, e in messages[40:]] +
                               [(topic, e, False) for _, e in messages[:5]])  # and five replays
            sub.wait(lambda: len(sub.out) >= 60 and len(sub.rejected()) >= 5, "the rest and the replays")
        finally:
            sub.stop()
        self.assertLessEqual(held, 21)  # at most the message in the store call when it stopped
        self.assertEqual(sub.out, ["%s %s" % (topic, p.decode()) for p, _ in messages])
        self.assertEqual(sub.rejected(), ["rejected: replayed on topic '%s'" % topic] * 5)
        self.assertEqual(sum("not answering" in l for l in sub.err), 1, sub.err)
        self.assertEqual(sum("answering again" in l for l in sub.err), 1, sub.err)

    def test_past_the_hold_a_message_is_rejected_as_replay_state_unavailable(self):
        topic = "devices/device-1/outage/long"
        messages = genuine(topic, 3)
        sub = LiveSubscriber(broker, [topic], ["--replay-store", self.store, "--store-hold", "1",
                                               "--store-lease", "0.5"])
        try:
            self.redis.proc.send_signal(signal.SIGSTOP)
            try:
                broker.raw_publish("device-1", [(topic, messages[0][1], False)])
                sub.wait(lambda: len(sub.rejected()) >= 1, "the rejection after the hold")
            finally:
                self.redis.proc.send_signal(signal.SIGCONT)
            broker.raw_publish("device-1", [(topic, e, False) for _, e in messages[1:]])
            sub.wait(lambda: len(sub.out) >= 2, "delivery after the outage")
        finally:
            sub.stop()
        self.assertEqual(sub.rejected(), ["rejected: replay_state_unavailable on topic '%s'" % topic])
        self.assertEqual(sub.out, ["%s %s" % (topic, p.decode()) for p, _ in messages[1:]])
        totals = [l for l in sub.err if l.startswith("secure_subscriber: ")]
        self.assertEqual(len(totals), 1, sub.err)
        self.assertIn("replay_state_unavailable=1", totals[0])

    def test_a_redis_restart_keeps_what_was_recorded(self):
        # Redis with its append-only file: what the group recorded survives the restart, and the
        # subscriber reconnects by itself.
        self.redis.close()
        self.redis = RedisServer(persistent=True)
        self.store = "redis://127.0.0.1:%d" % self.redis.port
        topic = "devices/device-1/outage/restart"
        messages = genuine(topic, 40)
        sub = LiveSubscriber(broker, [topic], ["-c", "-i", "outage-restart", "--replay-store", self.store,
                                               "--store-hold", "20", "--store-lease", "2"])
        try:
            broker.raw_publish("device-1", [(topic, e, False) for _, e in messages[:20]])
            sub.wait(lambda: len(sub.out) >= 20, "the first 20")
            self.redis.restart(between=lambda: broker.raw_publish(
                "device-1", [(topic, e, False) for _, e in messages[20:30]]))
            broker.raw_publish("device-1", [(topic, e, False) for _, e in messages[30:]] +
                               [(topic, e, False) for _, e in messages[:10]])
            sub.wait(lambda: len(sub.out) >= 40 and len(sub.rejected()) >= 10, "the rest and the replays")
        finally:
            sub.stop()
        self.assertEqual(sub.out, ["%s %s" % (topic, p.decode()) for p, _ in messages])
        self.assertEqual(sub.rejected(), ["rejected: replayed on topic '%s'" % topic] * 10)


class DurableKilledInHandler(unittest.TestCase):
    """The SQLite store: one subscriber SIGKILLed inside a handler and restarted gets the
    broker's redelivery once; replays of what it handled before stay rejected."""

    def test_killed_inside_a_handler_then_restarted(self):
        d = tempfile.mkdtemp(prefix="securemqtt-group-it-")
        try:
            topic = "devices/device-1/durable/kill"
            messages = genuine(topic, 50)
            flags = ["-c", "-i", "durable-kill", "--replay-store", os.path.join(d, "replay.db")]
            sub = LiveSubscriber(broker, [topic], flags + ["--kill-in-handler", "25"])
            broker.raw_publish("device-1", [(topic, e, False) for _, e in messages])
            self.assertEqual(sub.ended(), -signal.SIGKILL)
            first = list(sub.out)
            sub = LiveSubscriber(broker, [topic], flags)
            sub.wait(lambda: len(first) + len(sub.out) >= 50, "the rest, redelivered")
            broker.raw_publish("device-1", [(topic, e, False) for _, e in messages[:24]])  # replays
            sub.wait(lambda: len(sub.rejected()) >= 24, "the replays rejected")
            sub.stop()
            self.assertEqual(first, ["%s %s" % (topic, p.decode()) for p, _ in messages[:24]])
            self.assertEqual(first + sub.out, ["%s %s" % (topic, p.decode()) for p, _ in messages])
            # The 24 replays, and the broker's copies of messages the killed process had recorded
            # but whose acknowledgements Paho had not yet sent: at most the 24 it handled.
            self.assertGreaterEqual(len(sub.rejected()), 24)
            self.assertLessEqual(len(sub.rejected()), 48)
            self.assertEqual(set(sub.rejected()), {"rejected: replayed on topic '%s'" % topic})
        finally:
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
