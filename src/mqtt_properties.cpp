// SPDX-License-Identifier: Apache-2.0
#include "mqtt_properties.hpp"

#include <securemqtt/topic.hpp>

#include <cstdint>
#include <cstring>
#include <limits>
#include <string_view>

namespace securemqtt::detail {
namespace {

constexpr std::size_t max_mqtt_string = 65535;

std::string code_point_text(std::uint32_t cp) {
    static const char digits[] = "0123456789ABCDEF";
    std::string hex;
    for (int shift = cp > 0xFFFF ? 20 : 12; shift >= 0; shift -= 4) hex += digits[(cp >> shift) & 15];
    return "U+" + hex;
}

// MQTT 5 §1.5.4: well-formed UTF-8 without U+0000, at most 65,535 bytes; and none of the code
// points a receiver may treat as malformed (Mosquitto does, and drops the connection): control
// characters U+0001-U+001F and U+007F-U+009F, non-characters.
std::string string_problem(std::string_view what, std::string_view value) {
    if (value.size() > max_mqtt_string) return std::string(what) + " is longer than 65,535 bytes";
    if (!is_well_formed_utf8(value)) return std::string(what) + " is not well-formed UTF-8";
    if (value.find('\0') != std::string_view::npos) return std::string(what) + " contains U+0000";
    for (std::size_t i = 0; i < value.size();) {  // well-formed: decode without checks
        const auto b = static_cast<unsigned char>(value[i]);
        const std::size_t n = b < 0x80 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4;
        std::uint32_t cp = n == 1 ? b : n == 2 ? (b & 0x1Fu) : n == 3 ? (b & 0x0Fu) : (b & 0x07u);
        for (std::size_t k = 1; k < n; ++k) cp = (cp << 6) | (static_cast<unsigned char>(value[i + k]) & 0x3Fu);
        i += n;
        if (cp < 0x20 || (cp >= 0x7F && cp <= 0x9F)) {
            return std::string(what) + " contains a control character (" + code_point_text(cp) + ")";
        }
        if ((cp >= 0xFDD0 && cp <= 0xFDEF) || (cp & 0xFFFEu) == 0xFFFEu) {
            return std::string(what) + " contains a non-character (" + code_point_text(cp) + ")";
        }
    }
    return {};
}

std::string value_of(const MQTTProperty& p) {
    return p.value.data.data == nullptr ? std::string() : std::string(p.value.data.data, static_cast<std::size_t>(p.value.data.len));
}

std::string pair_value_of(const MQTTProperty& p) {
    return p.value.value.data == nullptr ? std::string() : std::string(p.value.value.data, static_cast<std::size_t>(p.value.value.len));
}

bool take_once(std::optional<std::string>& field, const MQTTProperty& p) {
    if (field) return false;
    field = value_of(p);
    return true;
}

}  // namespace

std::string property_problem(const MessageProperties& properties) {
    std::string problem;
    if (properties.content_type) problem = string_problem("content type", *properties.content_type);
    if (problem.empty() && properties.response_topic) {
        problem = string_problem("response topic", *properties.response_topic);
        if (problem.empty() && !is_valid_topic_name(*properties.response_topic)) {
            problem = "response topic '" + properties.response_topic->substr(0, 256) + "' is not a topic name";
        }
    }
    if (problem.empty() && properties.correlation_data && properties.correlation_data->size() > max_mqtt_string) {
        problem = "correlation data is longer than 65,535 bytes";
    }
    for (const UserProperty& u : properties.user_properties) {
        if (!problem.empty()) break;
        problem = string_problem("user property name", u.name);
        if (problem.empty()) problem = string_problem("user property '" + u.name.substr(0, 64) + "' value", u.value);
    }
    if (problem.empty() && properties.message_expiry &&
        (properties.message_expiry->count() < 0 ||
         properties.message_expiry->count() > std::numeric_limits<std::uint32_t>::max())) {
        problem = "message expiry must be 0 to 4,294,967,295 seconds";
    }
    return problem;
}

mqtt::properties to_paho(const MessageProperties& properties) {
    mqtt::properties out;
    if (properties.content_type) out.add({mqtt::property::CONTENT_TYPE, *properties.content_type});
    if (properties.response_topic) out.add({mqtt::property::RESPONSE_TOPIC, *properties.response_topic});
    if (properties.correlation_data) out.add({mqtt::property::CORRELATION_DATA, *properties.correlation_data});
    for (const UserProperty& u : properties.user_properties) {
        out.add({mqtt::property::USER_PROPERTY, u.name, u.value});
    }
    if (properties.message_expiry) {
        // Paho takes four-byte properties as int32_t; the bits are what go on the wire.
        const auto seconds = static_cast<std::uint32_t>(properties.message_expiry->count());
        std::int32_t wire;
        static_assert(sizeof wire == sizeof seconds);
        std::memcpy(&wire, &seconds, sizeof wire);
        out.add({mqtt::property::MESSAGE_EXPIRY_INTERVAL, wire});
    }
    return out;
}

bool from_paho(const mqtt::properties& received, MessageProperties& out) {
    const MQTTProperties& list = received.c_struct();
    for (int i = 0; i < list.count; ++i) {
        const MQTTProperty& p = list.array[i];
        switch (p.identifier) {
            case MQTTPROPERTY_CODE_CONTENT_TYPE:
                if (!take_once(out.content_type, p)) return false;
                break;
            case MQTTPROPERTY_CODE_RESPONSE_TOPIC:
                if (!take_once(out.response_topic, p)) return false;
                break;
            case MQTTPROPERTY_CODE_CORRELATION_DATA:
                if (!take_once(out.correlation_data, p)) return false;
                break;
            case MQTTPROPERTY_CODE_USER_PROPERTY:
                out.user_properties.push_back({value_of(p), pair_value_of(p)});
                break;
            case MQTTPROPERTY_CODE_MESSAGE_EXPIRY_INTERVAL:
                out.message_expiry = std::chrono::seconds(static_cast<std::uint32_t>(p.value.integer4));
                break;
            default:  // topic alias, subscription identifiers, a packet-level format indicator: not ours
                break;
        }
    }
    return true;
}

}  // namespace securemqtt::detail
