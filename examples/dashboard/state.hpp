// SPDX-License-Identifier: Apache-2.0
// What secure_dashboard shows: the last verified message per topic with a short history of its
// numeric readings, a feed of rejected messages, and the connection's state. Fed from the
// session's handlers, read by the HTTP threads as JSON.
//
// Everything here is attacker-influenced (a compromised device signs anything in its scope,
// rejected messages carry any topic), so it is bounded (Limits) and kept as data: strings go
// out as JSON strings, payloads that are not UTF-8 as hex, and the page sets them as text.
#pragma once

#include <securemqtt/securemqtt.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <locale>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>

namespace dashboard {

/// The caps that keep memory and the page bounded under a flood (docs/dashboard.md).
struct Limits {
    std::size_t topics = 500;            ///< rows; messages on further topics are counted, not shown
    std::size_t points_per_topic = 600;  ///< chart points kept per topic
    std::int64_t history_ms = 600000;    ///< chart points older than this (signing time) are dropped
    std::size_t rejections = 200;        ///< entries in the rejection feed
    std::size_t value_bytes = 256;       ///< payload bytes shown per row (text or hex)
    std::size_t topic_bytes = 1024;      ///< topic bytes shown (MQTT allows 65535)
    std::size_t chart_topics = 10;       ///< lines on the chart: the first topics with numeric readings
                                         ///< (only they keep points)
};

inline std::int64_t wall_ms() {
    using namespace std::chrono;
    return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

inline std::string to_hex(std::string_view bytes) {
    static const char digits[] = "0123456789abcdef";
    std::string out;
    out.reserve(bytes.size() * 2);
    for (const char byte : bytes) {
        const auto c = static_cast<unsigned char>(byte);
        out += digits[c >> 4];
        out += digits[c & 15];
    }
    return out;
}

/// At most `limit` bytes of `text`, cut on a character boundary (text is well-formed UTF-8).
inline std::string_view utf8_prefix(std::string_view text, std::size_t limit) {
    if (text.size() <= limit) return text;
    std::size_t end = limit;
    while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;  // a continuation byte
    return text.substr(0, end);
}

/// Characters that show nothing, or reorder or disguise what follows.
inline bool hidden_character(std::uint32_t cp) {
    return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F) || cp == 0xAD || cp == 0x34F || cp == 0x61C ||
           cp == 0x115F || cp == 0x1160 || cp == 0x180E || (cp >= 0x200B && cp <= 0x200F) ||
           (cp >= 0x2028 && cp <= 0x202E) || (cp >= 0x2060 && cp <= 0x206F) || cp == 0x3164 ||
           (cp >= 0xFE00 && cp <= 0xFE0F) || cp == 0xFEFF || cp == 0xFFA0 || (cp >= 0xFFF9 && cp <= 0xFFFB) ||
           (cp >= 0xE0000 && cp <= 0xE0FFF);  // tags and variation selectors supplement
}

/// Well-formed UTF-8 `text` with the characters that would hide or disguise what is shown made
/// visible as \u{XXXX} (\n and \t for those two): controls, and the invisible or reordering
/// format characters (zero-width, bidirectional overrides and marks, fillers, line separators,
/// variation selectors, tags, byte order mark). A topic "devices/d1/\u{202E}pmet" must not look
/// like another device's topic. With `escape_backslash` a backslash is shown as \\, so that an
/// escape cannot be faked by typing one (topics; payload text keeps its backslashes as they are).
inline std::string visible(std::string_view text, bool escape_backslash = false) {
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size();) {
        const auto lead = static_cast<unsigned char>(text[i]);
        const std::size_t length = lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;
        std::uint32_t cp = length == 1 ? lead : lead & (0x7Fu >> length);
        for (std::size_t k = 1; k < length && i + k < text.size(); ++k) {
            cp = (cp << 6) | (static_cast<unsigned char>(text[i + k]) & 0x3Fu);
        }
        if (cp == '\\' && escape_backslash) {
            out += "\\\\";
        } else if (!hidden_character(cp)) {
            out.append(text.substr(i, length));
        } else if (cp == '\n') {
            out += "\\n";
        } else if (cp == '\t') {
            out += "\\t";
        } else {
            static const char digits[] = "0123456789ABCDEF";
            out += "\\u{";
            const int top = cp > 0xFFFFF ? 20 : cp > 0xFFFF ? 16 : cp > 0xFF ? 12 : 4;
            for (int shift = top; shift >= 0; shift -= 4) out += digits[(cp >> shift) & 15];
            out += '}';
        }
        i += length;
    }
    return out;
}

