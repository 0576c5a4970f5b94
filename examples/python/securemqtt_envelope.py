# SPDX-License-Identifier: Apache-2.0
"""securemqtt envelope v1 -- reference implementation for Python and MicroPython.

Signs and verifies the envelopes the C++ library writes (docs/envelope-v1.md), so a Python
service or a MicroPython board can talk to securemqtt peers. Standard library only.

Needs: hashlib.sha256, struct (pack/unpack '>BBBBBB', '>QQQI', '>I'), and, when present, hmac
and os.urandom. On MicroPython without the hmac module the HMAC construction below is used
(it takes each digest once, as MicroPython requires); without os.urandom, pass stream_id from a
hardware random source (a colliding stream id gets messages rejected, never accepted twice).

    signer = Signer(key, "dev1")
    envelope = signer.sign("sensors/dev1/temp", b"21.5")
    verifier = Verifier({"dev1": key})
    message = verifier.verify("sensors/dev1/temp", envelope)   # raises Rejected(reason)

MQTT 5 properties (docs/envelope-v1.md section 2.1) are dicts with the optional keys
content_type (str), response_topic (str), correlation_data (bytes) and user_properties (a list
of (name, value) str pairs, in packet order, names may repeat): the properties the message is
published with go to sign()/encode(), those it arrived with to verify(). A UTF-8 text payload
(MQTT 5's Payload Format Indicator 1) is signed with utf8=True as envelope flag bit 2.

    envelope = signer.sign("dev1/cmd", b'{"get":1}', properties={"response_topic": "dev1/reply",
                           "correlation_data": b"\x01"}, utf8=True)
    message = verifier.verify("dev1/cmd", envelope, properties=received_properties)
"""

import hashlib
import struct
import time

try:
    import hmac as _hmac
except ImportError:  # many MicroPython builds
    _hmac = None

try:
    from os import urandom as _urandom
except ImportError:
    _urandom = None

VERSION = 1
MAGIC = b"SM"
ALG_HMAC_SHA256 = 1
TAG_SIZE = 32
FLAG_RETAIN = 0x01
FLAG_PROPERTIES = 0x02  # the MAC covers the MQTT 5 properties (docs/envelope-v1.md section 2.1)
FLAG_UTF8 = 0x04  # the payload is well-formed UTF-8 text (Payload Format Indicator 1)
KNOWN_FLAGS = FLAG_RETAIN | FLAG_PROPERTIES | FLAG_UTF8
MAX_KEY_ID_SIZE = 64
MIN_KEY_SIZE = 32
FIXED_OVERHEAD = 2 + 1 + 1 + 1 + 1 + 8 + 8 + 8 + 4 + TAG_SIZE
DEFAULT_MAX_ENVELOPE_SIZE = 1024 * 1024
MAC_LABEL = b"securemqtt envelope v1"
_U64_MAX = 0xFFFFFFFFFFFFFFFF
_I64_MAX = 0x7FFFFFFFFFFFFFFF

# Rejection reasons: the same names as securemqtt::RejectReason's to_string().
MALFORMED = "malformed"
UNSUPPORTED_VERSION = "unsupported_version"
UNSUPPORTED_ALGORITHM = "unsupported_algorithm"
UNKNOWN_KEY = "unknown_key"
KEY_NOT_VALID = "key_not_valid"
KEY_NOT_ALLOWED_FOR_TOPIC = "key_not_allowed_for_topic"
BAD_MAC = "bad_mac"
TOO_OLD = "too_old"
FROM_FUTURE = "from_future"
REPLAYED = "replayed"
TOO_LARGE = "too_large"

# Force the built-in HMAC construction even where the hmac module exists (tests use it).
USE_HMAC_MODULE = _hmac is not None


class Rejected(Exception):
    """A message failed verification; .reason is one of the names above."""

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


def now_ms():
    """Milliseconds since the Unix epoch."""
    if hasattr(time, "time_ns"):
        return time.time_ns() // 1000000
    return int(time.time() * 1000)


