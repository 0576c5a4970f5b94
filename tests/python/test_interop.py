#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Python reference <-> C++ library, both directions, through tests/tools/envelope_tool.

usage: test_interop.py <path to envelope_tool>
"""

import os
import random
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "examples", "python"))
import securemqtt_envelope as sm  # noqa: E402

TOOL = sys.argv[1]
KEY = bytes(random.getrandbits(8) for _ in range(32))
KEY_ID = "interop-" + str(os.getpid())
failures = []


def tool(mode, topic, lines, *flags):
    args = [TOOL, mode, "--key-hex", KEY.hex(), "--key-id", KEY_ID, "--topic", topic] + list(flags)
    out = subprocess.run(args, input="".join(l + "\n" for l in lines), capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise SystemExit("envelope_tool failed: " + out.stderr)
    return out.stdout.splitlines()


def check(condition, what):
    if not condition:
        failures.append(what)


def tamper(envelope):
    b = bytearray(envelope)
    b[random.randrange(len(b))] ^= 1 << random.randrange(8)
    return bytes(b)


def python_to_cpp(topic, payloads):
    signer = sm.Signer(KEY, KEY_ID)
    envelopes = [signer.sign(topic, p) for p in payloads]
    results = tool("verify", topic, [e.hex() for e in envelopes])
    for p, r in zip(payloads, results):
        check(r == "accept " + p.hex(), "C++ did not accept a Python envelope: " + r)
    check(len(results) == len(payloads), "C++ answered %d of %d" % (len(results), len(payloads)))
    # Replays, tampering and a wrong topic, judged by both implementations alike.
    again = tool("verify", topic, [envelopes[0].hex(), envelopes[0].hex()])
    check(again == ["accept " + payloads[0].hex(), "reject replayed"], "replay: " + repr(again))
    tampered = [tamper(e) for e in envelopes[:50]]
    verifier = sm.Verifier({KEY_ID: KEY})
    for t, r in zip(tampered, tool("verify", topic, [t.hex() for t in tampered])):
        try:
            verifier.verify(topic, t)
            expected = "accept"
        except sm.Rejected as e:
            expected = "reject " + e.reason
        check(r.startswith("reject") and r == expected, "tampered: C++ %s, Python %s" % (r, expected))
    moved = tool("verify", topic + "/x", [envelopes[1].hex()])
    check(moved == ["reject bad_mac"], "moved topic: " + repr(moved))


def cpp_to_python(topic, payloads, retain):
    envelopes = [bytes.fromhex(h) for h in tool("sign", topic, [p.hex() for p in payloads], *(["--retain"] if retain else []))]
    check(len(envelopes) == len(payloads), "C++ signed %d of %d" % (len(envelopes), len(payloads)))
    verifier = sm.Verifier({KEY_ID: KEY})
    for p, e in zip(payloads, envelopes):
        try:
            m = verifier.verify(topic, e, retained=retain)
            check(m.payload == p and m.key_id == KEY_ID and m.retained == retain, "Python got other fields")
        except sm.Rejected as r:
            failures.append("Python rejected a C++ envelope: " + r.reason)
    try:
        verifier.verify(topic, envelopes[0])
        failures.append("Python accepted a replay")
    except sm.Rejected as r:
        check(r.reason == sm.REPLAYED, "replay reason " + r.reason)
    fresh = sm.Verifier({KEY_ID: KEY})
    for e in envelopes[:50]:
        try:
            fresh.verify(topic, tamper(e))
            failures.append("Python accepted a tampered C++ envelope")
        except sm.Rejected:
            pass


def main():
    random.seed(int.from_bytes(os.urandom(4), "big"))
    payloads = [bytes(random.getrandbits(8) for _ in range(random.choice([0, 1, 31, 256, 1000, 5000])))
                for _ in range(200)]
    for topic in ("plant/line-1/temp", "a", "unicode/caf\u00e9/\u6e29\u5ea6"):
        python_to_cpp(topic, payloads)
        cpp_to_python(topic, payloads, retain=False)
        cpp_to_python(topic, payloads[:20], retain=True)
    for f in failures[:20]:
        print("FAIL", f)
    print("interop: 3 topics x 200 messages each way: %d failures" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
