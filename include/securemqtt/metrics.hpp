// SPDX-License-Identifier: Apache-2.0
// Session counters in the Prometheus text exposition format, for a /metrics endpoint.
#pragma once

#include <securemqtt/export.hpp>
#include <securemqtt/secure_session.hpp>

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace securemqtt {

/// Content-Type of the Prometheus text exposition format 0.0.4 (serve /metrics with it).
inline constexpr std::string_view prometheus_content_type = "text/plain; version=0.0.4; charset=utf-8";

/// One session's figures for to_prometheus().
struct SessionMetrics {
    SessionStats stats;       ///< e.g. SecureSession::stats()
    bool connected = false;   ///< e.g. SecureSession::is_connected()
    /// Labels on every series of this session, e.g. {{"session", "gateway-1"}}: needed when one
    /// exposition carries several sessions. Names match [a-zA-Z_][a-zA-Z0-9_]*, do not start
    /// with "__" (reserved by Prometheus) and are not "reason" (the rejection counter's own
    /// label); values are any well-formed UTF-8, escaped in the output.
    std::vector<std::pair<std::string, std::string>> labels;
};

/// The session's counters in Prometheus text format 0.0.4, each metric family with its HELP
/// and TYPE lines:
///
///     securemqtt_messages_published_total, securemqtt_publish_failures_total,
///     securemqtt_publishes_sent_again_total, securemqtt_messages_verified_total,
///     securemqtt_messages_unrouted_total,
///     securemqtt_messages_rejected_total{reason="..."} (every RejectReason, zeros included),
///     securemqtt_reconnects_total, securemqtt_connection_losses_total,
///     securemqtt_handler_errors_total, securemqtt_replay_store_failures_total,
///     securemqtt_replay_lease_overruns_total (counters, as the SessionStats fields),
///     securemqtt_connected (gauge: 1 or 0).
///
/// The same as to_prometheus({{stats, connected, {}}}).
SECUREMQTT_EXPORT std::string to_prometheus(const SessionStats& stats, bool connected);

/// Several sessions in one exposition: each metric family once, with one series per session
/// (its labels first, then `reason` on the rejection counter). No sessions: the HELP and TYPE
/// lines only.
///
/// Throws ConfigError for a bad label name, a name twice within a session, a value that is not
/// well-formed UTF-8, or two sessions with the same label set (their series would collide; a
/// label with an empty value counts as absent, as in Prometheus).
SECUREMQTT_EXPORT std::string to_prometheus(const std::vector<SessionMetrics>& sessions);

}  // namespace securemqtt
