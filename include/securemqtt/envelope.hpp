// SPDX-License-Identifier: Apache-2.0
// The envelope v1 wire format: constants, encoding of the header, bounds-checked decoding and
// the exact bytes the MAC covers. The full specification is docs/envelope-v1.md.
//
// This module knows nothing of MQTT clients, keys, files or clocks; Signer and Verifier put
// it to work.
#pragma once

#include <securemqtt/bytes.hpp>
#include <securemqtt/errors.hpp>
#include <securemqtt/export.hpp>

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string_view>
#include <vector>

namespace securemqtt {

/// The two magic bytes every envelope starts with: "SM".
inline constexpr std::uint8_t envelope_magic_0 = 0x53;
inline constexpr std::uint8_t envelope_magic_1 = 0x4D;
/// The format version this library writes and reads.
inline constexpr std::uint8_t envelope_version = 1;
/// Algorithm id 1: HMAC-SHA256 with a 32-byte tag. The only one defined in v1.
inline constexpr std::uint8_t algorithm_hmac_sha256 = 1;
/// Longest key id, in bytes; a key id is printable ASCII (0x21 to 0x7E).
inline constexpr std::size_t max_key_id_size = 64;
/// Size of the HMAC-SHA256 tag that ends every envelope.
inline constexpr std::size_t envelope_tag_size = 32;
/// Bytes of an envelope besides its key id and payload: the fixed header fields and the tag.
inline constexpr std::size_t envelope_fixed_overhead = 2 + 1 + 1 + 1 + 1 + 8 + 8 + 8 + 4 + 32;
/// Default largest envelope a verifier accepts (1 MiB); configurable per Verifier.
inline constexpr std::size_t default_max_envelope_size = 1024 * 1024;
/// The largest envelope size that can be configured: the MQTT payload limit.
inline constexpr std::size_t max_envelope_size_limit = 268435455;
/// The domain-separation label at the start of the MAC input.
inline constexpr std::string_view envelope_mac_label = "securemqtt envelope v1";

/// Flag bits (the flags byte). Bits not defined here must be zero; a set unknown bit makes the
/// envelope malformed.
inline constexpr std::uint8_t envelope_flag_retain = 0x01;  ///< signed for a retained publish
/// The MAC input ends with the canonical encoding of the message's covered MQTT 5 properties
/// (encode_covered_properties(), docs/envelope-v1.md §2.1).
inline constexpr std::uint8_t envelope_flag_properties = 0x02;
/// The payload is UTF-8 text (the application's Payload Format Indicator), checked on decoding.
inline constexpr std::uint8_t envelope_flag_utf8 = 0x04;
inline constexpr std::uint8_t envelope_known_flags =
    envelope_flag_retain | envelope_flag_properties | envelope_flag_utf8;

/// The header fields of an envelope.
struct EnvelopeHeader {
    std::string_view key_id;    ///< 1 to 64 printable ASCII bytes
    std::uint64_t stream_id = 0;  ///< the signer's random per-instance identity
    std::uint64_t counter = 0;    ///< strictly increasing within a stream, from 1
    std::int64_t timestamp_ms = 0;  ///< signing time, ms since the Unix epoch, non-negative
    std::uint8_t flags = 0;       ///< envelope_flag_* bits
};

/// A decoded envelope. Every view points into the buffer that was decoded; nothing is copied.
struct DecodedEnvelope {
    EnvelopeHeader header;
    ByteView header_bytes;  ///< the header exactly as received: what the MAC covers
    ByteView payload;
    ByteView tag;           ///< envelope_tag_size bytes
};

/// The outcome of decode_envelope(): a DecodedEnvelope, or why the bytes are not one.
class [[nodiscard]] DecodeResult {
public:
    DecodeResult(DecodedEnvelope envelope) noexcept : envelope_(envelope), ok_(true) {}
    DecodeResult(RejectReason reason) noexcept : reason_(reason) {}
    bool ok() const noexcept { return ok_; }
    explicit operator bool() const noexcept { return ok_; }
    /// Why decoding failed; meaningful only when !ok().
    RejectReason reason() const noexcept { return reason_; }
    /// The envelope; throws std::logic_error when !ok().
    const DecodedEnvelope& envelope() const {
        if (!ok_) throw std::logic_error("securemqtt: envelope() called on a failed DecodeResult");
        return envelope_;
    }

private:
    DecodedEnvelope envelope_{};
    RejectReason reason_ = RejectReason::malformed;
    bool ok_ = false;
};

/// Size in bytes of an encoded header with a key id of `key_id_size` bytes.
constexpr std::size_t envelope_header_size(std::size_t key_id_size) noexcept {
    return envelope_fixed_overhead - envelope_tag_size + key_id_size;
}
/// Size in bytes of a whole envelope.
constexpr std::size_t envelope_size(std::size_t key_id_size, std::size_t payload_size) noexcept {
    return envelope_fixed_overhead + key_id_size + payload_size;
}

/// True when `key_id` may appear in an envelope: 1 to 64 bytes, each 0x21 to 0x7E.
SECUREMQTT_EXPORT bool is_valid_key_id(std::string_view key_id) noexcept;

/// Writes the header for `payload_size` bytes of payload to `out`, which must have room for
/// envelope_header_size(header.key_id.size()) bytes. Returns the number of bytes written.
/// Throws std::invalid_argument when the key id, timestamp, counter, flags or payload size
/// cannot be encoded.
SECUREMQTT_EXPORT std::size_t encode_envelope_header(const EnvelopeHeader& header,
                                                     std::size_t payload_size, std::uint8_t* out);

/// Parses `envelope` without copying. Checks, in order: size against `max_size` (too_large),
/// magic and length fields (malformed), version (unsupported_version), algorithm
/// (unsupported_algorithm), then flags, key id, counter and timestamp (malformed), that the
/// lengths add up exactly, and that a payload flagged UTF-8 is well-formed UTF-8 (malformed).
/// Never reads outside `envelope`. The tag is not checked here.
SECUREMQTT_EXPORT DecodeResult decode_envelope(ByteView envelope,
                                              std::size_t max_size = default_max_envelope_size) noexcept;

/// The exact byte string the MAC covers, as one buffer (for tests, documentation and other
/// implementations; Signer and Verifier stream the same bytes without building it):
///
///     u32(len(label))   label        "securemqtt envelope v1"
///     u32(len(header))  header       exactly as sent
///     u32(len(topic))   topic        the MQTT topic the message is published to / arrived on
///     u32(len(payload)) payload
///     u32(len(props))   props        only when the header has envelope_flag_properties
///
/// with every u32 big-endian. `props` is encode_covered_properties() of the message's
/// properties (ignored when the header's flags lack envelope_flag_properties).
SECUREMQTT_EXPORT std::vector<std::uint8_t> envelope_mac_input(ByteView header_bytes, std::string_view topic,
                                                               ByteView payload, ByteView props = {});

}  // namespace securemqtt
