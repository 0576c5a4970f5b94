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


def _properties(vec):
    """A vector's received "properties" as the reference takes them (None when absent)."""
    j = vec.get("properties")
    if j is None:
        return None
    props = {}
    for name in j:
        if name == "correlation_data_hex":
            props["correlation_data"] = _h(j[name])
        elif name == "user_properties":
            props[name] = [(pair[0], pair[1]) for pair in j[name]]
        else:
            props[name] = j[name]
    return props


def _outcome(sm, verifier, topic, data, retained, properties=None):
    try:
        verifier.verify(topic, data, retained, properties)
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
        props = _properties(vec)
        got = _outcome(sm, verifier, vec["topic"], _h(vec["envelope_hex"]), vec["retained"], props)
        if got != vec["expect"]:
            failures.append(name + ": expected " + vec["expect"] + ", got " + got)
        fields = vec.get("fields")
        if fields is not None:
            payload = _h(vec["payload_hex"])
            header = sm.encode_header(fields["key_id"], int(fields["stream_id"], 16), int(fields["counter"]),
                                      int(fields["timestamp_ms"]), fields["flags"], len(payload))
            if header != _h(vec["header_hex"]):
                failures.append(name + ": header differs")
            flags = fields["flags"]
            encoded = sm.encode_properties(props)
            if flags & sm.FLAG_PROPERTIES:
                if _h(vec["properties_hex"]) != encoded:
                    failures.append(name + ": properties_hex differs")
                mac_props = encoded
                # Bit 1 without a covered property: {} forces the bit (None would leave it clear).
                sign_props = props if encoded else {}
            else:
                if "properties_hex" in vec or encoded:
                    failures.append(name + ": covered properties without flag bit 1")
                mac_props = None
                sign_props = None
            if sm.mac_input(header, vec["topic"], payload, mac_props) != _h(vec["mac_input_hex"]):
                failures.append(name + ": MAC input differs")
            env = sm.encode(keys[fields["key_id"]], fields["key_id"], vec["topic"], payload,
                            int(fields["stream_id"], 16), int(fields["counter"]), int(fields["timestamp_ms"]),
                            flags & sm.FLAG_RETAIN != 0, sign_props, flags & sm.FLAG_UTF8 != 0)
            if env != _h(vec["envelope_hex"]) or env[-32:] != _h(vec["tag_hex"]):
                failures.append(name + ": envelope differs")
    for seq in doc.get("sequences", []):
        verifier = _make_verifier(sm, doc, seq)
        for i, st in enumerate(seq["steps"]):
            got = _outcome(sm, verifier, st["topic"], _h(st["envelope_hex"]), st["retained"])
            if got != st["expect"]:
                failures.append("%s, step %d: expected %s, got %s" % (seq["name"], i + 1, st["expect"], got))
    return failures