def hmac_sha256(key, data):
    if USE_HMAC_MODULE:
        return _hmac.new(key, data, hashlib.sha256).digest()
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    key = key + b"\x00" * (64 - len(key))
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
    inner.update(data)
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))
    outer.update(inner.digest())
    return outer.digest()


def tags_equal(a, b):
    """Constant-time comparison of two byte strings of equal length."""
    if len(a) != len(b):
        return False
    diff = 0
    for x, y in zip(a, b):
        diff |= x ^ y
    return diff == 0


def _as_bytes(value):
    return value.encode() if isinstance(value, str) else bytes(value)


def is_valid_key_id(key_id):
    key_id = _as_bytes(key_id)
    return 0 < len(key_id) <= MAX_KEY_ID_SIZE and all(0x21 <= c <= 0x7E for c in key_id)


def _u32(n):
    return struct.pack(">I", n)


# MQTT 5 identifiers of the properties the MAC covers, in the order of the canonical encoding.
PROP_CONTENT_TYPE = 0x03
PROP_RESPONSE_TOPIC = 0x08
PROP_CORRELATION_DATA = 0x09
PROP_USER_PROPERTY = 0x26


def _prop_item(identifier, value):
    value = _as_bytes(value)
    return bytes((identifier,)) + _u32(len(value)) + value


def encode_properties(props):
    """The canonical `props` of docs/envelope-v1.md section 2.1: the bytes the MAC covers for the
    MQTT 5 properties in `props` (a dict; None is the same as {}).

    Covered keys, each encoded only when present (a key whose value is None counts as absent; a
    present empty value, such as content_type "", is an item of length 0, different from an
    absent one): content_type (str), response_topic (str), correlation_data (bytes),
    user_properties (a sequence of (name, value) pairs, encoded in the order given, names may
    repeat; an empty sequence is the same as none). Strings are encoded as UTF-8.
    Any other key (message_expiry_interval, topic_alias, subscription_identifier,
    payload_format_indicator, ...) is not covered and is ignored: brokers change those.
    Returns b"" when no covered property is present.
    """
    if not props:
        return b""
    out = b""
    value = props.get("content_type")
    if value is not None:
        out += _prop_item(PROP_CONTENT_TYPE, value)
    value = props.get("response_topic")
    if value is not None:
        out += _prop_item(PROP_RESPONSE_TOPIC, value)
    value = props.get("correlation_data")
    if value is not None:
        out += _prop_item(PROP_CORRELATION_DATA, value)
    for pair in props.get("user_properties") or ():
        name, value = pair
        value = _as_bytes(value)
        out += _prop_item(PROP_USER_PROPERTY, name) + _u32(len(value)) + value
    return out


def is_well_formed_utf8(data):
    """True when `data` is well-formed UTF-8 (RFC 3629, Unicode table 3-7): no overlong forms,
    no surrogates (U+D800..U+DFFF), nothing above U+10FFFF, no stray or missing continuation
    bytes. b"" is. Written out because MicroPython's bytes.decode() accepts overlong forms,
    surrogates and values above U+10FFFF."""
    n = len(data)
    i = 0
    while i < n:
        c = data[i]
        if c < 0x80:
            i += 1
            continue
        # lo..hi: the allowed range of the second byte; the others are 0x80..0xBF.
        if 0xC2 <= c <= 0xDF:
            need, lo, hi = 1, 0x80, 0xBF
        elif c == 0xE0:
            need, lo, hi = 2, 0xA0, 0xBF  # below: overlong
        elif c == 0xED:
            need, lo, hi = 2, 0x80, 0x9F  # above: surrogates
        elif 0xE1 <= c <= 0xEF:
            need, lo, hi = 2, 0x80, 0xBF
        elif c == 0xF0:
            need, lo, hi = 3, 0x90, 0xBF  # below: overlong
        elif 0xF1 <= c <= 0xF3:
            need, lo, hi = 3, 0x80, 0xBF
        elif c == 0xF4:
            need, lo, hi = 3, 0x80, 0x8F  # above: beyond U+10FFFF
        else:
            return False  # 0x80..0xC1 (continuation or overlong lead), 0xF5..0xFF
        if i + need >= n:
            return False
        b = data[i + 1]
        if b < lo or b > hi:
            return False
        for j in range(i + 2, i + need + 1):
            if data[j] & 0xC0 != 0x80:
                return False
        i += need + 1
    return True


