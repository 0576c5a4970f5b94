#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Writes tests/vectors/envelope-v1.json with the Python reference implementation.

Run with --check to compare against the committed file instead (ctest does this), so the
vectors, the reference and the C++ code cannot drift apart unnoticed.
"""

import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "examples", "python"))
import securemqtt_envelope as sm  # noqa: E402

NOW_MS = 1767225600000  # 2026-01-01T00:00:00Z, the verifier's clock for every vector
KEY_A = bytes(range(0x00, 0x20))
KEY_B = bytes.fromhex("b0" * 16 + "0b" * 16 + "5a" * 16)  # 48 bytes
KEY_SCOPED = bytes(range(0x40, 0x60))
KEY_EXPIRED = bytes(range(0x80, 0xA0))
LONG_ID = "k" * 62 + "-9"  # 64 bytes, the longest key id

KEYS = [
    {"key_id": "device-a", "key_hex": KEY_A.hex()},
    {"key_id": LONG_ID, "key_hex": KEY_B.hex()},
    {"key_id": "sensor-7", "key_hex": KEY_SCOPED.hex(), "topic_scope": ["plant/sensor-7/#", "plant/+/status"]},
    {"key_id": "retired", "key_hex": KEY_EXPIRED.hex(), "not_after_ms": NOW_MS - 1000},
]
KEY_BY_ID = {k["key_id"]: bytes.fromhex(k["key_hex"]) for k in KEYS}

STREAM = 0x0123456789ABCDEF


def envelope(key_id, topic, payload, counter=1, timestamp_ms=NOW_MS - 1500, stream_id=STREAM, retain=False,
             key=None, properties=None, utf8=False):
    key = key if key is not None else KEY_BY_ID[key_id]
    return sm.encode(key, key_id, topic, payload, stream_id, counter, timestamp_ms, retain, properties, utf8)


def unchecked_envelope(key_id, topic, payload, flags, counter=1, timestamp_ms=NOW_MS - 1500):
    """An envelope with a valid tag that the signer would refuse to make (e.g. flag bit 2 over a
    payload that is not UTF-8), so only the check under test can reject it."""
    header = sm.encode_header(key_id, STREAM, counter, timestamp_ms, flags, len(payload))
    return header + payload + sm.hmac_sha256(KEY_BY_ID.get(key_id, KEY_A), sm.mac_input(header, topic, payload))


def flags_of(retain=False, properties=None, utf8=False):
    """The flags sm.encode sets for these arguments."""
    flags = sm.FLAG_RETAIN if retain else 0
    if sm.encode_properties(properties) or (properties is not None and len(properties) == 0):
        flags |= sm.FLAG_PROPERTIES
    return flags | (sm.FLAG_UTF8 if utf8 else 0)


# Properties as the vectors file writes them (received properties; see the procedure).
_PROPERTY_ORDER = ("content_type", "response_topic", "correlation_data", "user_properties",
                   "message_expiry_interval")


def properties_json(props):
    out = {}
    for name in _PROPERTY_ORDER:
        if name not in props:
            continue
        if name == "correlation_data":
            out["correlation_data_hex"] = props[name].hex()
        elif name == "user_properties":
            out[name] = [[n, v] for n, v in props[name]]
        else:
            out[name] = props[name]
    assert set(props) <= set(_PROPERTY_ORDER), props
    return out


def flip(data, index, mask=0x01):
    b = bytearray(data)
    b[index] ^= mask
    return bytes(b)


def vector(name, description, topic, data, expect, fields=None, retained=False, before=(), verifier=None,
           properties=None, **extra):
    """properties: the MQTT 5 properties the message is received with (None: none, and no
    "properties" entry). With fields, also those it was signed with."""
    v = {"name": name, "description": description, "topic": topic, "retained": retained}
    if properties is not None:
        v["properties"] = properties_json(properties)
    if verifier:
        v["verifier"] = verifier
    if fields is not None:
        key_id, payload, counter, timestamp_ms, flags = fields
        header = sm.encode_header(key_id, STREAM, counter, timestamp_ms, flags, len(payload))
        props = sm.encode_properties(properties) if flags & sm.FLAG_PROPERTIES else None
        v["fields"] = {
            "key_id": key_id,
            "stream_id": "%016x" % STREAM,
            "counter": str(counter),
            "timestamp_ms": str(timestamp_ms),
            "flags": flags,
        }
        v["payload_hex"] = payload.hex()
        if props is not None:
            v["properties_hex"] = props.hex()
        v["header_hex"] = header.hex()
        v["mac_input_hex"] = sm.mac_input(header, topic, payload, props).hex()
        v["tag_hex"] = data[-sm.TAG_SIZE:].hex()
    v["envelope_hex"] = data.hex()
    if before:
        v["before"] = [{"topic": t, "envelope_hex": e.hex()} for t, e in before]
    v.update(extra)
    v["expect"] = expect
    return v


def accepted(name, description, key_id, topic, payload, counter=1, timestamp_ms=NOW_MS - 1500, retain=False,
             retained=False, before=(), verifier=None, properties=None, utf8=False, received=None):
    """Signed with `properties` (None: without) and received with `received` (default: the same)."""
    data = envelope(key_id, topic, payload, counter, timestamp_ms, retain=retain, properties=properties, utf8=utf8)
    flags = flags_of(retain, properties, utf8)
    received = properties if received is None else received
    if flags & sm.FLAG_PROPERTIES:
        assert sm.encode_properties(received) == sm.encode_properties(properties)
    return vector(name, description, topic, data, "accept", (key_id, payload, counter, timestamp_ms, flags),
                  retained=retained, before=before, verifier=verifier, properties=received)


def props_vectors():
    """MQTT 5 properties under the MAC and the UTF-8 flag (spec section 2.1)."""
    cmd = "plant/line-1/cmd"
    request = b'{"cmd":"status"}'
    full = {
        "content_type": "application/json",
        "response_topic": "plant/line-1/reply/console-3",
        "correlation_data": bytes.fromhex("00ff7a0102"),
        "user_properties": [("site", "north"), ("trace", "7f3a"), ("site", "south")],
    }

    def changed(**kw):
        p = dict(full)
        p.update(kw)
        return p

    def without(name):
        p = dict(full)
        del p[name]
        return p

    signed = envelope("device-a", cmd, request, counter=20, properties=full)
    ups = full["user_properties"]

    def bad(name, description, received):
        return vector(name, description, cmd, signed, sm.BAD_MAC, properties=received)

    text = "Temperatur 21,5 \u00b0C \u2013 ok \u2713 \U0001f321".encode()  # 2-, 3- and 4-byte forms
    t = "plant/line-1/temperature"
    base = envelope("device-a", t, b"21.5")
    utf8_signed = envelope("device-a", t, text, counter=21, utf8=True)

    def bad_utf8(name, description, payload, key_id="device-a"):
        return vector(name, description, t, unchecked_envelope(key_id, t, payload, sm.FLAG_UTF8, counter=22),
                      sm.MALFORMED)

    return [
        accepted("props_all_covered", "Flag bit 1: content type, response topic, correlation data and three "
                 "user properties (the name 'site' twice) under the MAC, received as sent.", "device-a", cmd,
                 request, counter=20, properties=full),
        accepted("props_flag_with_empty_props", "Flag bit 1 with an empty props (no covered property; a signer "
                 "may set the bit anyway), received without properties: the MAC input ends with u32(0).",
                 "device-a", cmd, request, counter=23, properties={}),
        accepted("props_message_expiry_not_covered", "Flag bit 1 over a content type; signed with a message "
                 "expiry interval of 60 s, received with 17 s left: the interval is not covered.", "device-a", cmd,
                 request, counter=24, properties={"content_type": "application/json", "message_expiry_interval": 60},
                 received={"content_type": "application/json", "message_expiry_interval": 17}),
        accepted("props_none_with_message_expiry", "No flag bit 1, received with only a message expiry "
                 "interval: not a covered property, so no bad_mac.", "device-a", t, b"21.5", counter=25,
                 received={"message_expiry_interval": 17}),
        accepted("utf8_text_payload", "Flag bit 2 (UTF-8): a text payload with 2-, 3- and 4-byte sequences.",
                 "device-a", t, text, counter=21, utf8=True),
        accepted("utf8_props_retained", "Flags 0x07: retain, properties (content type, a user property) and "
                 "UTF-8, delivered as retained one hour after signing.", "device-a", t, text, counter=26,
                 timestamp_ms=NOW_MS - 3600 * 1000, retain=True, retained=True, utf8=True,
                 properties={"content_type": "text/plain; charset=utf-8", "user_properties": [("unit", "C")]}),
        bad("bad_mac_props_response_topic_redirected", "props_all_covered's envelope received with another "
            "response topic (a redirected reply).", changed(response_topic="plant/line-1/reply/attacker")),
        bad("bad_mac_props_correlation_data_changed", "props_all_covered's envelope received with other "
            "correlation data (last byte changed).", changed(correlation_data=bytes.fromhex("00ff7a0103"))),
        bad("bad_mac_props_user_properties_reordered", "props_all_covered's envelope received with its first two "
            "user properties swapped.", changed(user_properties=[ups[1], ups[0], ups[2]])),
        bad("bad_mac_props_repeated_name_reordered", "props_all_covered's envelope received with the two 'site' "
            "user properties swapped.", changed(user_properties=[ups[2], ups[1], ups[0]])),
        bad("bad_mac_props_user_property_added", "props_all_covered's envelope received with one more user "
            "property.", changed(user_properties=ups + [("admin", "1")])),
        bad("bad_mac_props_user_property_removed", "props_all_covered's envelope received without its last user "
            "property.", changed(user_properties=ups[:2])),
        bad("bad_mac_props_content_type_removed", "props_all_covered's envelope received without its content "
            "type.", without("content_type")),
        bad("bad_mac_props_all_removed", "props_all_covered's envelope received without any property.", {}),
        vector("bad_mac_props_added_without_flag", "text_payload's envelope (no flag bit 1) received with a "
               "response topic: nothing authenticated it.", t, base, sm.BAD_MAC,
               properties={"response_topic": "plant/line-1/reply/attacker"}),
        vector("bad_mac_props_empty_content_type_added_without_flag", "text_payload's envelope (no flag bit 1) "
               "received with an empty content type: present, so covered, though empty.", t, base, sm.BAD_MAC,
               properties={"content_type": ""}),
        vector("bad_mac_props_empty_vs_absent", "Signed with content type \"\" (an item of length 0), received "
               "without a content type.", cmd, envelope("device-a", cmd, request, counter=27,
                                                       properties={"content_type": ""}), sm.BAD_MAC,
               properties={}),
        vector("bad_mac_utf8_flag_cleared", "utf8_text_payload's envelope with flag bit 2 cleared.", t,
               flip(utf8_signed, 4, sm.FLAG_UTF8), sm.BAD_MAC),
        vector("key_not_allowed_before_props_check", "Scoped key 'sensor-7' on another device's topic, received "
               "with a response topic and no flag bit 1: the topic check (step 8) comes first.",
               "plant/sensor-8/humidity", envelope("sensor-7", "plant/sensor-8/humidity", b"40%"),
               sm.KEY_NOT_ALLOWED_FOR_TOPIC, properties={"response_topic": "plant/sensor-8/reply"}),
        bad_utf8("malformed_utf8_overlong", "Flag bit 2, payload '21.5' then c0 af (an overlong '/'); the tag "
                 "is valid.", b"21.5\xc0\xaf"),
        bad_utf8("malformed_utf8_overlong_3_byte", "Flag bit 2, payload '21.5' then e0 80 af (an overlong "
                 "'/'); the tag is valid.", b"21.5\xe0\x80\xaf"),
        bad_utf8("malformed_utf8_surrogate", "Flag bit 2, payload '21.5' then ed a0 80 (U+D800, a surrogate); "
                 "the tag is valid.", b"21.5\xed\xa0\x80"),
        bad_utf8("malformed_utf8_above_max", "Flag bit 2, payload '21.5' then f4 90 80 80 (U+110000); the tag is "
                 "valid.", b"21.5\xf4\x90\x80\x80"),
        bad_utf8("malformed_utf8_truncated", "Flag bit 2, payload '21.5' then e2 82 (a 3-byte sequence cut "
                 "short); the tag is valid.", b"21.5\xe2\x82"),
        bad_utf8("malformed_utf8_stray_continuation", "Flag bit 2, payload '21.5' then 80 (a continuation byte "
                 "without a lead); the tag is valid.", b"21.5\x80"),
        bad_utf8("malformed_utf8_before_key_lookup", "Flag bit 2 over c0 af under key id 'stranger', not in the "
                 "keyring: malformed (step 5) before unknown_key (step 6).", b"21.5\xc0\xaf", key_id="stranger"),
        vector("malformed_unknown_flag_bit3", "Flag bit 3 (0x08), the lowest bit still undefined.", t,
               flip(base, 4, 0x08), sm.MALFORMED),
    ]


def step(key_id, stream_id, counter, timestamp_ms, expect, topic="plant/line-1/temperature"):
    data = envelope(key_id, topic, b"%d" % counter, counter, timestamp_ms, stream_id=stream_id)
    return {"topic": topic, "envelope_hex": data.hex(), "retained": False, "expect": expect}


def sequences():
    """Replay state across messages: eviction, the per-key watermark, forgotten keys (spec §4)."""
    a = "device-a"
    b = LONG_ID
    s7 = "sensor-7"
    s7_topic = "plant/sensor-7/humidity"
    t = NOW_MS
    w = 1 << 32
    return [
        {
            "name": "window_across_2_32",
            "description": "One stream's counters around 2^32 (32-bit words and size_t must not truncate "
                           "them): 5, then 2^32 + 5 far ahead; 2^32 - 1 and 2^32 are inside the window below "
                           "it and admitted once; 5 is behind the window; 2^32 + 5 again is a replay.",
            "steps": [
                step(a, 9, 5, t - 5000, "accept"),
                step(a, 9, w + 5, t - 4000, "accept"),
                step(a, 9, w - 1, t - 4000, "accept"),
                step(a, 9, w, t - 4000, "accept"),
                step(a, 9, w, t - 4000, sm.REPLAYED),
                step(a, 9, w - 1, t - 4000, sm.REPLAYED),
                step(a, 9, 5, t - 5000, sm.REPLAYED),
                step(a, 9, w + 5, t - 4000, sm.REPLAYED),
                step(a, 9, w + 6, t - 3000, "accept"),
            ],
        },
        {
            "name": "eviction_raises_only_its_keys_watermark",
            "description": "max_streams_per_key 2. A third stream of device-a evicts its least recently "
                           "admitted one (stream 1) and raises device-a's watermark to that stream's highest "
                           "timestamp, t-3000. Stream 1's messages, and new device-a streams not above the "
                           "watermark, are then replayed; another key's new stream at the same timestamp is "
                           "not affected; a device-a message above the watermark is admitted, even from the "
                           "forgotten stream (tracked anew, evicting stream 2).",
            "verifier": {"max_streams_per_key": 2},
            "steps": [
                step(a, 1, 1, t - 3000, "accept"),
                step(a, 2, 1, t - 2000, "accept"),
                step(a, 3, 1, t - 1000, "accept"),
                step(a, 1, 1, t - 3000, sm.REPLAYED),
                step(a, 1, 2, t - 3000, sm.REPLAYED),
                step(a, 4, 1, t - 3000, sm.REPLAYED),
                step(b, 4, 1, t - 3000, "accept"),
                step(a, 1, 3, t - 500, "accept"),
                step(a, 2, 1, t - 2000, sm.REPLAYED),
                step(a, 3, 2, t - 1000, "accept"),
            ],
        },
        {
            "name": "rejected_copy_is_not_a_use",
            "description": "max_streams_per_key 2. A re-injected copy of stream 1's message is rejected and "
                           "does not make stream 1 recently used: the next new stream still evicts stream 1, "
                           "and stream 2 keeps its window.",
            "verifier": {"max_streams_per_key": 2},
            "steps": [
                step(a, 1, 1, t - 3000, "accept"),
                step(a, 2, 1, t - 2000, "accept"),
                step(a, 1, 1, t - 3000, sm.REPLAYED),
                step(a, 3, 1, t - 1000, "accept"),
                step(a, 2, 2, t - 2000, "accept"),
                step(a, 1, 2, t - 3000, sm.REPLAYED),
            ],
        },
        {
            "name": "forgotten_key_floor",
            "description": "max_keys 2. A third key id forgets the least recently admitted key (device-a); "
                           "the floor of forgotten keys rises to its highest timestamp, t-3000. A key id "
                           "tracked afresh starts with that floor as its watermark: device-a's old message "
                           "stays replayed even after device-a is tracked again.",
            "verifier": {"max_keys": 2},
            "steps": [
                step(a, 1, 1, t - 3000, "accept"),
                step(b, 2, 1, t - 2000, "accept"),
                step(s7, 3, 1, t - 1000, "accept", topic=s7_topic),
                step(a, 1, 1, t - 3000, sm.REPLAYED),
                step(a, 5, 1, t - 2500, "accept"),
                step(a, 1, 1, t - 3000, sm.REPLAYED),
                step(b, 2, 1, t - 2000, sm.REPLAYED),
                step(s7, 3, 2, t - 1000, "accept", topic=s7_topic),
            ],
        },
    ]


def build():
    t = "plant/line-1/temperature"
    base = envelope("device-a", t, b"21.5")
    vs = [
        accepted("text_payload", "A short text payload.", "device-a", t, b"21.5"),
        accepted("empty_payload", "An empty payload is allowed.", "device-a", t, b""),
        accepted("binary_payload", "Every byte value 0x00..0xFF once.", "device-a", "bin/data", bytes(range(256))),
        accepted("longest_key_id", "A 64-byte key id (the maximum) and a 48-byte key.", LONG_ID, t,
                 b'{"t":21.5,"u":"C"}', counter=42),
        accepted("large_counter", "Counter 2^64-1, the last a stream may use.", "device-a", t, b"last",
                 counter=0xFFFFFFFFFFFFFFFF),
        accepted("counter_above_32_bits", "Counter 2^32 + 1: a 32-bit truncation would read 1.", "device-a", t,
                 b"wide", counter=(1 << 32) + 1),
        accepted("counter_not_aliased_modulo_2_32", "Counter 2^32 + 7 after counter 7 of the same stream: "
                 "a different counter, far ahead, not a replay.", "device-a", t, b"ahead", counter=(1 << 32) + 7,
                 before=[(t, envelope("device-a", t, b"seven", counter=7))]),
        accepted("largest_allowed_envelope", "A 4096-byte envelope with max_envelope_size 4096: exactly at "
                 "the limit.", "device-a", t, b"p" * (4096 - sm.FIXED_OVERHEAD - len("device-a")),
                 verifier={"max_envelope_size": 4096}),
        accepted("scoped_key_in_scope", "A scoped key on a topic its scope covers.", "sensor-7",
                 "plant/sensor-7/humidity", b"40%"),
        accepted("scoped_key_plus_wildcard", "Scope 'plant/+/status' covers another device's status topic.",
                 "sensor-7", "plant/line-1/status", b"ok"),
        accepted("retained_older_than_max_age", "Signed with the retain flag and delivered as retained: "
                 "allowed up to max_retained_age_ms (24 h) old.", "device-a", t, b"last-known", counter=3,
                 timestamp_ms=NOW_MS - 3600 * 1000, retain=True, retained=True),
        accepted("future_within_skew", "59 s ahead of the receiver, within the 60 s skew.", "device-a", t, b"x",
                 timestamp_ms=NOW_MS + 59000),
        accepted("retained_with_max_retained_age_below_max_age", "max_retained_age_ms 60 s, below max_age_ms: "
                 "a retained message 120 s old is judged by the larger of the two and accepted.", "device-a", t,
                 b"last-known", counter=4, timestamp_ms=NOW_MS - 120000, retain=True, retained=True,
                 verifier={"max_retained_age_ms": 60000}),
        accepted("reordered_within_window", "Counter 5 after counter 9 of the same stream: inside the window.",
                 "device-a", t, b"late", counter=5,
                 before=[(t, envelope("device-a", t, b"nine", counter=9))]),
    ]

    truncated = base[:-1]
    vs += [
        vector("malformed_truncated", "The last tag byte is missing.", t, truncated, sm.MALFORMED),
        vector("malformed_trailing_byte", "One byte after the tag.", t, base + b"\x00", sm.MALFORMED),
        vector("malformed_magic", "Wrong magic.", t, flip(base, 0), sm.MALFORMED),
        vector("malformed_short", "Three bytes.", t, base[:3], sm.MALFORMED),
        vector("malformed_unknown_flag", "Flag bit 0x80 is not defined in v1.", t, flip(base, 4, 0x80),
               sm.MALFORMED),
        vector("malformed_key_id_length", "Key id length points past the end.", t, flip(base, 5, 0xF0),
               sm.MALFORMED),
        vector("malformed_payload_length_max", "Payload length field 0xFFFFFFFF (bytes 38..41 with key id "
               "'device-a'); the envelope holds 4.", t, base[:38] + b"\xff" * 4 + base[42:], sm.MALFORMED),
        vector("malformed_payload_length_sign_bit", "Payload length field 0x80000004: 4 with the top bit set.", t,
               base[:38] + b"\x80\x00\x00\x04" + base[42:], sm.MALFORMED),
        vector("malformed_counter_zero", "Counter 0 is reserved (bytes 22..29 with key id 'device-a').", t,
               base[:22] + b"\x00" * 8 + base[30:], sm.MALFORMED),
        vector("unsupported_version", "Version byte 2.", t, flip(base, 2, 0x03), sm.UNSUPPORTED_VERSION),
        vector("unsupported_algorithm", "Algorithm id 2.", t, flip(base, 3, 0x03), sm.UNSUPPORTED_ALGORITHM),
        vector("unknown_key", "Signed under key id 'stranger', not in the keyring.", t,
               envelope("stranger", t, b"21.5", key=KEY_A), sm.UNKNOWN_KEY),
        vector("key_not_valid", "Key 'retired' expired 1 s before the receiver's now.", t,
               envelope("retired", t, b"21.5"), sm.KEY_NOT_VALID),
        vector("key_not_allowed_for_topic", "Key 'sensor-7' signing for another device's topic.",
               "plant/sensor-8/humidity", envelope("sensor-7", "plant/sensor-8/humidity", b"40%"),
               sm.KEY_NOT_ALLOWED_FOR_TOPIC),
        vector("key_not_allowed_invalid_topic_wildcard", "Unscoped key, MAC over 'plant/+/temperature': "
               "not a topic name, so no key is allowed for it.", "plant/+/temperature",
               envelope("device-a", "plant/+/temperature", b"21.5"), sm.KEY_NOT_ALLOWED_FOR_TOPIC),
        vector("key_not_allowed_invalid_topic_empty", "Unscoped key, MAC over the empty topic.", "",
               envelope("device-a", "", b"21.5"), sm.KEY_NOT_ALLOWED_FOR_TOPIC),
        vector("key_not_allowed_invalid_topic_nul", "Unscoped key, MAC over a topic holding a NUL byte.",
               "plant/\x00/temperature", envelope("device-a", "plant/\x00/temperature", b"21.5"),
               sm.KEY_NOT_ALLOWED_FOR_TOPIC),
        vector("key_not_allowed_invalid_topic_scoped", "Scoped key ('plant/sensor-7/#'), MAC over "
               "'plant/sensor-7/#', which the filter would match were it a topic name.", "plant/sensor-7/#",
               envelope("sensor-7", "plant/sensor-7/#", b"40%"), sm.KEY_NOT_ALLOWED_FOR_TOPIC),
        vector("bad_mac_payload_bit", "Payload bit flipped.", t, flip(base, len(base) - 33), sm.BAD_MAC),
        vector("bad_mac_tag_bit", "Tag bit flipped.", t, flip(base, len(base) - 1), sm.BAD_MAC),
        vector("bad_mac_timestamp_changed", "Timestamp altered by 1 ms.", t, flip(base, 6 + 8 + 16 + 7), sm.BAD_MAC),
        vector("bad_mac_other_topic", "A valid envelope moved to another topic.", "plant/line-2/temperature", base,
               sm.BAD_MAC),
        vector("bad_mac_wrong_key", "Right key id, wrong key bytes.", t,
               envelope("device-a", t, b"21.5", key=KEY_SCOPED), sm.BAD_MAC),
        vector("too_old", "Timestamp 300.001 s before now: beyond max_age_ms.", t,
               envelope("device-a", t, b"21.5", timestamp_ms=NOW_MS - 300001), sm.TOO_OLD),
        vector("too_old_retain_flag_but_live", "Retain flag set but delivered live: max_age_ms applies.", t,
               envelope("device-a", t, b"21.5", timestamp_ms=NOW_MS - 3600 * 1000, retain=True), sm.TOO_OLD),
        vector("too_old_retained_without_flag", "Delivered as retained but not signed with the retain flag.", t,
               envelope("device-a", t, b"21.5", timestamp_ms=NOW_MS - 3600 * 1000), sm.TOO_OLD, retained=True),
        vector("too_old_retained_beyond_both_ages", "max_retained_age_ms 60 s: a retained message 300.001 s "
               "old is beyond both it and max_age_ms.", t,
               envelope("device-a", t, b"21.5", timestamp_ms=NOW_MS - 300001, retain=True), sm.TOO_OLD,
               retained=True, verifier={"max_retained_age_ms": 60000}),
        vector("from_future", "60.001 s ahead of now: beyond max_future_skew_ms.", t,
               envelope("device-a", t, b"21.5", timestamp_ms=NOW_MS + 60001), sm.FROM_FUTURE),
        vector("replayed", "The same envelope a second time (e.g. a QoS 1 redelivery).", t, base, sm.REPLAYED,
               before=[(t, base)]),
        vector("replayed_behind_window", "Counter 1 after counter 1025: behind the 1024 window.", t, base,
               sm.REPLAYED, before=[(t, envelope("device-a", t, b"x", counter=1025))]),
        vector("too_large", "A 100-byte envelope with max_envelope_size 99.", t,
               envelope("device-a", t, b"p" * (100 - sm.FIXED_OVERHEAD - len("device-a"))), sm.TOO_LARGE,
               max_envelope_size=99),
        vector("too_large_by_one", "A 4097-byte envelope with max_envelope_size 4096.", t,
               envelope("device-a", t, b"p" * (4097 - sm.FIXED_OVERHEAD - len("device-a"))), sm.TOO_LARGE,
               max_envelope_size=4096),
    ]
    vs += props_vectors()
    return {
        "format": "securemqtt envelope v1 test vectors",
        "spec": "docs/envelope-v1.md",
        "procedure": "For each vector: a fresh verifier holding every key in 'keys' with the 'verifier' "
                     "options (a vector's own max_envelope_size, and the entries of its own 'verifier', "
                     "override them) and a clock fixed at now_ms; "
                     "verify each 'before' envelope in order (each must be accepted), then verify "
                     "envelope_hex as received on 'topic' with the MQTT retain flag 'retained'. The "
                     "result must be 'accept' or the named rejection reason. Where 'fields' are given, "
                     "encoding them with the key must give header_hex, mac_input_hex, tag_hex and "
                     "envelope_hex exactly. u64 values are strings (decimal; stream_id hex). "
                     "MQTT 5 properties (spec section 2.1): a vector's 'properties' are those the message "
                     "is received with (absent: none); pass them to verify (correlation_data_hex as "
                     "bytes, user_properties as [name, value] pairs in order). Keys other than "
                     "content_type, response_topic, correlation_data_hex and user_properties (e.g. "
                     "message_expiry_interval, seconds) are not covered and must not affect the result. "
                     "Where 'fields' are given the message was also signed with these properties: "
                     "fields.flags holds the envelope flags (0x01 retain, 0x02 properties, 0x04 UTF-8); "
                     "with 0x02, properties_hex is the canonical encoding of the covered properties "
                     "(empty when none, which only a signer forcing the bit produces), and "
                     "mac_input_hex ends with its u32 length and bytes. For each "
                     "sequence: a fresh verifier set up the same way with the sequence's 'verifier' "
                     "overrides; verify its steps in order, each giving its own 'expect'.",
        "verifier": {
            "now_ms": str(NOW_MS),
            "max_age_ms": 300000,
            "max_future_skew_ms": 60000,
            "retained_policy": "allow_older",
            "max_retained_age_ms": 86400000,
            "window_size": 1024,
            "max_streams_per_key": 1024,
            "max_keys": 1024,
            "max_envelope_size": sm.DEFAULT_MAX_ENVELOPE_SIZE,
        },
        "keys": KEYS,
        "vectors": vs,
        "sequences": sequences(),
    }


def render():
    return json.dumps(build(), indent=2) + "\n"


def main():
    path = os.path.join(HERE, "envelope-v1.json")
    text = render()
    if "--check" in sys.argv[1:]:
        with open(path) as f:
            if f.read() != text:
                print("envelope-v1.json differs from what generate_vectors.py produces", file=sys.stderr)
                return 1
        print("envelope-v1.json matches the generator")
        return 0
    with open(path, "w") as f:
        f.write(text)
    print("wrote", path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
