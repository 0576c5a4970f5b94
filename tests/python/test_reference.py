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
    count = len(doc["vectors"])
    for failure in failures:
        print("FAIL", failure)
    print("%d vectors x 2 HMAC implementations: %d failures" % (count, len(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