/// A name (topic, key id) fit for JSON and for showing: when UTF-8, its first `limit` bytes with
/// hidden characters and backslashes escaped; else its bytes as \xNN escapes (a topic from a
/// broker should always be UTF-8; if one is not, it is shown, not dropped and not trusted).
inline std::string printable(std::string_view text, std::size_t limit) {
    if (securemqtt::is_well_formed_utf8(text)) return visible(utf8_prefix(text, limit), true);
    std::string out;
    for (const char byte : text.substr(0, limit)) {
        const auto c = static_cast<unsigned char>(byte);
        if (c >= 0x20 && c < 0x7F && c != '\\') {
            out += static_cast<char>(c);
        } else {
            out += "\\x" + to_hex(std::string_view(reinterpret_cast<const char*>(&c), 1));
        }
    }
    return out;
}

/// `text` as a decimal number, all of it, in any locale.
inline std::optional<double> parse_number(std::string_view text) {
    double value = 0;
#if defined(__cpp_lib_to_chars) && __cpp_lib_to_chars >= 201611L
    const char* end = text.data() + text.size();
    const auto [last, error] = std::from_chars(text.data(), end, value);
    if (error == std::errc() && last == end) return value;
    return std::nullopt;
#else  // e.g. Apple's libc++ before LLVM 20: no from_chars for double
    std::istringstream in{std::string(text)};
    in.imbue(std::locale::classic());
    in >> std::noskipws >> value;
    if (in && in.peek() == std::char_traits<char>::eof()) return value;
    return std::nullopt;
#endif
}

/// The reading in a payload: a number ("21.5"), or the first numeric member of a small JSON object
/// ({"temp": 21.5}). Finite values only.
inline std::optional<double> reading_of(std::string_view payload) {
    const auto space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
    while (!payload.empty() && space(payload.front())) payload.remove_prefix(1);
    while (!payload.empty() && space(payload.back())) payload.remove_suffix(1);
    if (payload.empty()) return std::nullopt;
    if (const std::optional<double> number = parse_number(payload)) {
        if (std::isfinite(*number)) return number;
        return std::nullopt;
    }
    // Small objects only: a reading is a few fields, and this runs on the MQTT client's thread.
    if (payload.front() != '{' || payload.size() > 1024) return std::nullopt;
    // ordered_json: "first" as the device wrote it (json sorts members by name).
    const nlohmann::ordered_json doc = nlohmann::ordered_json::parse(payload, nullptr, /*allow_exceptions=*/false);
    if (!doc.is_object()) return std::nullopt;
    for (const auto& member : doc.items()) {
        if (member.value().is_number()) {
            const double v = member.value().get<double>();
            if (std::isfinite(v)) return v;
            return std::nullopt;
        }
    }
    return std::nullopt;
}

class State {
public:
    explicit State(Limits limits) : limits_(limits) {}

    /// Where the session's counters come from (SecureSession::stats), read at each snapshot.
    void set_stats_source(std::function<securemqtt::SessionStats()> source) {
        std::lock_guard<std::mutex> lock(mutex_);
        stats_source_ = std::move(source);
    }

