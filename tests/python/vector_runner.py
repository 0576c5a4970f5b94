# SPDX-License-Identifier: Apache-2.0
"""Checks securemqtt_envelope against tests/vectors/envelope-v1.json.

Shared by CPython (test_reference.py) and MicroPython (run_micropython.mjs), so it keeps to
what both have: no f-strings with '=' specifiers, no pathlib, no unittest.
"""


def _h(s):
    return bytes.fromhex(s)


def _make_verifier(sm, doc, vec):
    cfg = {}
    for name in doc["verifier"]:
        cfg[name] = doc["verifier"][name]
    if "max_envelope_size" in vec:
        cfg["max_envelope_size"] = vec["max_envelope_size"]
    own = vec.get("verifier", {})
    for name in own:
        cfg[name] = own[name]
    keys = {}
    for k in doc["keys"]:
        keys[k["key_id"]] = sm.Key(_h(k["key_hex"]), k.get("not_before_ms"), k.get("not_after_ms"),
                                   k.get("topic_scope"))
    now = int(cfg["now_ms"])
    return sm.Verifier(keys, window_size=cfg["window_size"], max_age_ms=cfg["max_age_ms"],
                       max_future_skew_ms=cfg["max_future_skew_ms"],
                       allow_older_retained=cfg["retained_policy"] == "allow_older",
                       max_retained_age_ms=cfg["max_retained_age_ms"],
                       max_envelope_size=cfg["max_envelope_size"],
                       max_streams_per_key=cfg["max_streams_per_key"], max_keys=cfg["max_keys"],
                       clock=lambda: now)


def _outcome(sm, verifier, topic, data, retained):
    try:
        verifier.verify(topic, data, retained)
        return "accept"
    except sm.Rejected as e:
        return e.reason


def run(sm, doc):
    """Returns a list of failure descriptions (empty when every vector passes)."""
    failures = []
    keys = {}
    for k in doc["keys"]:
        keys[k["key_id"]] = _h(k["key_hex"])
    for vec in doc["vectors"]:
        name = vec["name"]
        verifier = _make_verifier(sm, doc, vec)
        for prior in vec.get("before", []):
            got = _outcome(sm, verifier, prior["topic"], _h(prior["envelope_hex"]), False)
            if got != "accept":
                failures.append(name + ": prior envelope gave " + got)
        got = _outcome(sm, verifier, vec["topic"], _h(vec["envelope_hex"]), vec["retained"])
        if got != vec["expect"]:
            failures.append(name + ": expected " + vec["expect"] + ", got " + got)
        fields = vec.get("fields")
        if fields is not None:
            payload = _h(vec["payload_hex"])
            header = sm.encode_header(fields["key_id"], int(fields["stream_id"], 16), int(fields["counter"]),
                                      int(fields["timestamp_ms"]), fields["flags"], len(payload))
            if header != _h(vec["header_hex"]):
                failures.append(name + ": header differs")
            if sm.mac_input(header, vec["topic"], payload) != _h(vec["mac_input_hex"]):
                failures.append(name + ": MAC input differs")
            env = sm.encode(keys[fields["key_id"]], fields["key_id"], vec["topic"], payload,
                            int(fields["stream_id"], 16), int(fields["counter"]), int(fields["timestamp_ms"]),
                            fields["flags"] & sm.FLAG_RETAIN != 0)
            if env != _h(vec["envelope_hex"]) or env[-32:] != _h(vec["tag_hex"]):
                failures.append(name + ": envelope differs")
    for seq in doc.get("sequences", []):
        verifier = _make_verifier(sm, doc, seq)
        for i, st in enumerate(seq["steps"]):
            got = _outcome(sm, verifier, st["topic"], _h(st["envelope_hex"]), st["retained"])
            if got != st["expect"]:
                failures.append("%s, step %d: expected %s, got %s" % (seq["name"], i + 1, st["expect"], got))
    return failures