def mac_input(header, topic, payload, props=None):
    """The exact bytes the MAC covers: label, header, topic, payload, each after its u32 length,
    and, when the header's flags have bit 1 (FLAG_PROPERTIES), props (encode_properties' bytes;
    None is b"") after its u32 length. Without bit 1 there is no props part, and a non-empty
    props is a ValueError (nothing would cover it)."""
    topic = _as_bytes(topic)
    out = (_u32(len(MAC_LABEL)) + MAC_LABEL + _u32(len(header)) + header + _u32(len(topic)) + topic
           + _u32(len(payload)) + payload)
    props = b"" if props is None else bytes(props)
    if header[4] & FLAG_PROPERTIES:
        out += _u32(len(props)) + props
    elif props:
        raise ValueError("props given but the header has no properties flag (bit 1)")
    return out


def encode_header(key_id, stream_id, counter, timestamp_ms, flags, payload_size):
    key_id = _as_bytes(key_id)
    if not is_valid_key_id(key_id):
        raise ValueError("invalid key id")
    if not 1 <= counter <= _U64_MAX or not 0 <= stream_id <= _U64_MAX:
        raise ValueError("counter or stream id out of range")
    if not 0 <= timestamp_ms <= _I64_MAX or flags & ~KNOWN_FLAGS:
        raise ValueError("timestamp or flags out of range")
    return (MAGIC + struct.pack(">BBBB", VERSION, ALG_HMAC_SHA256, flags, len(key_id)) + key_id
            + struct.pack(">QQQI", stream_id, counter, timestamp_ms, payload_size))


def encode(key, key_id, topic, payload, stream_id, counter, timestamp_ms, retain=False, properties=None,
           utf8=False):
    """Builds a whole envelope with explicit fields (Signer picks them for you).

    properties: the MQTT 5 properties the message is published with (see encode_properties).
      None: no properties; flag bit 1 stays clear (any v1 receiver accepts the envelope).
      A dict with at least one covered property: flag bit 1 is set and the MAC covers them.
      {} exactly (an empty dict): flag bit 1 is set with an empty props -- the way to force the
      bit (receivers then reject any covered property added on the way as bad_mac).
      A non-empty dict without covered properties (e.g. only message_expiry_interval): as None.
    utf8: the payload is UTF-8 text (Payload Format Indicator 1): sets flag bit 2; a payload
      that is not well-formed UTF-8 is a ValueError.
    """
    payload = _as_bytes(payload)
    props = encode_properties(properties)
    flags = FLAG_RETAIN if retain else 0
    if props or (properties is not None and len(properties) == 0):
        flags |= FLAG_PROPERTIES
    if utf8:
        if not is_well_formed_utf8(payload):
            raise ValueError("payload is not well-formed UTF-8")
        flags |= FLAG_UTF8
    header = encode_header(key_id, stream_id, counter, timestamp_ms, flags, len(payload))
    return header + payload + hmac_sha256(key, mac_input(header, topic, payload, props))


class Envelope:
    """A decoded envelope; header is the header bytes exactly as received."""

    def __init__(self, key_id, stream_id, counter, timestamp_ms, flags, header, payload, tag):
        self.key_id = key_id
        self.stream_id = stream_id
        self.counter = counter
        self.timestamp_ms = timestamp_ms
        self.flags = flags
        self.header = header
        self.payload = payload
        self.tag = tag


