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


def check_properties(failures):
    """encode_properties (spec section 2.1): canonical order, empty vs absent, repeated names."""
    def expect(got, want_hex, what):
        if got != bytes.fromhex(want_hex):
            failures.append("encode_properties, %s: got %s, want %s" % (what, got.hex(), want_hex))

    expect(sm.encode_properties(None), "", "None")
    expect(sm.encode_properties({}), "", "{}")
    expect(sm.encode_properties({"user_properties": []}), "", "no user properties")
    # Canonical order whatever the dict's order: 03, 08, 09, then 26 in the order given.
    expect(sm.encode_properties({"user_properties": [("a", "1")], "correlation_data": b"\x00\xff",
                                 "response_topic": "r/t", "content_type": "ct"}),
           "03" "00000002" "6374" "08" "00000003" "722f74" "09" "00000002" "00ff"
           "26" "00000001" "61" "00000001" "31", "order")
    # Present but empty is an item of length 0; None is absent.
    expect(sm.encode_properties({"content_type": ""}), "03" "00000000", "empty content type")
    expect(sm.encode_properties({"content_type": None}), "", "content type None")
    expect(sm.encode_properties({"correlation_data": b""}), "09" "00000000", "empty correlation data")
    expect(sm.encode_properties({"user_properties": [("", "")]}), "26" "00000000" "00000000",
           "empty user property")
    # Repeated names are kept, in order; the order is significant.
    ab = sm.encode_properties({"user_properties": [("k", "a"), ("k", "b")]})
    expect(ab, "26" "00000001" "6b" "00000001" "61" "26" "00000001" "6b" "00000001" "62", "repeated name")
    if ab == sm.encode_properties({"user_properties": [("k", "b"), ("k", "a")]}):
        failures.append("encode_properties: user property order not significant")
    # Length prefixes keep name/value boundaries apart.
    if (sm.encode_properties({"user_properties": [("ab", "c")]})
            == sm.encode_properties({"user_properties": [("a", "bc")]})):
        failures.append("encode_properties: name/value boundary lost")
    # Not covered: ignored.
    expect(sm.encode_properties({"message_expiry_interval": 60, "topic_alias": 3,
                                 "payload_format_indicator": 1}), "", "uncovered keys")
    expect(sm.encode_properties({"content_type": "\u00e9"}), "03" "00000002" "c3a9", "UTF-8 string")


def check_utf8(failures):
    """is_well_formed_utf8: RFC 3629 (no overlongs, no surrogates, nothing above U+10FFFF)."""
    valid = [b"", b"21.5", b"\x00\x7f", "\u00e9\u20ac\U0001f321".encode(),
             b"\xc2\x80", b"\xdf\xbf", b"\xe0\xa0\x80", b"\xed\x9f\xbf", b"\xee\x80\x80",
             b"\xef\xbf\xbf", b"\xf0\x90\x80\x80", b"\xf4\x8f\xbf\xbf"]
    invalid = {
        "overlong 2-byte": [b"\xc0\xaf", b"\xc1\xbf", b"\xc0\x80"],
        "overlong 3-byte": [b"\xe0\x80\xaf", b"\xe0\x9f\xbf"],
        "overlong 4-byte": [b"\xf0\x80\x80\xaf", b"\xf0\x8f\xbf\xbf"],
        "surrogate": [b"\xed\xa0\x80", b"\xed\xbf\xbf", b"\xed\xa0\xbd\xed\xb8\x80"],
        "above U+10FFFF": [b"\xf4\x90\x80\x80", b"\xf5\x80\x80\x80", b"\xf7\xbf\xbf\xbf"],
        "invalid byte": [b"\xf8\x88\x80\x80\x80", b"\xfe", b"\xff"],
        "truncated": [b"\xc3", b"\xe2\x82", b"\xf0\x9f\x8c", b"ab\xe2\x82"],
        "stray continuation": [b"\x80", b"\xbf", b"a\x80b"],
        "bad continuation": [b"\xc3\x28", b"\xe2\x28\xa1", b"\xe2\x82\x28", b"\xf0\x9f\x8c\x28"],
    }
    for data in valid:
        if not sm.is_well_formed_utf8(data):
            failures.append("utf8: %s rejected" % data.hex())
    for what in invalid:
        for data in invalid[what]:
            if sm.is_well_formed_utf8(data):
                failures.append("utf8 %s: %s accepted" % (what, data.hex()))
    # Against CPython's strict decoder: every 1- and 2-byte string, and 3- and 4-byte strings
    # for every lead and second byte with continuation-edge trailing bytes.
    def strict(data):
        try:
            data.decode("utf-8")
            return True
        except UnicodeDecodeError:
            return False
    cases = [bytes((a,)) for a in range(256)] + [bytes((a, b)) for a in range(256) for b in range(256)]
    edges = (0x00, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0)
    cases += [bytes((a, b, c)) for a in range(0xC0, 0x100) for b in range(256) for c in edges]
    cases += [bytes((a, b, c, d)) for a in range(0xF0, 0x100) for b in range(256) for c in edges
              for d in (0x7F, 0x80, 0xBF, 0xC0)]
    mismatches = [d.hex() for d in cases if sm.is_well_formed_utf8(d) != strict(d)]
    if mismatches:
        failures.append("utf8: %d differences from CPython, e.g. %s" % (len(mismatches), mismatches[:5]))


