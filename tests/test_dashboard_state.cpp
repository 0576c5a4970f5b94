// SPDX-License-Identifier: Apache-2.0
// secure_dashboard's data model (examples/dashboard/state.hpp): what it shows of hostile content,
// the readings it takes, its caps, its updates, and its use from several threads at once (this
// file also runs under TSan).
#include "dashboard/state.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <string>
#include <thread>

namespace {

securemqtt::Message message(const std::string& topic, const std::string& payload, std::int64_t signed_ms = 1000,
                            const std::string& key_id = "device-1") {
    securemqtt::Message m;
    m.topic = topic;
    m.payload = securemqtt::ByteView(payload);
    m.key_id = key_id;
    m.timestamp_ms = signed_ms;
    return m;
}

nlohmann::json row(const nlohmann::json& snapshot, const std::string& topic) {
    for (const auto& t : snapshot["topics"]) {
        if (t["topic"] == topic) return t;
    }
    FAIL("no row for " << topic);
    return {};
}

}  // namespace

TEST_CASE("dashboard: hidden characters are shown as escapes, markup stays as it is", "[dashboard]") {
    using dashboard::visible;
    CHECK(visible("<img src=x onerror=alert(1)>") == "<img src=x onerror=alert(1)>");  // text, set as text
    CHECK(visible("line 1\nline 2\tend") == "line 1\\nline 2\\tend");
    CHECK(visible(std::string("a\0b", 3)) == "a\\u{00}b");
    CHECK(visible("\x1b[31mred") == "\\u{1B}[31mred");
    CHECK(visible("devices/d1/\u202Epmet") == "devices/d1/\\u{202E}pmet");  // right-to-left override
    CHECK(visible("zero\u200Bwidth\uFEFF") == "zero\\u{200B}width\\u{FEFF}");
    CHECK(visible("\u2028\u2066\u0085") == "\\u{2028}\\u{2066}\\u{85}");
    CHECK(visible("\u061C\u00AD\u3164\uFE0F\U000E0041") == "\\u{061C}\\u{AD}\\u{3164}\\u{FE0F}\\u{E0041}");
    CHECK(visible("caf\u00e9 \u6e29\u5ea6 \U0001F321") == "caf\u00e9 \u6e29\u5ea6 \U0001F321");  // ordinary text unchanged
    CHECK(visible("C:\\path") == "C:\\path");  // payload text keeps its backslashes
}

TEST_CASE("dashboard: in a topic a backslash is escaped, so an escape cannot be typed", "[dashboard]") {
    // A topic spelling "\u{202E}" literally must not look like one holding U+202E.
    CHECK(dashboard::printable("devices/d1/\\u{202E}x", 100) == "devices/d1/\\\\u{202E}x");
    CHECK(dashboard::printable("devices/d1/\u202Ex", 100) == "devices/d1/\\u{202E}x");
    CHECK(dashboard::printable(std::string("a\\\xff", 3), 100) == "a\\x5c\\xff");
}

TEST_CASE("dashboard: a string that is not UTF-8 is shown as hex escapes, cut to its limit", "[dashboard]") {
    CHECK(dashboard::printable(std::string("ok\xff\xfe", 4), 100) == "ok\\xff\\xfe");
    CHECK(dashboard::printable("abcdef", 3) == "abc");
    // Cut on a character boundary: the 3-byte character does not fit in 4 bytes after "ab".
    CHECK(dashboard::printable("ab\u6e29\u5ea6", 4) == "ab");
    CHECK(dashboard::printable("ab\u6e29\u5ea6", 5) == "ab\u6e29");
}

TEST_CASE("dashboard: readings are numbers, or the first numeric member of a small JSON object", "[dashboard]") {
    using dashboard::reading_of;
    CHECK(reading_of("21.5") == 21.5);
    CHECK(reading_of(" -3 \n") == -3.0);
    CHECK(reading_of("1e3") == 1000.0);
    CHECK(reading_of(R"({"unit": "%", "rh": 43, "battery": 97})") == 43.0);  // as written, not by name
    CHECK(reading_of(R"({"b": 1, "a": 2})") == 1.0);
    CHECK_FALSE(reading_of("inf"));
    CHECK_FALSE(reading_of("nan"));
    CHECK_FALSE(reading_of("1e999"));
    CHECK_FALSE(reading_of("21.5 C"));
    CHECK_FALSE(reading_of("0x10"));
    CHECK_FALSE(reading_of(""));
    CHECK_FALSE(reading_of(R"({"status": "ok"})"));
    CHECK_FALSE(reading_of("[1, 2]"));
    CHECK_FALSE(reading_of("{\"a\": 1"));  // not JSON
    const std::string deep = "{\"a\":" + std::string(500, '[') + std::string(500, ']') + "}";
    CHECK_FALSE(reading_of(deep));
    std::string large = "{\"v\": 1, \"pad\": \"" + std::string(1024, 'x') + "\"}";
    CHECK_FALSE(reading_of(large));  // above 1024 bytes: not parsed
}

