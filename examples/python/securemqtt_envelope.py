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
KNOWN_FLAGS = FLAG_RETAIN
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


def mac_input(header, topic, payload):
    """The exact bytes the MAC covers: label, header, topic, payload, each after its u32 length."""
    topic = _as_bytes(topic)
    return (_u32(len(MAC_LABEL)) + MAC_LABEL + _u32(len(header)) + header + _u32(len(topic)) + topic
            + _u32(len(payload)) + payload)


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


def encode(key, key_id, topic, payload, stream_id, counter, timestamp_ms, retain=False):
    """Builds a whole envelope with explicit fields (Signer picks them for you)."""
    payload = _as_bytes(payload)
    header = encode_header(key_id, stream_id, counter, timestamp_ms, FLAG_RETAIN if retain else 0,
                           len(payload))
    return header + payload + hmac_sha256(key, mac_input(header, topic, payload))


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
    return Envelope(key_id.decode(), stream_id, counter, timestamp_ms, flags, data[:pos],
                    data[pos:pos + payload_size], data[pos + payload_size:])


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

    def sign(self, topic, payload, retain=False):
        if self._next > _U64_MAX:
            raise ValueError("counter exhausted; create a new Signer")
        counter = self._next
        self._next += 1
        return encode(self._key, self.key_id, topic, payload, self.stream_id, counter,
                      max(0, self._clock()), retain)


class _Window:
    """Highest counter seen and a bitmap of the `size` counters at and below it."""

    def __init__(self, size, counter, timestamp_ms):
        self.size = size
        self.bits = bytearray(size // 8)
        self.highest = counter
        self.highest_ts = timestamp_ms
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


class Verifier:
    """Verifies envelopes as the C++ Verifier does, with the same defaults.

    keys: {key_id: bytes or Key}. Replay state is kept per (key id, stream id); when more than
    max_streams are tracked the least recently used is forgotten and new streams must then be
    newer than its newest message (see docs/envelope-v1.md).
    """

    def __init__(self, keys, window_size=1024, max_streams=10000, max_age_ms=300000,
                 max_future_skew_ms=60000, allow_older_retained=True,
                 max_retained_age_ms=86400000, max_envelope_size=DEFAULT_MAX_ENVELOPE_SIZE,
                 clock=None):
        self.keys = {}
        for key_id, key in keys.items():
            self.keys[key_id] = key if isinstance(key, Key) else Key(key)
        self.window_size = window_size
        self.max_streams = max_streams
        self.max_age_ms = max_age_ms
        self.max_future_skew_ms = max_future_skew_ms
        self.allow_older_retained = allow_older_retained
        self.max_retained_age_ms = max_retained_age_ms
        self.max_envelope_size = max_envelope_size
        self._clock = clock or now_ms
        self._streams = {}  # insertion order doubles as LRU order (re-inserted on use)
        self._watermark = -1

    def verify(self, topic, data, retained=False):
        """Returns the verified Envelope, with .topic and .retained added, or raises
        Rejected(reason)."""
        env = decode(data, self.max_envelope_size)
        key = self.keys.get(env.key_id)
        if key is None:
            raise Rejected(UNKNOWN_KEY)
        now = self._clock()
        if not key.valid_at(now):
            raise Rejected(KEY_NOT_VALID)
        if not key.allows(topic):
            raise Rejected(KEY_NOT_ALLOWED_FOR_TOPIC)
        expected = hmac_sha256(key.key, mac_input(env.header, topic, env.payload))
        if not tags_equal(expected, env.tag):
            raise Rejected(BAD_MAC)
        retained = bool(retained and env.flags & FLAG_RETAIN)
        max_age = self.max_age_ms
        if retained and self.allow_older_retained:
            max_age = max(max_age, self.max_retained_age_ms)
        if now - env.timestamp_ms > max_age:
            raise Rejected(TOO_OLD)
        if env.timestamp_ms - now > self.max_future_skew_ms:
            raise Rejected(FROM_FUTURE)
        self._admit(env)
        env.topic = topic
        env.retained = retained
        return env

    def _admit(self, env):
        ident = (env.key_id, env.stream_id)
        window = self._streams.pop(ident, None)
        if window is None:
            if env.timestamp_ms <= self._watermark:
                raise Rejected(REPLAYED)
            if len(self._streams) >= self.max_streams:
                oldest = next(iter(self._streams))
                self._watermark = max(self._watermark, self._streams.pop(oldest).highest_ts)
            self._streams[ident] = _Window(self.window_size, env.counter, env.timestamp_ms)
            return
        self._streams[ident] = window  # most recently used last
        if not window.admit(env.counter, env.timestamp_ms):
            raise Rejected(REPLAYED)
