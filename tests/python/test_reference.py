#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The Python reference passes the vectors, with the hmac module and with its own HMAC."""

import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")
sys.path.insert(0, os.path.join(ROOT, "examples", "python"))
sys.path.insert(0, HERE)
import securemqtt_envelope as sm  # noqa: E402
import vector_runner  # noqa: E402


def main():
    with open(os.path.join(ROOT, "tests", "vectors", "envelope-v1.json")) as f:
        doc = json.load(f)
    failures = []
    for use_module in (True, False):
        sm.USE_HMAC_MODULE = use_module
        for failure in vector_runner.run(sm, doc):
            failures.append(("hmac module: " if use_module else "own HMAC: ") + failure)
    sm.USE_HMAC_MODULE = True
    # Reference HMAC against RFC 4231 test case 2 as well, both ways.
    for use_module in (True, False):
        sm.USE_HMAC_MODULE = use_module
        tag = sm.hmac_sha256(b"Jefe", b"what do ya want for nothing?")
        if tag.hex() != "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843":
            failures.append("RFC 4231 case 2 failed (hmac module: %s)" % use_module)
    # Too long for the vectors file: the topic-name length limit, for an unscoped key.
    key = bytes(range(32))
    longest = "a" * 65535
    verifier = sm.Verifier({"k": key}, clock=lambda: 1000)
    if sm.Verifier({"k": key}, clock=lambda: 1000).verify(longest, sm.encode(key, "k", longest, b"x", 1, 1, 1000)) is None:
        failures.append("a 65535-byte topic was not accepted")
    try:
        verifier.verify(longest + "a", sm.encode(key, "k", longest + "a", b"x", 1, 1, 1000))
        failures.append("a 65536-byte topic was accepted")
    except sm.Rejected as e:
        if e.reason != sm.KEY_NOT_ALLOWED_FOR_TOPIC:
            failures.append("a 65536-byte topic gave " + e.reason)
    count = len(doc["vectors"])
    for failure in failures:
        print("FAIL", failure)
    print("%d vectors and %d sequences x 2 HMAC implementations: %d failures"
          % (count, len(doc["sequences"]), len(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