def decode(data, max_size=DEFAULT_MAX_ENVELOPE_SIZE):
    """Parses an envelope, raising Rejected with the same reasons, in the same order, as C++."""
    data = bytes(data)
    if len(data) > max_size:
        raise Rejected(TOO_LARGE)
    if len(data) < 4 or data[0:2] != MAGIC:
        raise Rejected(MALFORMED)
    if data[2] != VERSION:
        raise Rejected(UNSUPPORTED_VERSION)
    if data[3] != ALG_HMAC_SHA256:
        raise Rejected(UNSUPPORTED_ALGORITHM)
    if len(data) < FIXED_OVERHEAD:
        raise Rejected(MALFORMED)
    flags = data[4]
    if flags & ~KNOWN_FLAGS:
        raise Rejected(MALFORMED)
    key_id_size = data[5]
    if key_id_size > len(data) - FIXED_OVERHEAD:
        raise Rejected(MALFORMED)
    key_id = data[6:6 + key_id_size]
    if not is_valid_key_id(key_id):
        raise Rejected(MALFORMED)
    pos = 6 + key_id_size
    stream_id, counter, timestamp_ms, payload_size = struct.unpack(">QQQI", data[pos:pos + 28])
    pos += 28
    if counter == 0 or timestamp_ms > _I64_MAX:
        raise Rejected(MALFORMED)
    if len(data) - FIXED_OVERHEAD - key_id_size != payload_size:
        raise Rejected(MALFORMED)
    if flags & FLAG_UTF8 and not is_well_formed_utf8(data[pos:pos + payload_size]):
        raise Rejected(MALFORMED)
    return Envelope(key_id.decode(), stream_id, counter, timestamp_ms, flags, data[:pos],
                    data[pos:pos + payload_size], data[pos + payload_size:])


MAX_TOPIC_SIZE = 65535


def is_valid_topic_name(topic):
    """A topic name one may publish to: 1 to 65535 bytes of UTF-8, no '+', '#' or NUL."""
    topic = _as_bytes(topic)
    return 0 < len(topic) <= MAX_TOPIC_SIZE and b"+" not in topic and b"#" not in topic and b"\x00" not in topic


def topic_matches(filter_, topic):
    """MQTT wildcard matching: '+' one level, '#' this level and all below."""
    if topic.startswith("$") and filter_[:1] in ("+", "#"):
        return False
    flevels = filter_.split("/")
    tlevels = topic.split("/")
    for i, f in enumerate(flevels):
        if f == "#":
            return i == len(flevels) - 1
        if i >= len(tlevels) or (f != "+" and f != tlevels[i]):
            return False
    return len(tlevels) == len(flevels)


class Key:
    """An HMAC key with an optional validity window (ms since the epoch) and topic scope."""

    def __init__(self, key, not_before_ms=None, not_after_ms=None, topic_scope=None):
        key = bytes(key)
        if len(key) < MIN_KEY_SIZE:
            raise ValueError("HMAC key must be at least 32 bytes (openssl rand -hex 32)")
        self.key = key
        self.not_before_ms = not_before_ms
        self.not_after_ms = not_after_ms
        self.topic_scope = list(topic_scope or [])

    def valid_at(self, t):
        if self.not_before_ms is not None and t < self.not_before_ms:
            return False
        return self.not_after_ms is None or t < self.not_after_ms

    def allows(self, topic):
        # No key, scoped or not, is allowed for what is not a topic name (docs/envelope-v1.md §3).
        if not is_valid_topic_name(topic):
            return False
        if isinstance(topic, bytes):
            topic = topic.decode()
        return not self.topic_scope or any(topic_matches(f, topic) for f in self.topic_scope)


def load_key_file(path):
    """Reads a hex key file (as `openssl rand -hex 32` writes it); whitespace is ignored."""
    with open(path) as f:
        text = "".join(f.read().split())
    return bytes.fromhex(text)


class Signer:
    """Signs as one stream: a random 64-bit stream id and a counter from 1."""

    def __init__(self, key, key_id, stream_id=None, clock=None, first_counter=1):
        self._key = Key(key).key
        if not is_valid_key_id(key_id):
            raise ValueError("invalid key id")
        self.key_id = key_id
        if stream_id is None:
            if _urandom is None:
                raise ValueError("no os.urandom here: pass stream_id from a hardware random source")
            stream_id = struct.unpack(">Q", _urandom(8))[0]
        self.stream_id = stream_id
        self._clock = clock or now_ms
        self._next = first_counter

    def sign(self, topic, payload, retain=False, properties=None, utf8=False):
        """properties and utf8 as for encode(): None publishes without covered properties, {}
        forces flag bit 1 with none. A refused payload (utf8) uses no counter."""
        if self._next > _U64_MAX:
            raise ValueError("counter exhausted; create a new Signer")
        if utf8 and not is_well_formed_utf8(_as_bytes(payload)):
            raise ValueError("payload is not well-formed UTF-8")
        counter = self._next
        self._next += 1
        return encode(self._key, self.key_id, topic, payload, self.stream_id, counter,
                      max(0, self._clock()), retain, properties, utf8)


