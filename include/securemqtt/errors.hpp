// SPDX-License-Identifier: Apache-2.0
// The two error channels: exceptions for configuration/TLS/connection problems, and
// RejectReason values for messages that fail verification.
#pragma once

#include <securemqtt/export.hpp>
#include <securemqtt/outcome.hpp>

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

SECUREMQTT_DLL_INTERFACE_WARNINGS_PUSH  // MSVC C4251/C4275 on exported classes: see export.hpp

namespace securemqtt {

/// Base of every exception securemqtt throws. what() is one line naming the file or peer
/// concerned and the cause, and never contains key material.
class SECUREMQTT_EXPORT Error : public std::runtime_error {
public:
    explicit Error(const std::string& message);
};

/// Bad configuration: a missing or malformed key file, a key that is too short, an unknown key
/// id, an invalid topic filter, an option out of range.
class SECUREMQTT_EXPORT ConfigError : public Error {
public:
    explicit ConfigError(const std::string& message);
};

/// A TLS credential or handshake problem (certificate, key, CA, verification).
class SECUREMQTT_EXPORT TlsError : public Error {
public:
    explicit TlsError(const std::string& message);
};

/// Why a connection attempt failed: a closed set a program can act on.
enum class ConnectFailure : std::uint8_t {
    tls_handshake,            ///< TLS failed for another reason (protocol version, ciphers, ...)
    certificate_expired,      ///< the broker's or (as the broker said) our certificate expired
    certificate_not_trusted,  ///< a certificate does not chain to a trusted CA (either side)
    certificate_revoked,      ///< the broker reports our certificate as revoked
    hostname_mismatch,        ///< the broker's certificate does not name the host we connected to
    not_authorized,           ///< the broker refused the MQTT connection (CONNACK)
    network_unreachable,      ///< no TCP connection: refused, unreachable, name not resolved
    timeout,                  ///< no answer within the connect timeout
    /// A publish found the offline buffer full. Not a connect failure: kept for code written
    /// before PublishError, which says it as PublishError::status() == buffer_full.
    buffer_full,
    other,
    /// The broker does not speak the MQTT version asked for: CONNACK "unacceptable protocol
    /// version", or (asked for MQTT 5) it closed the connection after an MQTT 5 CONNECT without
    /// a CONNACK and accepted an MQTT 3.1.1 one (as RabbitMQ 3.10 does). MQTT 3.1.1 works there.
    protocol_not_supported,
};

/// The failure's stable snake_case name, e.g. "hostname_mismatch".
SECUREMQTT_EXPORT std::string_view to_string(ConnectFailure failure) noexcept;

/// The broker could not be reached, or refused or dropped the connection. what() is one line
/// with the reason and the detail, e.g. "connect to mqtts://localhost:8883 failed: TLS handshake
/// failed: certificate verify failed (hostname mismatch)".
class SECUREMQTT_EXPORT ConnectionError : public Error {
public:
    explicit ConnectionError(const std::string& message, ConnectFailure reason = ConnectFailure::other,
                             int paho_code = 0);
    /// What went wrong, for a program to act on.
    ConnectFailure reason() const noexcept { return reason_; }
    /// Paho's return code (0 when not from Paho).
    int paho_code() const noexcept { return paho_code_; }

private:
    ConnectFailure reason_;
    int paho_code_;
};

/// publish() could not hand the message over (nothing to wait on): status() says why --
/// buffer_full (the offline buffer is full) or failed. Also a ConnectionError, whose reason() is
/// ConnectFailure::buffer_full or other, for code written before it.
class SECUREMQTT_EXPORT PublishError : public ConnectionError {
public:
    PublishError(const std::string& message, OutcomeStatus status, int paho_code = 0);
    OutcomeStatus status() const noexcept { return status_; }

private:
    OutcomeStatus status_;
};

/// Signing was refused: no signing key, the key is outside its validity window or scope, or
/// the stream's counter is exhausted (it never wraps).
class SECUREMQTT_EXPORT SigningError : public Error {
public:
    explicit SigningError(const std::string& message);
};

/// Why a received message was not delivered. A closed set: programs may switch on it.
///
/// Verification checks in this order and reports the first failure: size, parse, key lookup,
/// key validity and topic scope, MAC, freshness, replay. Nothing reaches the application before
/// the MAC has been checked.
enum class RejectReason : std::uint8_t {
    malformed,               ///< not a v1 envelope: bad magic, truncated, trailing bytes, bad field
    unsupported_version,     ///< an envelope format version this library does not speak
    unsupported_algorithm,   ///< a MAC algorithm id other than HMAC-SHA256
    unknown_key,             ///< the key id is not in the keyring
    key_not_valid,           ///< the key exists but is outside its validity window now
    key_not_allowed_for_topic,  ///< the key's topic scope does not cover the arrival topic
    bad_mac,                 ///< the tag does not match: altered, moved to another topic, wrong key
    too_old,                 ///< the timestamp is older than the allowed age
    from_future,             ///< the timestamp is further ahead than the allowed clock skew
    replayed,                ///< this stream's counter was already seen, or is behind the window
    too_large,               ///< the envelope exceeds the configured maximum size
    /// A shared replay store (Redis) did not decide within ReplayGuardOptions::store_hold_ms:
    /// unreachable, or the message was in flight at another verifier. Authentic, perhaps not a
    /// replay, but not delivered: the store could not say it was new.
    replay_state_unavailable,
};

/// Number of RejectReason values, for per-reason counters.
inline constexpr std::size_t reject_reason_count = 12;

/// The reason's stable snake_case name, e.g. "bad_mac"; used in logs and by the example programs.
SECUREMQTT_EXPORT std::string_view to_string(RejectReason reason) noexcept;

}  // namespace securemqtt

SECUREMQTT_DLL_INTERFACE_WARNINGS_POP
