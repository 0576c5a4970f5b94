#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Runs the benchmarks and prints one table (used by scripts/bench).

    bench_report.py BUILD_DIR
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = sys.argv[1]
PY = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable


def micro():
    out = subprocess.run([os.path.join(BUILD, "bench", "securemqtt_bench"), "--benchmark_format=json",
                          "--benchmark_min_time=0.3", "--benchmark_repetitions=5",
                          "--benchmark_enable_random_interleaving=true", "--benchmark_report_aggregates_only=true"],
                         capture_output=True, text=True, check=True)
    medians = {}
    ratios = {}
    for b in json.loads(out.stdout)["benchmarks"]:
        if b.get("aggregate_name") == "median":
            medians[b["run_name"]] = b["real_time"] if b["time_unit"] == "ns" else b["real_time"] * 1000
            if "ratio" in b:
                ratios[b["run_name"]] = b["ratio"]
            if "store_extra_us" in b:
                ratios[b["run_name"] + ":store_extra_us"] = b["store_extra_us"]
    return medians, ratios


def verdict(value, limit, at_most=True):
    ok = value <= limit if at_most else value >= limit
    return "%6.2f   %s %.2f   %s" % (value, "<=" if at_most else ">=", limit, "ok" if ok else "MISSED")


def instructions(mode, size, n):
    """Instructions callgrind counts for n operations (set-up included)."""
    out = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
                          os.path.join(BUILD, "bench", "securemqtt_bench_count"), mode, str(size), str(n)],
                         capture_output=True, text=True, check=True)
    for line in out.stderr.splitlines():
        if "Collected" in line:
            return int(line.split()[-1])
    raise RuntimeError("no callgrind total")


def per_op(mode, size, n=1000):
    return (instructions(mode, size, 2 * n) - instructions(mode, size, n)) / n


