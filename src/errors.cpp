// SPDX-License-Identifier: Apache-2.0
#include <securemqtt/errors.hpp>

namespace securemqtt {

Error::Error(const std::string& message) : std::runtime_error(message) {}
ConfigError::ConfigError(const std::string& message) : Error(message) {}
TlsError::TlsError(const std::string& message) : Error(message) {}
ConnectionError::ConnectionError(const std::string& message, ConnectFailure reason, int paho_code)
    : Error(message), reason_(reason), paho_code_(paho_code) {}
PublishError::PublishError(const std::string& message, OutcomeStatus status, int paho_code)
    : ConnectionError(message, status == OutcomeStatus::buffer_full ? ConnectFailure::buffer_full : ConnectFailure::other,
                      paho_code),
      status_(status) {}
SigningError::SigningError(const std::string& message) : Error(message) {}

std::string_view to_string(RejectReason reason) noexcept {
    switch (reason) {
    case RejectReason::malformed: return "malformed";
    case RejectReason::unsupported_version: return "unsupported_version";
    case RejectReason::unsupported_algorithm: return "unsupported_algorithm";
    case RejectReason::unknown_key: return "unknown_key";
    case RejectReason::key_not_valid: return "key_not_valid";
    case RejectReason::key_not_allowed_for_topic: return "key_not_allowed_for_topic";
    case RejectReason::bad_mac: return "bad_mac";
    case RejectReason::too_old: return "too_old";
    case RejectReason::from_future: return "from_future";
    case RejectReason::replayed: return "replayed";
    case RejectReason::too_large: return "too_large";
    case RejectReason::replay_state_unavailable: return "replay_state_unavailable";
    }
    return "unknown";
}

std::string_view to_string(ConnectFailure failure) noexcept {
    switch (failure) {
    case ConnectFailure::tls_handshake: return "tls_handshake";
    case ConnectFailure::certificate_expired: return "certificate_expired";
    case ConnectFailure::certificate_not_trusted: return "certificate_not_trusted";
    case ConnectFailure::certificate_revoked: return "certificate_revoked";
    case ConnectFailure::hostname_mismatch: return "hostname_mismatch";
    case ConnectFailure::not_authorized: return "not_authorized";
    case ConnectFailure::network_unreachable: return "network_unreachable";
    case ConnectFailure::timeout: return "timeout";
    case ConnectFailure::buffer_full: return "buffer_full";
    case ConnectFailure::other: return "other";
    case ConnectFailure::protocol_not_supported: return "protocol_not_supported";
    }
    return "other";
}

}  // namespace securemqtt
