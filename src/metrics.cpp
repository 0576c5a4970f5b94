// SPDX-License-Identifier: Apache-2.0
#include <securemqtt/metrics.hpp>

#include <securemqtt/errors.hpp>
#include <securemqtt/properties.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <set>
#include <string>

namespace securemqtt {
namespace {

using Labels = std::vector<std::pair<std::string, std::string>>;

struct Counter {
    std::string_view name;
    std::string_view help;
    std::uint64_t SessionStats::*field;
};

// The families before and after securemqtt_messages_rejected_total, in output order.
constexpr Counter counters_before_rejected[] = {
    {"securemqtt_messages_published_total", "Messages handed to the MQTT client after signing.",
     &SessionStats::published},
    {"securemqtt_publish_failures_total", "Publishes refused (offline buffer full) or failed after hand-over.",
     &SessionStats::publish_failures},
    {"securemqtt_publishes_sent_again_total",
     "QoS >= 1 publishes sent once more after the connection broke under their write.",
     &SessionStats::publishes_sent_again},
    {"securemqtt_messages_verified_total", "Messages that passed verification.", &SessionStats::verified},
    {"securemqtt_messages_unrouted_total", "Verified messages no subscription of the session matches (not delivered).",
     &SessionStats::unrouted},
};
constexpr Counter counters_after_rejected[] = {
    {"securemqtt_reconnects_total", "Successful reconnections after a connection loss.", &SessionStats::reconnects},
    {"securemqtt_connection_losses_total", "Connections lost.", &SessionStats::connection_losses},
    {"securemqtt_handler_errors_total", "Exceptions thrown by handlers (caught and logged).",
     &SessionStats::handler_errors},
    {"securemqtt_replay_store_failures_total", "Delivered messages the replay store could not record.",
     &SessionStats::replay_store_failures},
    {"securemqtt_replay_lease_overruns_total",
     "Messages another verifier of the shared store also delivered: handling outlasted the store lease.",
     &SessionStats::replay_lease_overruns},
};

// Format 0.0.4: HELP text escapes backslash and newline; label values also the double quote.
void append_escaped(std::string& out, std::string_view text, bool quote) {
    for (const char c : text) {
        if (c == '\\') {
            out += "\\\\";
        } else if (c == '\n') {
            out += "\\n";
        } else if (c == '"' && quote) {
            out += "\\\"";
        } else {
            out += c;
        }
    }
}

void append_header(std::string& out, std::string_view name, std::string_view help, std::string_view type) {
    out.append("# HELP ").append(name).append(" ");
    append_escaped(out, help, false);
    out.append("\n# TYPE ").append(name).append(" ").append(type).append("\n");
}

// `labels` is the session's rendered label list (name="value",...), possibly empty.
void append_series(std::string& out, std::string_view name, const std::string& labels, std::uint64_t value) {
    out.append(name);
    if (!labels.empty()) out.append("{").append(labels).append("}");
    out.append(" ").append(std::to_string(value)).append("\n");
}

bool is_valid_label_name(std::string_view name) {
    const auto letter = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; };
    const auto digit = [](char c) { return c >= '0' && c <= '9'; };
    if (name.empty() || !letter(name[0])) return false;
    return std::all_of(name.begin(), name.end(), [&](char c) { return letter(c) || digit(c); });
}

// Checks every session's labels and renders each as name="value",... (in the caller's order).
std::vector<std::string> render_labels(const std::vector<SessionMetrics>& sessions) {
    std::vector<std::string> rendered;
    std::set<Labels> label_sets;
    for (std::size_t i = 0; i < sessions.size(); ++i) {
        const std::string where = "metrics: sessions[" + std::to_string(i) + "]: ";
        std::set<std::string_view> names;
        Labels identity;  // what Prometheus identifies the series by
        std::string text;
        for (const auto& [name, value] : sessions[i].labels) {
            if (!is_valid_label_name(name) || name.rfind("__", 0) == 0 || name == "reason") {
                std::string shown;
                append_escaped(shown, name, true);  // keeps what() on one line
                throw ConfigError(where + "label name '" + shown +
                                  "' must match [a-zA-Z_][a-zA-Z0-9_]*, not start with \"__\" and not be \"reason\"");
            }
            if (!names.insert(name).second) throw ConfigError(where + "label '" + name + "' given twice");
            if (!is_well_formed_utf8(value)) {
                throw ConfigError(where + "value of label '" + name + "' is not well-formed UTF-8");
            }
            // An empty value is the same as no label to Prometheus, so it does not tell sessions apart.
            if (!value.empty()) identity.emplace_back(name, value);
            if (!text.empty()) text += ",";
            text.append(name).append("=\"");
            append_escaped(text, value, true);
            text += "\"";
        }
        std::sort(identity.begin(), identity.end());
        if (!label_sets.insert(std::move(identity)).second) {
            throw ConfigError(where + "same label set as an earlier session: their series would collide");
        }
        rendered.push_back(std::move(text));
    }
    return rendered;
}

void append_counters(std::string& out, const std::vector<SessionMetrics>& sessions,
                     const std::vector<std::string>& labels, const Counter* begin, const Counter* end) {
    for (const Counter* c = begin; c != end; ++c) {
        append_header(out, c->name, c->help, "counter");
        for (std::size_t i = 0; i < sessions.size(); ++i) append_series(out, c->name, labels[i], sessions[i].stats.*c->field);
    }
}

}  // namespace

std::string to_prometheus(const SessionStats& stats, bool connected) {
    return to_prometheus(std::vector<SessionMetrics>{{stats, connected, {}}});
}

std::string to_prometheus(const std::vector<SessionMetrics>& sessions) {
    const std::vector<std::string> labels = render_labels(sessions);
    std::string out;
    append_counters(out, sessions, labels, std::begin(counters_before_rejected), std::end(counters_before_rejected));

    constexpr std::string_view rejected = "securemqtt_messages_rejected_total";
    append_header(out, rejected, "Messages rejected by verification, by reason.", "counter");
    for (std::size_t i = 0; i < sessions.size(); ++i) {
        for (std::size_t r = 0; r < reject_reason_count; ++r) {
            std::string series_labels = labels[i];
            if (!series_labels.empty()) series_labels += ",";
            series_labels.append("reason=\"").append(to_string(static_cast<RejectReason>(r))).append("\"");
            append_series(out, rejected, series_labels, sessions[i].stats.rejected_by_reason[r]);
        }
    }

    append_counters(out, sessions, labels, std::begin(counters_after_rejected), std::end(counters_after_rejected));

    constexpr std::string_view connected = "securemqtt_connected";
    append_header(out, connected, "1 while the session is connected to the broker, 0 otherwise.", "gauge");
    for (std::size_t i = 0; i < sessions.size(); ++i) append_series(out, connected, labels[i], sessions[i].connected ? 1 : 0);
    return out;
}

}  // namespace securemqtt