TEST_CASE("dashboard: a payload that is not UTF-8 is hex, and values are cut and marked", "[dashboard]") {
    dashboard::Limits limits;
    limits.value_bytes = 8;
    dashboard::State state(limits);
    state.add_verified(message("t/hex", std::string("\xff\xfe\x00\x41", 4)));
    state.add_verified(message("t/long", "0123456789abc"));
    state.add_verified(message("t/lines", "a\nb"));
    const nlohmann::json s = state.snapshot();
    CHECK(row(s, "t/hex")["value"] == "fffe0041");
    CHECK(row(s, "t/hex")["value_format"] == "hex");
    CHECK(row(s, "t/long")["value"] == "01234567");
    CHECK(row(s, "t/long")["truncated"] == true);
    CHECK(row(s, "t/long")["size"] == 13);
    CHECK(row(s, "t/lines")["value"] == "a\\nb");
    CHECK(row(s, "t/lines")["key_id"] == "device-1");
}

TEST_CASE("dashboard: the caps hold: topics, chart lines, points, history, rejections", "[dashboard]") {
    dashboard::Limits limits;
    limits.topics = 5;
    limits.chart_topics = 2;
    limits.points_per_topic = 3;
    limits.history_ms = 10000;
    limits.rejections = 4;
    dashboard::State state(limits);
    for (int i = 0; i < 8; ++i) state.add_verified(message("t/" + std::to_string(i), "1"));
    for (int i = 0; i < 10; ++i) state.add_verified(message("t/0", std::to_string(i), 1000 + i));
    state.add_verified(message("t/1", "7", 30000));  // 29 s after t/1's first point: that one is out of the window
    for (int i = 0; i < 9; ++i) state.add_rejected("r/" + std::to_string(i), securemqtt::RejectReason::bad_mac);

    const nlohmann::json s = state.snapshot();
    REQUIRE(s["topics"].size() == 5);
    CHECK(s["topics_dropped"] == 3);  // messages on topics beyond the first five
    CHECK(s["numeric_topics"] == 5);
    CHECK(row(s, "t/0")["charted"] == true);
    CHECK(row(s, "t/1")["charted"] == true);
    CHECK(row(s, "t/2")["charted"] == false);
    CHECK(row(s, "t/2")["points"].empty());  // only charted topics keep points
    CHECK(row(s, "t/2")["numeric"] == 1.0);
    CHECK(row(s, "t/0")["points"] == nlohmann::json::parse("[[1007, 7.0], [1008, 8.0], [1009, 9.0]]"));
    CHECK(row(s, "t/0")["count"] == 11);
    CHECK(row(s, "t/1")["points"] == nlohmann::json::parse("[[30000, 7.0]]"));
    REQUIRE(s["rejections"].size() == 4);
    CHECK(s["rejections"][0]["topic"] == "r/5");  // oldest kept first
    CHECK(s["rejections"][3]["topic"] == "r/8");
    CHECK(s["rejections"][3]["reason"] == "bad_mac");
}

TEST_CASE("dashboard: an update carries only what changed after its cursor", "[dashboard]") {
    dashboard::State state(dashboard::Limits{});
    state.add_verified(message("t/a", "1", 1000));
    state.add_verified(message("t/b", "2", 1000));
    const nlohmann::json first = state.snapshot();
    CHECK(first["full"] == true);
    CHECK(first["topics"].size() == 2);
    const std::uint64_t cursor = first["seq"];

    CHECK(state.snapshot(cursor)["topics"].empty());
    state.add_verified(message("t/b", "3", 2000));
    state.add_rejected("t/c", securemqtt::RejectReason::replayed);
    const nlohmann::json next = state.snapshot(cursor);
    CHECK(next["full"] == false);
    REQUIRE(next["topics"].size() == 1);
    CHECK(next["topics"][0]["topic"] == "t/b");
    CHECK(next["topics"][0]["points"] == nlohmann::json::parse("[[2000, 3.0]]"));  // the new point only
    REQUIRE(next["rejections"].size() == 1);
    CHECK(next["rejections"][0]["reason"] == "replayed");
    CHECK(next["seq"].get<std::uint64_t>() > cursor);
}

TEST_CASE("dashboard: handlers and readers on several threads at once", "[dashboard]") {
    dashboard::Limits limits;
    limits.topics = 50;
    dashboard::State state(limits);
    std::atomic<bool> done{false};
    std::thread reader([&] {
        std::uint64_t cursor = 0;
        while (!done) {
            const nlohmann::json s = state.snapshot(cursor);
            cursor = s["seq"];
            (void)s.dump();
        }
    });
    std::thread rejecter([&] {
        for (int i = 0; i < 2000; ++i) state.add_rejected("r/" + std::to_string(i % 7), securemqtt::RejectReason::bad_mac);
    });
    for (int i = 0; i < 2000; ++i) {
        state.add_verified(message("t/" + std::to_string(i % 80), std::to_string(i), 1000 + i));
    }
    rejecter.join();
    done = true;
    reader.join();
    const nlohmann::json s = state.snapshot();
    CHECK(s["topics"].size() == 50);
    CHECK(s["topics_dropped"] == 2000 / 80 * 30);
    CHECK(s["rejections"].size() == limits.rejections);
    CHECK(s["seq"] == 4000);  // one per call, dropped topics included
}