def e2e(qos, n):
    out = subprocess.run([os.path.join(BUILD, "bench", "securemqtt_e2e_bench"), "-n", str(n), "-q", str(qos), "-r", "15"],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def e2e_store(location, n=10000, rounds=15, shared=0, replay_window=0):
    """QoS 1 with the subscriber's guard on the store at `location`, against the in-memory guard in
    alternating rounds. Returns (result, None), or (None, why) when the store could not be used."""
    args = [os.path.join(BUILD, "bench", "securemqtt_e2e_bench"), "-n", str(n), "-q", "1", "-r", str(rounds),
            "--replay-store", location]
    if shared:
        args += ["--shared", str(shared)]
    if replay_window:
        args += ["--replay-window", str(replay_window)]
    out = subprocess.run(args, capture_output=True, text=True)
    if out.returncode != 0:
        if "not supported" in out.stderr:
            return None, "not supported by this build"
        return None, "failed: " + (out.stderr.strip().splitlines() or ["exit %d" % out.returncode])[-1]
    r = json.loads(out.stdout.strip().splitlines()[-1])
    r["warnings"] = [w for w in out.stderr.splitlines() if w.startswith("warning")]
    return r, None


def store_row(label, result, why, budget=None):
    if why:
        print("  %-26s %s" % (label, why))
        return
    r = result
    ratio = verdict(r["ratio"], budget, at_most=False) if budget else "%6.2f   (no budget)" % r["ratio"]
    calls = "%5.2f" % r["evalsha_per_msg"] if r.get("evalsha_per_msg", -1) >= 0 else "    -"
    print("  %-26s %11.0f %12.0f %7.1f / %4.1f   %s   %s" % (label, r["store_msgs_per_s"], r["memory_msgs_per_s"],
                                                          r["store_cpu_us_per_msg"], r["memory_cpu_us_per_msg"],
                                                          calls, ratio))
    if r["subscribers"] > 1:
        print("  %-26s per consumer: store %.0f, memory %.0f msg/s" % (
            "", r["store_msgs_per_s"] / r["subscribers"], r["memory_msgs_per_s"] / r["subscribers"]))
    print("  %-26s rounds, store:  %s" % ("", " ".join("%.0f" % x for x in r["store_rounds"])))
    print("  %-26s rounds, memory: %s" % ("", " ".join("%.0f" % x for x in r["memory_rounds"])))
    if r.get("store_rejected") or r.get("memory_rejected"):
        print("  %-26s rejected: store rounds %d (%s), memory rounds %d" % (
            "", r["store_rejected"], r["store_reject_reasons"], r["memory_rejected"]))
    for w in sorted(set(r["warnings"])):
        print("  %-26s %s" % ("", w))


def redis_server():
    """(server, None): a Redis server on a free loopback port, started as the integration tests
    start one (--save '' --appendonly no); or (None, why not)."""
    if not shutil.which("redis-server") or not shutil.which("redis-cli"):
        return None, "skipped: no redis-server here"
    try:
        sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
        from redis_servers import RedisServer
        return RedisServer(), None
    except Exception as e:  # a benchmark reports and goes on
        return None, "skipped: could not start redis-server: %s" % e


def replay_stores(paired):
    print("Replay stores, end to end: QoS 1, 10,000 messages of 256 bytes per round, each round with fresh")
    print("subscriber processes that hold their first message until the publisher has every PUBACK (the rest")
    print("queued at the broker), then work through that backlog: msg/s = verified messages from \"go\" to the")
    print("last arrival, what the subscribers sustain. Store and in-memory rounds alternating; ratio store/memory")
    print("= median of the pairs; calls/msg: Redis EVALSHA calls (requests) per verified message")
    print("  %-26s %11s %12s %14s   %s   %s" % ("store", "store msg/s", "memory msg/s", "CPU us/msg", "calls/msg",
                                             "ratio   budget"))
    with tempfile.TemporaryDirectory(prefix="securemqtt-bench-store-") as d:
        r, why = e2e_store(os.path.join(d, "round-{n}.db"))
        store_row("SQLite, file per round", r, why, 0.85)
    redis, why = redis_server()
    if redis is None:
        print("  %-26s %s" % ("Redis", why))
    else:
        try:
            location = "redis://127.0.0.1:%d" % redis.port
            r, why = e2e_store(location)
            store_row("Redis, one server", r, why, 0.70)
            print("  Redis group: K subscriber processes on $share/bench/TOPIC sharing the store, msg/s of the")
            print("  whole group (in memory: K processes, each its own guard); 7 pairs of rounds; replay window")
            print("  16384 counters on both sides (with the default 1024, a member that falls more than 1024 of the")
            print("  stream's counters behind another has its messages rejected as replayed); budget per consumer")
            for k in (1, 2, 3):
                subprocess.run(["redis-cli", "-p", str(redis.port), "FLUSHALL"], capture_output=True)
                r, why = e2e_store(location, rounds=7, shared=k, replay_window=16384)
                store_row("  %d subscriber%s" % (k, "s" if k > 1 else ""), r, why, 0.70)
        finally:
            redis.close()
    key = "BM_StoreVsMemory/256"
    if key in paired:
        print("  CPU us/msg: the subscriber processes' CPU time (all threads) per verified message, store / memory")
        print("  micro, %s (verify + confirm, paired): SQLite %.1fx in memory, +%.1f us per message" % (
            key, paired[key], paired.get(key + ":store_extra_us", float("nan"))))


def python_route(qos, n):
    """The Python example programs, publisher -> Mosquitto -> subscriber, n messages."""
    d = tempfile.mkdtemp(prefix="securemqtt-pybench-")
    broker = os.path.join(ROOT, "scripts", "local_broker.py")
    subprocess.run([sys.executable, broker, "start", d, "--clients", "device-1,monitor"], check=True,
                   capture_output=True)
    try:
        port = open(os.path.join(d, "port")).read().strip()
        certs = os.path.join(d, "certs")
        key = os.path.join(d, "k.hex")
        with open(key, "w") as f:
            f.write("ab" * 32)
        os.chmod(key, 0o600)

        def tls(who):
            return ["-h", "localhost", "-p", port, "--cafile", os.path.join(certs, "ca.pem"), "--cert",
                    os.path.join(certs, who + ".pem"), "--key", os.path.join(certs, who + ".key"),
                    "--key-id", "k", "--hmac-key", key]
        topic = "devices/device-1/pybench"
        sub = subprocess.Popen([PY, os.path.join(ROOT, "examples", "python", "secure_subscriber.py"), "-t", topic,
                                "-q", str(qos), "-C", str(n), "-W", "120"] + tls("monitor"),
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        time.sleep(1.5)
        lines = "".join("%0250d\n" % i for i in range(n))  # 250-byte readings
        t0 = time.monotonic()
        subprocess.run([PY, os.path.join(ROOT, "examples", "python", "secure_publisher.py"), "-t", topic, "-q",
                        str(qos), "-l"] + tls("device-1"), input=lines, text=True, check=True, capture_output=True)
        sub.wait(timeout=180)
        return n / (time.monotonic() - t0) if sub.returncode == 0 else 0.0
    finally:
        subprocess.run([sys.executable, broker, "stop", d], capture_output=True)
        shutil.rmtree(d, ignore_errors=True)


def main():
    m, paired = micro()
    print("Micro benchmarks (median of 5, ns per message; ratio to BM_RawHmac of the same size)")
    print("  %-8s %10s %12s %10s %10s %9s %9s %12s" % ("size", "RawHmac", "RawOneShot", "Sign", "Verify",
                                                     "Sign/Raw", "Vfy/Raw", "OneShot/Sign"))
    for size in (32, 256, 1024, 16384, 65536):
        raw = m["BM_RawHmac/%d" % size]
        one = m["BM_RawHmacOneShot/%d" % size]
        sign = m["BM_Sign/%d" % size]
        ver = m["BM_Verify/%d" % size]
        print("  %-8d %10.0f %12.0f %10.0f %10.0f %9.2f %9.2f %12.2f" % (size, raw, one, sign, ver, sign / raw,
                                                                       ver / raw, one / sign))
    for name in ("BM_Sign/256/real_time/threads:2", "BM_Verify/256/real_time/threads:2", "BM_ReplayGuard"):
        key = next((k for k in m if k.startswith(name)), None)
        if key:
            print("  %-40s %8.0f ns" % (key, m[key]))
    print()
    print("Instructions per message (callgrind; does not move with the machine's load)")
    print("  %-8s %10s %10s %10s %9s %9s" % ("size", "RawHmac", "Sign", "Verify", "Sign/Raw", "Vfy/Raw"))
    for size in (256, 16384):
        raw = per_op("raw", size)
        sign = per_op("sign", size)
        ver = per_op("verify", size) - per_op("prepare", size)  # the verify run signs its envelopes first
        print("  %-8d %10.0f %10.0f %10.0f %9.2f %9.2f" % (size, raw, sign, ver, sign / raw, ver / raw))
    print()
    print("Micro budgets, paired (batches of the operation and of raw HMAC timed back to back;")
    print("median of the per-batch ratios, then of 5 repetitions)")
    sign256, ver256 = paired["BM_SignVsRaw/256"], paired["BM_VerifyVsRaw/256"]
    one_sign = paired["BM_OneShotVsSign/256"]
    print("  Sign/Raw       256 B   " + verdict(sign256, 1.30))
    print("  Verify/Raw     256 B   " + verdict(ver256, 1.30))
    print("  Sign/Raw       16 KiB  " + verdict(paired["BM_SignVsRaw/16384"], 1.05))
    print("  Verify/Raw     16 KiB  " + verdict(paired["BM_VerifyVsRaw/16384"], 1.05))
    print("  OneShot/Sign   256 B   " + verdict(one_sign, 3.0, at_most=False))
    print("  OneShot/Verify 256 B   " + verdict(one_sign * sign256 / ver256, 3.0, at_most=False) + "  (derived)")
    print("  The v1 format's own floor at 256 B: raw HMAC of the MAC input (label, header, topic,")
    print("  payload) is %.2fx raw HMAC of the payload alone" % paired["BM_MacInputVsRaw/256"])
    print()
    print("End to end, 256-byte payloads, publisher and subscriber processes, Mosquitto over mTLS on loopback;")
    print("msg/s from the subscriber's first to its last arrival, median of 15 rounds; both publishers with an")
    print("in-flight window of the round's 10,000 messages (a full window stalls Paho C's send thread ~1 s)")
    print("  %-5s %14s %14s %7s %9s %9s %11s   %s" % ("QoS", "signed msg/s", "raw msg/s", "ratio", "p50 us", "p99 us",
                                               "connect ms", "ratio >= 0.95"))
    results = {}
    for qos, n in ((0, 10000), (1, 10000)):
        r = e2e(qos, n)
        results[qos] = r
        print("  %-5d %14.0f %14.0f %7.3f %9.0f %9.0f %11.1f   %s" % (
            qos, r["signed_msgs_per_s"], r["raw_msgs_per_s"], r["ratio"], r["p50_us"], r["p99_us"], r["connect_ms"],
            "ok" if r["ratio"] >= 0.95 else "MISSED"))
        print("        first publish to last arrival: signed %.0f, raw %.0f msg/s" % (
            r["signed_e2e_msgs_per_s"], r["raw_e2e_msgs_per_s"]))
    print()
    print("The Python route (examples/python, paho-mqtt + the reference envelope), same broker set-up")
    for qos in (0, 1):
        rate = python_route(qos, 5000)
        print("  QoS %d: %8.0f msg/s   securemqtt C++ is %.1fx faster" % (
            qos, rate, results[qos]["signed_msgs_per_s"] / rate if rate else float("nan")))
    print()
    replay_stores(paired)


if __name__ == "__main__":
    main()
