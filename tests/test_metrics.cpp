// SPDX-License-Identifier: Apache-2.0
// to_prometheus(): session counters in the Prometheus text exposition format 0.0.4.
#include "support/catch.hpp"

#include <securemqtt/securemqtt.hpp>

#include <cstddef>
#include <sstream>
#include <string>
#include <vector>

using namespace securemqtt;

namespace {

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
}

std::size_t count_of(const std::string& text, const std::string& part) {
    std::size_t n = 0;
    for (std::size_t pos = text.find(part); pos != std::string::npos; pos = text.find(part, pos + 1)) ++n;
    return n;
}

SessionMetrics labelled(std::vector<std::pair<std::string, std::string>> labels) {
    SessionMetrics m;
    m.labels = std::move(labels);
    return m;
}

SessionStats some_stats() {
    SessionStats s;
    s.published = 3;
    s.publish_failures = 1;
    s.verified = 7;
    s.unrouted = 2;
    s.rejected_by_reason[static_cast<std::size_t>(RejectReason::bad_mac)] = 4;
    s.rejected_by_reason[static_cast<std::size_t>(RejectReason::replayed)] = 1;
    s.rejected = 5;
    s.reconnects = 1;
    s.connection_losses = 2;
    s.replay_lease_overruns = 18446744073709551615ULL;
    return s;
}

}  // namespace

TEST_CASE("one session's counters, exactly as Prometheus reads them", "[metrics]") {
    const std::string expected =
        "# HELP securemqtt_messages_published_total Messages handed to the MQTT client after signing.\n"
        "# TYPE securemqtt_messages_published_total counter\n"
        "securemqtt_messages_published_total 3\n"
        "# HELP securemqtt_publish_failures_total Publishes refused (offline buffer full) or failed after hand-over.\n"
        "# TYPE securemqtt_publish_failures_total counter\n"
        "securemqtt_publish_failures_total 1\n"
        "# HELP securemqtt_publishes_sent_again_total QoS >= 1 publishes sent once more after the connection broke "
        "under their write.\n"
        "# TYPE securemqtt_publishes_sent_again_total counter\n"
        "securemqtt_publishes_sent_again_total 0\n"
        "# HELP securemqtt_messages_verified_total Messages that passed verification.\n"
        "# TYPE securemqtt_messages_verified_total counter\n"
        "securemqtt_messages_verified_total 7\n"
        "# HELP securemqtt_messages_unrouted_total Verified messages no subscription of the session matches (not "
        "delivered).\n"
        "# TYPE securemqtt_messages_unrouted_total counter\n"
        "securemqtt_messages_unrouted_total 2\n"
        "# HELP securemqtt_messages_rejected_total Messages rejected by verification, by reason.\n"
        "# TYPE securemqtt_messages_rejected_total counter\n"
        "securemqtt_messages_rejected_total{reason=\"malformed\"} 0\n"
        "securemqtt_messages_rejected_total{reason=\"unsupported_version\"} 0\n"
        "securemqtt_messages_rejected_total{reason=\"unsupported_algorithm\"} 0\n"
        "securemqtt_messages_rejected_total{reason=\"unknown_key\"} 0\n"
        "securemqtt_messages_rejected_total{reason=\"key_not_valid\"} 0\n"
        "securemqtt_messages_rejected_total{reason=\"key_not_allowed_for_topic\"} 0\n"
        "securemqtt_messages_rejected_total{reason=\"bad_mac\"} 4\n"
        "securemqtt_messages_rejected_total{reason=\"too_old\"} 0\n"
        "securemqtt_messages_rejected_total{reason=\"from_future\"} 0\n"
        "securemqtt_messages_rejected_total{reason=\"replayed\"} 1\n"
        "securemqtt_messages_rejected_total{reason=\"too_large\"} 0\n"
        "securemqtt_messages_rejected_total{reason=\"replay_state_unavailable\"} 0\n"
        "# HELP securemqtt_reconnects_total Successful reconnections after a connection loss.\n"
        "# TYPE securemqtt_reconnects_total counter\n"
        "securemqtt_reconnects_total 1\n"
        "# HELP securemqtt_connection_losses_total Connections lost.\n"
        "# TYPE securemqtt_connection_losses_total counter\n"
        "securemqtt_connection_losses_total 2\n"
        "# HELP securemqtt_handler_errors_total Exceptions thrown by handlers (caught and logged).\n"
        "# TYPE securemqtt_handler_errors_total counter\n"
        "securemqtt_handler_errors_total 0\n"
        "# HELP securemqtt_replay_store_failures_total Delivered messages the replay store could not record.\n"
        "# TYPE securemqtt_replay_store_failures_total counter\n"
        "securemqtt_replay_store_failures_total 0\n"
        "# HELP securemqtt_replay_lease_overruns_total Messages another verifier of the shared store also delivered: "
        "handling outlasted the store lease.\n"
        "# TYPE securemqtt_replay_lease_overruns_total counter\n"
        "securemqtt_replay_lease_overruns_total 18446744073709551615\n"
        "# HELP securemqtt_connected 1 while the session is connected to the broker, 0 otherwise.\n"
        "# TYPE securemqtt_connected gauge\n"
        "securemqtt_connected 1\n";
    CHECK(to_prometheus(some_stats(), true) == expected);
    CHECK(prometheus_content_type == "text/plain; version=0.0.4; charset=utf-8");
}

