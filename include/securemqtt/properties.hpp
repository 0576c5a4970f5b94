// SPDX-License-Identifier: Apache-2.0
// MQTT 5 message properties, and the canonical encoding of those the envelope's MAC covers
// (docs/envelope-v1.md §2.1).
#pragma once

#include <securemqtt/bytes.hpp>
#include <securemqtt/export.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace securemqtt {

/// The application's Payload Format Indicator.
enum class PayloadFormat : std::uint8_t {
    unspecified,  ///< bytes (MQTT 5's indicator 0, or absent)
    utf8,         ///< UTF-8 text: signed as envelope flag bit 2, checked by signer and receiver
};

/// The format's snake_case name, e.g. "utf8".
SECUREMQTT_EXPORT std::string_view to_string(PayloadFormat format) noexcept;

/// One MQTT 5 User Property. Names may repeat; their order is kept and signed.
struct UserProperty {
    std::string name;
    std::string value;
    friend bool operator==(const UserProperty& a, const UserProperty& b) noexcept {
        return a.name == b.name && a.value == b.value;
    }
    friend bool operator!=(const UserProperty& a, const UserProperty& b) noexcept { return !(a == b); }
};

/// The MQTT 5 properties of a message, as published and as received.
///
/// Signed (covered by the envelope's MAC, so a receiver gets them exactly as the sender set
/// them, or rejects the message as bad_mac): content_type, response_topic, correlation_data,
/// user_properties -- what a conforming broker forwards unaltered -- and payload_format (as an
/// envelope flag: the MQTT packet carries the envelope, which is binary, so it never carries
/// Payload Format Indicator 1).
///
/// Not signed: message_expiry, because the broker replaces it with the time remaining. The
/// envelope's timestamp and the receiver's max_age bound a message's age instead.
struct MessageProperties {
    std::optional<std::string> content_type;      ///< e.g. "application/json"
    std::optional<std::string> response_topic;    ///< where a reply goes (a topic name)
    std::optional<std::string> correlation_data;  ///< bytes that match a reply to its request
    std::vector<UserProperty> user_properties;
    PayloadFormat payload_format = PayloadFormat::unspecified;
    /// Message Expiry Interval: sent as given; received as the broker's time remaining.
    std::optional<std::chrono::seconds> message_expiry;

    /// True when at least one property the MAC covers is present (envelope flag bit 1).
    bool has_covered() const noexcept {
        return content_type || response_topic || correlation_data || !user_properties.empty();
    }
    /// True when nothing is set.
    bool empty() const noexcept {
        return !has_covered() && payload_format == PayloadFormat::unspecified && !message_expiry;
    }
};

/// The canonical encoding of the covered properties (docs/envelope-v1.md §2.1), appended to
/// the MAC input of an envelope with flag bit 1: per present property its MQTT 5 identifier
/// byte and big-endian u32-length-prefixed value, in the order content type, response topic,
/// correlation data, then each user property (name and value) in the order given. Empty when
/// none is present. Writes into `out`, replacing its contents.
SECUREMQTT_EXPORT void encode_covered_properties(const MessageProperties& properties,
                                                 std::vector<std::uint8_t>& out);
/// As above, returning a new buffer.
[[nodiscard]] SECUREMQTT_EXPORT std::vector<std::uint8_t> encode_covered_properties(
    const MessageProperties& properties);

/// True when `text` is well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing
/// above U+10FFFF). The empty string is.
SECUREMQTT_EXPORT bool is_well_formed_utf8(ByteView text) noexcept;

}  // namespace securemqtt
