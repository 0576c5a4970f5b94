// SPDX-License-Identifier: Apache-2.0
// Names of the public enums that have no module of their own to live in.
#include <securemqtt/log.hpp>
#include <securemqtt/mqtt_types.hpp>
#include <securemqtt/properties.hpp>
#include <securemqtt/replay_guard.hpp>
#include <securemqtt/replay_store.hpp>
#include <securemqtt/secure_session.hpp>
#include <securemqtt/tls_options.hpp>

namespace securemqtt {

std::string_view to_string(LogLevel level) noexcept {
    switch (level) {
        case LogLevel::debug: return "debug";
        case LogLevel::info: return "info";
        case LogLevel::warning: return "warning";
        case LogLevel::error: return "error";
    }
    return "unknown";
}

std::string_view to_string(RetainedPolicy policy) noexcept {
    switch (policy) {
        case RetainedPolicy::same_as_live: return "same_as_live";
        case RetainedPolicy::allow_older: return "allow_older";
    }
    return "unknown";
}

std::string_view to_string(QoS qos) noexcept {
    switch (qos) {
        case QoS::at_most_once: return "at_most_once";
        case QoS::at_least_once: return "at_least_once";
        case QoS::exactly_once: return "exactly_once";
    }
    return "unknown";
}

std::string_view to_string(MqttVersion version) noexcept {
    switch (version) {
        case MqttVersion::v3_1_1: return "v3_1_1";
        case MqttVersion::v5: return "v5";
    }
    return "unknown";
}

std::string_view to_string(TlsVersion version) noexcept {
    switch (version) {
        case TlsVersion::tls1_2: return "tlsv1.2";
        case TlsVersion::tls1_3: return "tlsv1.3";
    }
    return "unknown";
}

std::string_view to_string(PayloadFormat format) noexcept {
    switch (format) {
        case PayloadFormat::unspecified: return "unspecified";
        case PayloadFormat::utf8: return "utf8";
    }
    return "unknown";
}

std::string_view to_string(Delivery delivery) noexcept {
    switch (delivery) {
        case Delivery::once: return "once";
        case Delivery::every_matching_subscription: return "every_matching_subscription";
    }
    return "unknown";
}

std::string_view to_string(SessionEventType type) noexcept {
    switch (type) {
        case SessionEventType::connected: return "connected";
        case SessionEventType::connection_lost: return "connection_lost";
        case SessionEventType::reconnecting: return "reconnecting";
        case SessionEventType::disconnected: return "disconnected";
    }
    return "unknown";
}

std::string_view to_string(ReplayStore::Verdict verdict) noexcept {
    switch (verdict) {
        case ReplayStore::Verdict::admitted: return "admitted";
        case ReplayStore::Verdict::replayed: return "replayed";
        case ReplayStore::Verdict::in_flight: return "in_flight";
        case ReplayStore::Verdict::unavailable: return "unavailable";
    }
    return "unknown";
}

}  // namespace securemqtt