TEST_CASE("the single-session form is the vector form with one unlabelled session", "[metrics]") {
    for (const bool connected : {true, false}) {
        CHECK(to_prometheus(some_stats(), connected) == to_prometheus({{some_stats(), connected, {}}}));
    }
    const std::string down = to_prometheus(SessionStats{}, false);
    CHECK(count_of(down, "\nsecuremqtt_connected 0\n") == 1);
    CHECK(down.back() == '\n');
}

TEST_CASE("no sessions: every family's HELP and TYPE lines and nothing else", "[metrics]") {
    const std::string text = to_prometheus(std::vector<SessionMetrics>{});
    const std::vector<std::string> lines = lines_of(text);
    REQUIRE(lines.size() == 24);  // 12 families
    for (std::size_t i = 0; i < lines.size(); i += 2) {
        CHECK(lines[i].rfind("# HELP securemqtt_", 0) == 0);
        CHECK(lines[i + 1].rfind("# TYPE securemqtt_", 0) == 0);
    }
    CHECK(text.back() == '\n');
    CHECK(count_of(text, " counter\n") == 11);
    CHECK(count_of(text, "# TYPE securemqtt_connected gauge\n") == 1);
}

TEST_CASE("every reject reason has a series per session, zeros included, session labels before reason",
          "[metrics]") {
    std::vector<SessionMetrics> sessions{labelled({{"session", "a"}}), labelled({{"session", "b"}, {"site", "x"}})};
    sessions[1].stats.rejected_by_reason[static_cast<std::size_t>(RejectReason::too_old)] = 9;
    const std::string text = to_prometheus(sessions);
    CHECK(count_of(text, "securemqtt_messages_rejected_total{") == 2 * reject_reason_count);
    for (std::size_t r = 0; r < reject_reason_count; ++r) {
        const std::string reason(to_string(static_cast<RejectReason>(r)));
        INFO("reason " << reason);
        const std::string b_value = reason == "too_old" ? " 9\n" : " 0\n";
        CHECK(count_of(text, "reason=\"" + reason + "\"}") == 2);
        CHECK(count_of(text, "\nsecuremqtt_messages_rejected_total{session=\"a\",reason=\"" + reason + "\"} 0\n") == 1);
        CHECK(count_of(text, "\nsecuremqtt_messages_rejected_total{session=\"b\",site=\"x\",reason=\"" + reason +
                                 "\"}" + b_value) == 1);
    }
    // Each family once, one series per session, every series labelled.
    CHECK(count_of(text, "# TYPE ") == 12);
    CHECK(count_of(text, "{session=\"a\"") == 11 + reject_reason_count);
    CHECK(count_of(text, "{session=\"b\",site=\"x\"") == 11 + reject_reason_count);
    CHECK(count_of(text, "\nsecuremqtt_connected{session=\"a\"} 0\n") == 1);
}