class _Window:
    """One stream: highest counter seen, a bitmap of the `size` counters at and below it, and the
    highest timestamp admitted (what eviction raises the key's watermark to)."""

    def __init__(self, size, counter, timestamp_ms):
        self.size = size
        self.bits = bytearray(size // 8)
        self.highest = counter
        self.highest_ts = timestamp_ms
        self.last_use = 0
        self._set(counter)

    def _set(self, c):
        p = c % self.size
        self.bits[p >> 3] |= 1 << (p & 7)

    def _test(self, c):
        p = c % self.size
        return self.bits[p >> 3] & (1 << (p & 7))

    def admit(self, c, timestamp_ms):
        if c > self.highest:
            if c - self.highest >= self.size:
                self.bits = bytearray(self.size // 8)
            else:
                for n in range(self.highest + 1, c + 1):
                    p = n % self.size
                    self.bits[p >> 3] &= ~(1 << (p & 7)) & 0xFF
            self.highest = c
        elif self.highest - c >= self.size or self._test(c):
            return False
        self._set(c)
        if timestamp_ms > self.highest_ts:
            self.highest_ts = timestamp_ms
        return True


class _KeyState:
    def __init__(self, watermark):
        self.watermark = watermark
        self.streams = {}  # stream id -> _Window
        self.last_use = 0


class ReplayGuard:
    """Anti-replay state per key id, as docs/envelope-v1.md §4 describes.

    Each key id has its own streams (at most max_streams_per_key, the least recently admitted
    evicted beyond that) and its own watermark (raised by its own evictions only), so nothing one
    key does affects another. At most max_keys key ids are tracked; beyond that the least
    recently admitted key is forgotten and keys tracked afresh start at its watermark.
    Recency is a tick per admitted message, not dict order, so MicroPython evicts exactly as
    CPython and C++ do; eviction scans one key's streams, which is cheap at small sizes.
    """

    def __init__(self, window_size=1024, max_streams_per_key=1024, max_keys=1024):
        if window_size < 64 or window_size > 65536 or window_size % 64:
            raise ValueError("window_size must be a multiple of 64 from 64 to 65536")
        if max_streams_per_key < 1 or max_keys < 1:
            raise ValueError("max_streams_per_key and max_keys must be at least 1")
        self.window_size = window_size
        self.max_streams_per_key = max_streams_per_key
        self.max_keys = max_keys
        self._keys = {}  # key id -> _KeyState
        self._forgotten = -1  # watermark of forgotten keys; timestamps are >= 0
        self._tick = 0
        self.evictions = 0
        self.key_evictions = 0

    def admit(self, key_id, stream_id, counter, timestamp_ms):
        """Records the message and returns True, or returns False (replayed) changing nothing.
        Call only for authenticated, fresh messages."""
        state = self._keys.get(key_id)
        window = None if state is None else state.streams.get(stream_id)
        if window is not None:
            if not window.admit(counter, timestamp_ms):
                return False
        else:
            if timestamp_ms <= (self._forgotten if state is None else state.watermark):
                return False
            if state is None:
                if len(self._keys) >= self.max_keys:
                    self._forget_key()
                state = _KeyState(self._forgotten)
                self._keys[key_id] = state
            if len(state.streams) >= self.max_streams_per_key:
                oldest = min(state.streams, key=lambda s: state.streams[s].last_use)
                evicted = state.streams.pop(oldest)
                if evicted.highest_ts > state.watermark:
                    state.watermark = evicted.highest_ts
                self.evictions += 1
            window = _Window(self.window_size, counter, timestamp_ms)
            state.streams[stream_id] = window
        self._tick += 1
        window.last_use = self._tick
        state.last_use = self._tick
        return True

    def _forget_key(self):
        oldest = min(self._keys, key=lambda k: self._keys[k].last_use)
        state = self._keys.pop(oldest)
        highest = state.watermark
        for w in state.streams.values():
            if w.highest_ts > highest:
                highest = w.highest_ts
        if highest > self._forgotten:
            self._forgotten = highest
        self.key_evictions += 1

    def tracked_streams(self, key_id=None):
        if key_id is not None:
            state = self._keys.get(key_id)
            return 0 if state is None else len(state.streams)
        return sum(len(s.streams) for s in self._keys.values())


class Verifier:
    """Verifies envelopes as the C++ Verifier does, with the same defaults.

    keys: {key_id: bytes or Key}. Replay state is kept per key id, as ReplayGuard describes.
    A retained message (delivered as retained and signed with the retain flag) may be as old as
    the larger of max_age_ms and max_retained_age_ms (docs/envelope-v1.md §5).
    """

    def __init__(self, keys, window_size=1024, max_streams_per_key=1024, max_age_ms=300000,
                 max_future_skew_ms=60000, allow_older_retained=True,
                 max_retained_age_ms=86400000, max_envelope_size=DEFAULT_MAX_ENVELOPE_SIZE,
                 clock=None, max_keys=1024):
        self.keys = {}
        for key_id, key in keys.items():
            self.keys[key_id] = key if isinstance(key, Key) else Key(key)
        self.replay_guard = ReplayGuard(window_size, max_streams_per_key, max_keys)
        self.max_age_ms = max_age_ms
        self.max_future_skew_ms = max_future_skew_ms
        self.allow_older_retained = allow_older_retained
        self.max_retained_age_ms = max_retained_age_ms
        self.max_envelope_size = max_envelope_size
        self._clock = clock or now_ms

    def verify(self, topic, data, retained=False, properties=None):
        """Returns the verified Envelope, with .topic, .retained, .utf8 (flag bit 2: the payload
        is UTF-8 text) and .properties (as passed) added, or raises Rejected(reason).

        properties: the MQTT 5 properties the message arrived with (a dict as for
        encode_properties; None when it had none; topic aliases resolved, like the topic). With
        flag bit 1 the MAC covers their canonical encoding; without it, any covered property
        present is bad_mac. Uncovered keys (message_expiry_interval, ...) are not checked."""
        env = decode(data, self.max_envelope_size)
        key = self.keys.get(env.key_id)
        if key is None:
            raise Rejected(UNKNOWN_KEY)
        now = self._clock()
        if not key.valid_at(now):
            raise Rejected(KEY_NOT_VALID)
        if not key.allows(topic):
            raise Rejected(KEY_NOT_ALLOWED_FOR_TOPIC)
        props = encode_properties(properties)
        if env.flags & FLAG_PROPERTIES:
            expected = hmac_sha256(key.key, mac_input(env.header, topic, env.payload, props))
        else:
            expected = hmac_sha256(key.key, mac_input(env.header, topic, env.payload))
        if not tags_equal(expected, env.tag):
            raise Rejected(BAD_MAC)
        if props and not env.flags & FLAG_PROPERTIES:
            raise Rejected(BAD_MAC)  # covered properties nothing authenticated (spec section 2.1)
        retained = bool(retained and env.flags & FLAG_RETAIN)
        max_age = self.max_age_ms
        if retained and self.allow_older_retained:
            # Only ever wider: the broker's retain flag is not under the MAC (spec §5).
            max_age = max(max_age, self.max_retained_age_ms)
        if now - env.timestamp_ms > max_age:
            raise Rejected(TOO_OLD)
        if env.timestamp_ms - now > self.max_future_skew_ms:
            raise Rejected(FROM_FUTURE)
        if not self.replay_guard.admit(env.key_id, env.stream_id, env.counter, env.timestamp_ms):
            raise Rejected(REPLAYED)
        env.topic = topic
        env.retained = retained
        env.utf8 = bool(env.flags & FLAG_UTF8)
        env.properties = properties
        return env