    void add_verified(const securemqtt::Message& m) {
        const std::string_view payload = m.payload.as_string_view();
        const std::optional<double> reading = reading_of(payload);
        const bool text = securemqtt::is_well_formed_utf8(m.payload);
        const std::int64_t now = wall_ms();
        std::lock_guard<std::mutex> lock(mutex_);
        auto row = rows_.find(std::string(m.topic));
        if (row == rows_.end()) {
            if (rows_.size() >= limits_.topics) {
                ++topics_dropped_;
                bump();
                return;
            }
            row = rows_.emplace(std::string(m.topic), Row{}).first;
            row->second.id = rows_.size();
            row->second.shown_topic = printable(m.topic, limits_.topic_bytes);
        }
        Row& r = row->second;
        r.value = text ? visible(utf8_prefix(payload, limits_.value_bytes))
                       : to_hex(payload.substr(0, limits_.value_bytes));
        r.hex = !text;
        r.size = payload.size();
        r.numeric = reading;
        r.key_id = printable(m.key_id, 64);
        r.signed_ms = m.timestamp_ms;
        r.received_ms = now;
        ++r.count;
        r.seq = bump();
        if (reading && !r.had_reading) {
            r.had_reading = true;
            ++numeric_topics_;
            r.charted = charted_topics_ < limits_.chart_topics;  // first come: a chart of hundreds of lines says nothing
            if (r.charted) ++charted_topics_;
        }
        if (reading && r.charted) {
            r.points.push_back(Point{m.timestamp_ms, *reading, r.seq});
            while (r.points.size() > limits_.points_per_topic ||
                   (!r.points.empty() && r.points.front().t_ms < m.timestamp_ms - limits_.history_ms)) {
                r.points.pop_front();
            }
        }
    }

    void add_rejected(std::string_view topic, securemqtt::RejectReason reason) {
        std::string shown = printable(topic, limits_.topic_bytes);
        const std::int64_t now = wall_ms();
        std::lock_guard<std::mutex> lock(mutex_);
        rejections_.push_back(Rejection{std::move(shown), reason, now, bump()});
        while (rejections_.size() > limits_.rejections) rejections_.pop_front();
    }

    void set_connection(std::string state, std::string detail) {
        std::lock_guard<std::mutex> lock(mutex_);
        connection_ = std::move(state);
        connection_detail_ = printable(detail, 512);
        connection_since_ms_ = wall_ms();
        bump();
    }

