// SPDX-License-Identifier: Apache-2.0
// Broker addresses, and turning a failed connect into a reason a program can act on.
#pragma once

#include <securemqtt/errors.hpp>
#include <securemqtt/tls_options.hpp>

#include "tls_setup.hpp"

#include <chrono>
#include <string>

namespace securemqtt::detail {

struct ServerAddress {
    std::string host;          ///< as given, without brackets
    std::string host_for_uri;  ///< IPv6 literals in brackets
    int port = 8883;
};

/// Parses "mqtts://host:port" or "ssl://host:port" (port optional, IPv6 in brackets). Throws
/// ConfigError "malformed broker URI '...': cause"; plain "tcp://" or "mqtt://" is refused.
ServerAddress parse_server_uri(const std::string& uri);

/// The OpenSSL cipher string handed to Paho. At security level 2, OpenSSL 3 refuses TLS 1.0
/// and 1.1 (the TLS 1.2 floor itself is the process-wide MinProtocol, tls_protocol_floor.hpp;
/// the preflight refuses lists that lower the level). For a TLS 1.3 floor, the TLS 1.2 list
/// holds only anonymous suites, which level 2 excludes: no TLS <= 1.2 handshake can succeed.
std::string tls_cipher_string(const TlsOptions& tls);

struct Diagnosis {
    ConnectFailure reason = ConnectFailure::other;
    std::string detail;  ///< one line, e.g. "TLS handshake failed: certificate verify failed (hostname mismatch)"
};

/// Paho reports most failures as "TCP/TLS connect failure". When that happens this repeats the
/// TCP connect and TLS handshake with OpenSSL directly, set up as Paho was (`tls`), to learn
/// why: the verification result, or the alert the broker sent about our certificate. When the
/// handshake succeeds it sends a CONNECT of `mqtt_version` (4 or 5) with a throwaway client id,
/// clean start, and reads the answer: a CONNACK refusal, or a broker that closes the connection
/// without one (with MQTT 5: it may not speak MQTT 5). Runs only after a failure, bounded by
/// `timeout`; with none left, it makes no probe.
Diagnosis diagnose_connect_failure(const std::string& host, int port, const TlsSetup& tls, int mqtt_version,
                                   const std::string& paho_message, int paho_code, std::chrono::milliseconds timeout);

}  // namespace securemqtt::detail