TEST_CASE("label values are escaped as format 0.0.4 says, and any UTF-8 passes as it is", "[metrics]") {
    const std::string text = to_prometheus({labelled({{"path", "C:\\dir \"x\"\nnext"}, {"name", "caf\xc3\xa9 \xe2\x98\x83"}})});
    CHECK(count_of(text, "\nsecuremqtt_messages_verified_total{path=\"C:\\\\dir \\\"x\\\"\\nnext\",name=\"caf\xc3\xa9 "
                         "\xe2\x98\x83\"} 0\n") == 1);
    CHECK(count_of(text, "\n") == lines_of(text).size());  // no raw newline from the value
}

TEST_CASE("a bad label is a ConfigError", "[metrics]") {
    const auto with_label = [](const std::string& name, const std::string& value) {
        return to_prometheus({labelled({{name, value}})});
    };
    SECTION("names must match [a-zA-Z_][a-zA-Z0-9_]*") {
        for (const std::string name : {"", "1st", "a-b", "a b", "caf\xc3\xa9", "a:b", "new\nline"}) {
            INFO("name '" << name << "'");
            CHECK_THROWS_AS(with_label(name, "v"), ConfigError);
        }
        CHECK_THROWS_WITH(with_label("new\nline", "v"), Catch::Contains("label name 'new\\nline'"));
        CHECK_NOTHROW(with_label("_a1", "v"));
        CHECK_NOTHROW(with_label("Z", "v"));
    }
    SECTION("names starting \"__\" are Prometheus's") {
        CHECK_THROWS_AS(with_label("__name__", "v"), ConfigError);
        CHECK_THROWS_AS(with_label("__", "v"), ConfigError);
        CHECK_NOTHROW(with_label("_x_", "v"));
    }
    SECTION("\"reason\" is the rejection counter's own label") {
        CHECK_THROWS_WITH(with_label("reason", "v"), Catch::Contains("not be \"reason\""));
        CHECK_NOTHROW(with_label("reasons", "v"));
    }
    SECTION("a name given twice within a session") {
        CHECK_THROWS_WITH(to_prometheus({labelled({{"session", "a"}, {"site", "x"}, {"session", "b"}})}),
                          Catch::Contains("label 'session' given twice"));
    }
    SECTION("a value that is not well-formed UTF-8") {
        // A stray continuation byte, an overlong '/', a surrogate, a truncated sequence.
        for (const std::string value : {"\xff", "a\x80", "\xc0\xaf", "\xed\xa0\x80", "caf\xc3"}) {
            CHECK_THROWS_WITH(with_label("v", value), Catch::Contains("not well-formed UTF-8"));
        }
    }
    SECTION("the error names the session") {
        CHECK_THROWS_WITH(to_prometheus({labelled({{"session", "a"}}), labelled({{"9", "b"}})}),
                          Catch::Contains("sessions[1]"));
    }
}

TEST_CASE("two sessions with the same label set are a ConfigError: their series would collide", "[metrics]") {
    const auto collides = [](std::vector<SessionMetrics> sessions) {
        CHECK_THROWS_WITH(to_prometheus(sessions), Catch::Contains("same label set"));
    };
    collides({SessionMetrics{}, SessionMetrics{}});
    collides({labelled({{"session", "a"}}), labelled({{"session", "b"}}), labelled({{"session", "a"}})});
    collides({labelled({{"a", "1"}, {"b", "2"}}), labelled({{"b", "2"}, {"a", "1"}})});  // order is no difference
    collides({SessionMetrics{}, labelled({{"session", ""}})});  // an empty value is no label to Prometheus

    CHECK_NOTHROW(to_prometheus({labelled({{"a", "1"}}), labelled({{"a", "1"}, {"b", "2"}})}));
    CHECK_NOTHROW(to_prometheus({SessionMetrics{}, labelled({{"session", "a"}})}));
    CHECK_NOTHROW(to_prometheus({labelled({{"a", "1"}}), labelled({{"b", "1"}})}));
}