def check_flags(failures):
    """encode/sign set bits 1 and 2 as documented; decode/verify judge them (spec section 2.1)."""
    key = bytes(range(32))
    now = 1767225600000
    props = {"response_topic": "r/1", "correlation_data": b"\x01", "user_properties": [("n", "v")]}

    def flags(**kw):
        return sm.encode(key, "k", "a/b", b"x", 1, 1, now, **kw)[4]

    for kw, want in ((dict(), 0), (dict(properties=None), 0), (dict(properties={}), 2),
                     (dict(properties={"message_expiry_interval": 60}), 0), (dict(properties=props), 2),
                     (dict(properties={"content_type": ""}), 2), (dict(utf8=True), 4),
                     (dict(retain=True, properties=props, utf8=True), 7)):
        if flags(**kw) != want:
            failures.append("encode %r: flags %d, want %d" % (kw, flags(**kw), want))
    for bad in (b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80"):
        try:
            sm.encode(key, "k", "a/b", bad, 1, 1, now, utf8=True)
            failures.append("encode utf8=True accepted " + bad.hex())
        except ValueError:
            pass
    signer = sm.Signer(key, "k", stream_id=7, clock=lambda: now)
    try:
        signer.sign("a/b", b"\xff", utf8=True)
        failures.append("sign utf8=True accepted ff")
    except ValueError:
        pass
    header = sm.encode_header("k", 1, 1, now, 0, 1)
    try:
        sm.mac_input(header, "a/b", b"x", b"\x03\x00\x00\x00\x00")
        failures.append("mac_input took props without flag bit 1")
    except ValueError:
        pass

    def outcome(env, properties=None, retained=False):
        verifier = sm.Verifier({"k": key}, clock=lambda: now)
        try:
            message = verifier.verify("a/b", env, retained, properties)
            return "accept utf8" if message.utf8 else "accept"
        except sm.Rejected as e:
            return e.reason

    signed = signer.sign("a/b", "\u00b0C".encode(), properties=props, utf8=True)
    if signed[4] != 6 or sm.decode(signed).counter != 1:
        failures.append("sign: flags %d, counter %d" % (signed[4], sm.decode(signed).counter))
    received = dict(props)
    received["message_expiry_interval"] = 12
    for got, want, what in (
            (outcome(signed, received), "accept utf8", "as sent, expiry changed"),
            (outcome(signed), sm.BAD_MAC, "properties dropped"),
            (outcome(signer.sign("a/b", b"x")), "accept", "no properties"),
            (outcome(signer.sign("a/b", b"x"), {"message_expiry_interval": 1}), "accept", "only expiry"),
            (outcome(signer.sign("a/b", b"x"), {"content_type": ""}), sm.BAD_MAC, "added without bit 1"),
            (outcome(signer.sign("a/b", b"x", properties={})), "accept", "forced bit 1, none"),
            (outcome(signer.sign("a/b", b"x", properties={}), {"user_properties": [("a", "b")]}), sm.BAD_MAC,
             "forced bit 1, one added"),
            (outcome(sm.encode(key, "k", "a/b", b"x", 1, 1, now)[:4] + b"\x08"
                     + sm.encode(key, "k", "a/b", b"x", 1, 1, now)[5:]), sm.MALFORMED, "flag bit 3")):
        if got != want:
            failures.append("verify, %s: %s, want %s" % (what, got, want))


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
    check_properties(failures)
    check_utf8(failures)
    check_flags(failures)
    count = len(doc["vectors"])
    for failure in failures:
        print("FAIL", failure)
    print("%d vectors and %d sequences x 2 HMAC implementations: %d failures"
          % (count, len(doc["sequences"]), len(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
