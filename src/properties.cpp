// SPDX-License-Identifier: Apache-2.0
#include <securemqtt/properties.hpp>

#include "byte_order.hpp"

#include <limits>
#include <stdexcept>

namespace securemqtt {
namespace {

// MQTT 5 property identifiers, used as the items' first byte.
constexpr std::uint8_t id_content_type = 0x03;
constexpr std::uint8_t id_response_topic = 0x08;
constexpr std::uint8_t id_correlation_data = 0x09;
constexpr std::uint8_t id_user_property = 0x26;

void put_length(std::vector<std::uint8_t>& out, std::size_t size) {
    if (size > std::numeric_limits<std::uint32_t>::max()) {
        throw std::length_error("properties: a value longer than 4 GiB cannot be encoded");
    }
    std::uint8_t len[4];
    detail::store_be<std::uint32_t>(len, static_cast<std::uint32_t>(size));
    out.insert(out.end(), len, len + 4);
}

void put_value(std::vector<std::uint8_t>& out, std::string_view value) {
    put_length(out, value.size());
    out.insert(out.end(), value.begin(), value.end());
}

void put_item(std::vector<std::uint8_t>& out, std::uint8_t id, const std::optional<std::string>& value) {
    if (!value) return;
    out.push_back(id);
    put_value(out, *value);
}

}  // namespace

void encode_covered_properties(const MessageProperties& properties, std::vector<std::uint8_t>& out) {
    out.clear();
    put_item(out, id_content_type, properties.content_type);
    put_item(out, id_response_topic, properties.response_topic);
    put_item(out, id_correlation_data, properties.correlation_data);
    for (const UserProperty& p : properties.user_properties) {
        out.push_back(id_user_property);
        put_value(out, p.name);
        put_value(out, p.value);
    }
}

std::vector<std::uint8_t> encode_covered_properties(const MessageProperties& properties) {
    std::vector<std::uint8_t> out;
    encode_covered_properties(properties, out);
    return out;
}

bool is_well_formed_utf8(ByteView text) noexcept {
    // RFC 3629 §4's table of well-formed byte sequences.
    const std::uint8_t* p = text.begin();
    const std::uint8_t* const end = text.end();
    while (p != end) {
        const std::uint8_t b = *p;
        if (b < 0x80) {
            ++p;
            continue;
        }
        std::size_t n = 0;
        std::uint8_t lo = 0x80, hi = 0xBF;  // range of the second byte
        if (b >= 0xC2 && b <= 0xDF) {
            n = 1;
        } else if (b >= 0xE0 && b <= 0xEF) {
            n = 2;
            if (b == 0xE0) lo = 0xA0;         // no overlong 3-byte forms
            else if (b == 0xED) hi = 0x9F;    // no surrogates
        } else if (b >= 0xF0 && b <= 0xF4) {
            n = 3;
            if (b == 0xF0) lo = 0x90;         // no overlong 4-byte forms
            else if (b == 0xF4) hi = 0x8F;    // nothing above U+10FFFF
        } else {
            return false;  // 0x80-0xC1 (continuation or overlong lead), 0xF5-0xFF
        }
        if (static_cast<std::size_t>(end - p) <= n) return false;
        if (p[1] < lo || p[1] > hi) return false;
        for (std::size_t i = 2; i <= n; ++i) {
            if (p[i] < 0x80 || p[i] > 0xBF) return false;
        }
        p += n + 1;
    }
    return true;
}

}  // namespace securemqtt
