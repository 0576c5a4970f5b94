// SPDX-License-Identifier: Apache-2.0
// MQTT's quality of service and protocol version, as the API takes them.
#pragma once

#include <securemqtt/export.hpp>

#include <cstdint>
#include <string_view>

namespace securemqtt {

/// MQTT's delivery guarantees; the numbers are the QoS levels on the wire.
enum class QoS : std::uint8_t {
    at_most_once = 0,   ///< QoS 0: sent once, never acknowledged
    at_least_once = 1,  ///< QoS 1: acknowledged (PUBACK), may arrive twice (a receiver rejects the copy as replayed)
    exactly_once = 2,   ///< QoS 2: acknowledged in two steps (PUBREC/PUBREL/PUBCOMP)
};

/// The snake_case name, e.g. "at_least_once"; "unknown" for a value outside the enum.
SECUREMQTT_EXPORT std::string_view to_string(QoS qos) noexcept;

/// The MQTT protocol version a session speaks; the numbers are the protocol levels on the wire.
enum class MqttVersion : std::uint8_t {
    v3_1_1 = 4,  ///< MQTT 3.1.1
    v5 = 5,      ///< MQTT 5: properties (some signed), reason codes, request/response
};

/// "v3_1_1" or "v5"; "unknown" for a value outside the enum.
SECUREMQTT_EXPORT std::string_view to_string(MqttVersion version) noexcept;

/// A QoS or MqttVersion setting (fields and parameters) that still takes, with a deprecation
/// warning, the int it replaced: `options.qos = 1`, `mqtt_version = 5`, `publish(t, p, 1)`,
/// `int q = message.qos` and `message.qos == 1` compile as before. Write `QoS::at_least_once`
/// and `MqttVersion::v5` instead. It compares with enum values and with other settings, and goes
/// to to_string(); `level()` is the number. What no longer compiles, because the value converts
/// to both the enum and (deprecated) int: `switch (message.qos)` -- write
/// `switch (QoS(message.qos))` -- and a `?:` mixing a setting with an enum or an int.
template <typename Enum>
class IntCompatible {
public:
    constexpr IntCompatible(Enum value) noexcept : value_(static_cast<int>(value)) {}  // NOLINT: implicit on purpose
    [[deprecated("pass securemqtt::QoS or securemqtt::MqttVersion instead of an int")]]
    constexpr IntCompatible(int value) noexcept : value_(value) {}  // NOLINT: the old form
    /// `{}` as an argument once meant the int 0, and still does (QoS::at_most_once), deprecated.
    /// As publish()'s QoS it no longer compiles: {} could be PublishOptions too (whose QoS is 1).
    [[deprecated("pass securemqtt::QoS or securemqtt::MqttVersion instead of {}")]]
    constexpr IntCompatible() noexcept : value_(0) {}
    constexpr operator Enum() const noexcept { return static_cast<Enum>(value_); }  // NOLINT
    [[deprecated("compare with securemqtt::QoS or securemqtt::MqttVersion values, or use level()")]]
    constexpr operator int() const noexcept { return value_; }  // NOLINT: the old form
    /// The number as given: the QoS level, or the protocol level (4 or 5). A value given as an
    /// int may be outside the enum; the session refuses it with ConfigError.
    constexpr int level() const noexcept { return value_; }

    // On the numbers as given: an int outside the enum equals no enum value.
    friend constexpr bool operator==(IntCompatible a, IntCompatible b) noexcept { return a.value_ == b.value_; }
    friend constexpr bool operator!=(IntCompatible a, IntCompatible b) noexcept { return a.value_ != b.value_; }
    friend constexpr bool operator==(IntCompatible a, Enum b) noexcept { return a.value_ == static_cast<int>(b); }
    friend constexpr bool operator!=(IntCompatible a, Enum b) noexcept { return a.value_ != static_cast<int>(b); }
    friend constexpr bool operator==(Enum a, IntCompatible b) noexcept { return static_cast<int>(a) == b.value_; }
    friend constexpr bool operator!=(Enum a, IntCompatible b) noexcept { return static_cast<int>(a) != b.value_; }
    friend constexpr bool operator<(IntCompatible a, IntCompatible b) noexcept { return a.value_ < b.value_; }
    friend constexpr bool operator>(IntCompatible a, IntCompatible b) noexcept { return a.value_ > b.value_; }
    friend constexpr bool operator<=(IntCompatible a, IntCompatible b) noexcept { return a.value_ <= b.value_; }
    friend constexpr bool operator>=(IntCompatible a, IntCompatible b) noexcept { return a.value_ >= b.value_; }
#define SECUREMQTT_INT_COMPARISON(op)                                                                        \
    [[deprecated("compare with securemqtt::QoS or securemqtt::MqttVersion values, or use level()")]]         \
    friend constexpr bool operator op(IntCompatible a, int b) noexcept { return a.value_ op b; }            \
    [[deprecated("compare with securemqtt::QoS or securemqtt::MqttVersion values, or use level()")]]         \
    friend constexpr bool operator op(int a, IntCompatible b) noexcept { return a op b.value_; }
    SECUREMQTT_INT_COMPARISON(==)
    SECUREMQTT_INT_COMPARISON(!=)
    SECUREMQTT_INT_COMPARISON(<)
    SECUREMQTT_INT_COMPARISON(>)
    SECUREMQTT_INT_COMPARISON(<=)
    SECUREMQTT_INT_COMPARISON(>=)
#undef SECUREMQTT_INT_COMPARISON

private:
    int value_;
};

}  // namespace securemqtt
