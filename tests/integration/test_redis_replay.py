#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The Redis replay script (src/redis/replay_admit.lua) against real Redis servers started here:
one server and a three-node Redis Cluster on loopback. It must decide exactly as the reference
replay guard (examples/python/securemqtt_envelope.py, docs/envelope-v1.md section 4) does, keep
each key id's state on one cluster node, stay exact for 64-bit counters, and expire state only
when every message it protects is too_old anyway."""

import os
import random
import threading
import unittest

import redis
from redis.cluster import RedisCluster as ClusterClient

from harness import ROOT, main, sm
from redis_servers import RedisCluster, RedisServer

SCRIPT = open(os.path.join(ROOT, "src", "redis", "replay_admit.lua")).read()
TTL_MS = 25 * 60 * 60 * 1000  # 24 h retained age + 60 s skew + margin


def keys_for(key_id, stream):
    prefix = "securemqtt:{%s}:" % key_id.encode().hex()
    s = "%016x" % stream
    return [prefix + "m:" + s, prefix + "b:" + s, prefix + "lru", prefix + "wm", prefix + "seq"], prefix


class Store:
    """The calls a verifier makes: admit(key id, stream, counter, timestamp) -> True/False."""

    def __init__(self, client, window=1024, quota=1024, ttl_ms=TTL_MS):
        self.client, self.window, self.quota, self.ttl_ms = client, window, quota, ttl_ms
        self.sha = client.script_load(SCRIPT) if not isinstance(client, ClusterClient) else None

    def admit(self, key_id, stream, counter, ts):
        keys, prefix = keys_for(key_id, stream)
        args = ["%016x" % stream, "%016x" % counter, ts, self.window, self.quota, self.ttl_ms, prefix]
        return self.client.eval(SCRIPT, len(keys), *(keys + args)) == 0


class ScriptSemantics:
    """Run against one server and against the cluster (subclasses give self.client)."""

    def store(self, **kw):
        self.client.flushall() if not isinstance(self.client, ClusterClient) else self.client.flushall(target_nodes="all")
        return Store(self.client, **kw)

    def test_each_message_once_within_the_window_and_nothing_behind_it(self):
        st = self.store(window=64)
        self.assertTrue(st.admit("k", 1, 10, 1000))
        self.assertFalse(st.admit("k", 1, 10, 1000))      # the same again
        self.assertTrue(st.admit("k", 1, 5, 1000))        # reordered, inside the window
        self.assertFalse(st.admit("k", 1, 5, 1000))
        self.assertTrue(st.admit("k", 1, 100, 1000))      # jumps ahead: 5..36 fall behind
        self.assertFalse(st.admit("k", 1, 36, 1000))
        self.assertTrue(st.admit("k", 1, 37, 1000))       # 100 - 37 = 63 < 64
        self.assertFalse(st.admit("k", 1, 10, 1000))

    def test_64_bit_counters_stay_exact_across_2_32_and_beyond_2_53(self):
        st = self.store(window=128)
        for base in (2**32 - 3, 2**53 + 1, 2**64 - 70):
            stream = base & 0xffff
            for c in range(base, base + 6):
                self.assertTrue(st.admit("k", stream, c, 1000), hex(c))
            for c in range(base, base + 6):
                self.assertFalse(st.admit("k", stream, c, 1000), hex(c))
        self.assertTrue(st.admit("k", 9, 2**64 - 1, 1000))
        self.assertFalse(st.admit("k", 9, 2**64 - 2 - 128, 1000))  # behind the window

    def test_a_key_that_floods_streams_changes_nothing_for_another_key(self):
        st = self.store(window=64, quota=3)
        self.assertTrue(st.admit("victim", 1, 1, 1000))
        for s in range(100, 200):  # a flood of new streams stamped ahead
            self.assertTrue(st.admit("flooder", s, 1, 60_000 + s))
        self.assertFalse(st.admit("flooder", 100, 1, 60_100))   # evicted: its replay stays closed
        self.assertFalse(st.admit("flooder", 500, 1, 60_150))   # a new stream below the watermark
        self.assertTrue(st.admit("victim", 1, 2, 1001))          # the victim's stream untouched
        self.assertTrue(st.admit("victim", 2, 1, 1002))          # and it may open new ones

    def test_state_expires_only_after_the_configured_age(self):
        st = self.store(ttl_ms=120_000)
        self.assertTrue(st.admit("k", 1, 1, 1000))
        keys, _ = keys_for("k", 1)
        for key in keys[:3] + keys[4:]:
            ttl = self.client.pttl(key)
            self.assertTrue(0 < ttl <= 120_000, (key, ttl))

    def test_an_eviction_keeps_the_watermark_as_long_as_the_evicted_stream_would_have_lived(self):
        # A stream kept for a day (a topic with a long age allowance), evicted by one with a
        # shorter expiry: the watermark that now protects it must outlive the shorter expiry.
        long_lived = Store(self.client, quota=1, ttl_ms=24 * 3600 * 1000)
        self.store(quota=1)  # flushes
        self.assertTrue(long_lived.admit("k", 1, 1, 5000))
        short = Store(self.client, quota=1, ttl_ms=60_000)
        self.assertTrue(short.admit("k", 2, 1, 4000))   # evicts stream 1; watermark stays 5000
        self.assertFalse(long_lived.admit("k", 1, 1, 5000))
        _, prefix = keys_for("k", 1)
        self.assertGreater(self.client.pttl(prefix + "wm"), 60_000)

    def test_concurrent_verifiers_admit_a_message_once(self):
        st = self.store()
        results = []
        lock = threading.Lock()

        def member():
            got = st.admit("k", 7, 42, 1000)
            with lock:
                results.append(got)

        threads = [threading.Thread(target=member) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(sorted(results), [False] * 7 + [True])

    def test_decides_exactly_as_the_reference_guard_on_random_sequences(self):
        rng = random.Random(20261124)
        for window, quota in ((64, 2), (128, 3), (1024, 4)):
            st = self.store(window=window, quota=quota)
            ref = sm.ReplayGuard(window_size=window, max_streams_per_key=quota, max_keys=1 << 20)
            highest = {}
            for step in range(1500):
                key = rng.choice(("a", "b", "c"))
                stream = rng.randrange(6)
                top = highest.get((key, stream), rng.choice((0, 2**32 - 40, 2**60)))
                counter = max(0, top + rng.randrange(-window - 10, 40))
                highest[(key, stream)] = max(top, counter)
                ts = 1000 + step * 3 + rng.randrange(-200, 200)
                expected = ref.admit(key, stream, counter, ts)
                self.assertEqual(st.admit(key, stream, counter, ts), expected,
                                 "window %d quota %d step %d: %s/%d/%d@%d" % (window, quota, step, key, stream, counter, ts))


class OneServer(ScriptSemantics, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = RedisServer()
        cls.client = redis.Redis(host="127.0.0.1", port=cls.server.port)

    @classmethod
    def tearDownClass(cls):
        cls.client.close()
        cls.server.close()


class ThreeNodeCluster(ScriptSemantics, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cluster = RedisCluster(3)
        cls.client = ClusterClient(host="127.0.0.1", port=cls.cluster.ports[0])

    @classmethod
    def tearDownClass(cls):
        cls.client.close()
        cls.cluster.close()

    def test_each_key_ids_state_lives_on_one_node_and_key_ids_spread_over_nodes(self):
        slots = set()
        for n in range(40):
            keys, _ = keys_for("device-%d" % n, n)
            key_slots = {self.client.keyslot(k) for k in keys}
            self.assertEqual(len(key_slots), 1)  # one hash tag, one slot: the script is atomic
            slots.add(key_slots.pop())
        nodes = {self.client.get_node_from_key(keys_for("device-%d" % n, 0)[0][0]).port for n in range(40)}
        self.assertEqual(len(nodes), 3)


if __name__ == "__main__":
    main()