    /// The page's data as JSON: everything when `since` is 0, else only what changed after it
    /// (rows and chart points with a later sequence number, newer rejections). `seq` in the
    /// result is the cursor for the next call.
    nlohmann::json snapshot(std::uint64_t since = 0) const {
        std::function<securemqtt::SessionStats()> stats_source;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            stats_source = stats_source_;
        }
        // Read outside the lock: stats() takes the session's own locks.
        const securemqtt::SessionStats st = stats_source ? stats_source() : securemqtt::SessionStats{};
        nlohmann::json out;
        out["full"] = since == 0;
        nlohmann::json by_reason = nlohmann::json::object();
        for (std::size_t i = 0; i < securemqtt::reject_reason_count; ++i) {
            by_reason[std::string(securemqtt::to_string(static_cast<securemqtt::RejectReason>(i)))] =
                st.rejected_by_reason[i];
        }
        out["stats"] = {{"verified", st.verified},
                        {"rejected", st.rejected},
                        {"rejected_by_reason", std::move(by_reason)},
                        {"reconnects", st.reconnects},
                        {"connection_losses", st.connection_losses},
                        {"publish_failures", st.publish_failures},
                        {"handler_errors", st.handler_errors},
                        {"unrouted", st.unrouted}};
        out["limits"] = {{"topics", limits_.topics},
                         {"points_per_topic", limits_.points_per_topic},
                         {"history_seconds", limits_.history_ms / 1000},
                         {"rejections", limits_.rejections},
                         {"value_bytes", limits_.value_bytes},
                         {"chart_topics", limits_.chart_topics}};
        std::lock_guard<std::mutex> lock(mutex_);
        out["seq"] = seq_;
        out["connection"] = {{"state", connection_}, {"detail", connection_detail_}, {"since_ms", connection_since_ms_}};
        out["topics_dropped"] = topics_dropped_;
        out["numeric_topics"] = numeric_topics_;
        nlohmann::json topics = nlohmann::json::array();
        for (const auto& [topic, r] : rows_) {
            if (r.seq <= since) continue;
            nlohmann::json points = nlohmann::json::array();
            for (const Point& p : r.points) {
                if (p.seq > since) points.push_back({p.t_ms, p.value});
            }
            topics.push_back({{"id", r.id},
                              {"topic", r.shown_topic},
                              {"value", r.value},
                              {"value_format", r.hex ? "hex" : "text"},
                              {"size", r.size},
                              {"truncated", r.size > limits_.value_bytes},
                              {"numeric", r.numeric ? nlohmann::json(*r.numeric) : nlohmann::json(nullptr)},
                              {"key_id", r.key_id},
                              {"signed_ms", r.signed_ms},
                              {"received_ms", r.received_ms},
                              {"count", r.count},
                              {"charted", r.charted},
                              {"points", std::move(points)}});
        }
        out["topics"] = std::move(topics);
        nlohmann::json rejections = nlohmann::json::array();
        for (const Rejection& j : rejections_) {
            if (j.seq <= since) continue;
            rejections.push_back({{"topic", j.topic},
                                  {"reason", std::string(securemqtt::to_string(j.reason))},
                                  {"time_ms", j.time_ms}});
        }
        out["rejections"] = std::move(rejections);
        return out;
    }

    std::uint64_t seq() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return seq_;
    }

    /// Waits until something changed after `since`, `timeout` passed, or wake_all().
    void wait_for_change(std::uint64_t since, std::chrono::milliseconds timeout) const {
        std::unique_lock<std::mutex> lock(mutex_);
        changed_.wait_for(lock, timeout, [&] { return seq_ > since || woken_; });
    }

    /// Ends every wait_for_change() for good (shutdown).
    void wake_all() {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            woken_ = true;
        }
        changed_.notify_all();
    }

private:
    struct Point {
        std::int64_t t_ms;
        double value;
        std::uint64_t seq;
    };
    struct Row {
        std::uint64_t id = 0;  // the page's key: shown topics may collide (cut, or not UTF-8)
        std::string shown_topic;
        std::string value;
        bool hex = false;
        std::size_t size = 0;
        std::optional<double> numeric;
        std::string key_id;
        std::int64_t signed_ms = 0;
        std::int64_t received_ms = 0;
        std::uint64_t count = 0;
        std::uint64_t seq = 0;
        bool had_reading = false;
        bool charted = false;      // one of the first Limits::chart_topics with readings: keeps points
        std::deque<Point> points;  // charted rows only
    };
    struct Rejection {
        std::string topic;
        securemqtt::RejectReason reason;
        std::int64_t time_ms;
        std::uint64_t seq;
    };

    // With mutex_ held: a new sequence number, and waiters told.
    std::uint64_t bump() {
        ++seq_;
        changed_.notify_all();
        return seq_;
    }

    const Limits limits_;
    mutable std::mutex mutex_;
    mutable std::condition_variable changed_;
    std::function<securemqtt::SessionStats()> stats_source_;
    std::map<std::string, Row> rows_;
    std::deque<Rejection> rejections_;
    std::uint64_t topics_dropped_ = 0;
    std::size_t numeric_topics_ = 0;
    std::size_t charted_topics_ = 0;
    std::string connection_ = "connecting";
    std::string connection_detail_;
    std::int64_t connection_since_ms_ = wall_ms();
    std::uint64_t seq_ = 0;
    bool woken_ = false;
};

}  // namespace dashboard
