// SPDX-License-Identifier: Apache-2.0
#include <securemqtt/topic.hpp>

#include "topic_match.hpp"

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace securemqtt {
namespace {

constexpr std::size_t max_topic_size = 65535;

bool has_nul(std::string_view s) noexcept { return s.find('\0') != std::string_view::npos; }

// Splits off the next level of `s` at `pos`; returns false when no level is left.
bool next_level(std::string_view s, std::size_t& pos, std::string_view& level) noexcept {
    if (pos > s.size()) return false;
    const std::size_t slash = s.find('/', pos);
    const std::size_t end = slash == std::string_view::npos ? s.size() : slash;
    level = s.substr(pos, end - pos);
    pos = end + 1;
    return true;
}

}  // namespace

bool is_valid_topic_name(std::string_view topic) noexcept {
    if (topic.empty() || topic.size() > max_topic_size) return false;
    // Runs for every message signed and received, so eight bytes at a time: a word has a byte
    // equal to x exactly when has_zero_byte(word ^ (x in every byte)).
    constexpr std::uint64_t ones = 0x0101010101010101ULL;
    const auto has_zero_byte = [](std::uint64_t v) { return (v - ones) & ~v & (ones << 7); };
    const char* p = topic.data();
    const std::size_t n = topic.size();
    std::uint64_t bad = 0;
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        std::uint64_t w;
        std::memcpy(&w, p + i, 8);
        bad |= has_zero_byte(w) | has_zero_byte(w ^ (ones * '+')) | has_zero_byte(w ^ (ones * '#'));
    }
    for (; i < n; ++i) bad |= static_cast<std::uint64_t>((p[i] == '+') | (p[i] == '#') | (p[i] == '\0'));
    return bad == 0;
}

constexpr std::string_view share_prefix = "$share/";

std::string_view matching_filter(std::string_view subscription) noexcept {
    if (subscription.substr(0, share_prefix.size()) != share_prefix) return subscription;
    const std::size_t slash = subscription.find('/', share_prefix.size());
    return slash == std::string_view::npos ? std::string_view() : subscription.substr(slash + 1);
}

bool is_valid_topic_filter(std::string_view filter) noexcept {
    if (filter.empty() || filter.size() > max_topic_size || has_nul(filter)) return false;
    if (filter.substr(0, share_prefix.size()) == share_prefix) {
        const std::string_view rest = filter.substr(share_prefix.size());
        const std::size_t slash = rest.find('/');
        if (slash == 0 || slash == std::string_view::npos) return false;  // no group, or no filter
        if (rest.substr(0, slash).find_first_of("+#") != std::string_view::npos) return false;
        filter = rest.substr(slash + 1);
        if (filter.empty()) return false;
    }
    std::size_t pos = 0;
    std::string_view level;
    while (next_level(filter, pos, level)) {
        const bool last = pos > filter.size();
        if (level.find_first_of("+#") == std::string_view::npos) continue;
        if (level == "+") continue;
        if (level == "#" && last) continue;
        return false;
    }
    return true;
}

bool topic_matches(std::string_view filter, std::string_view topic) noexcept {
    return is_valid_topic_filter(filter) && detail::valid_filter_matches(filter, topic);
}

bool detail::valid_filter_matches(std::string_view filter, std::string_view topic) noexcept {
    if (!is_valid_topic_name(topic)) return false;
    // MQTT 4.7.2: wildcards at the first level do not match topics starting with '$'.
    if (topic.front() == '$' && (filter.front() == '+' || filter.front() == '#')) return false;

    std::size_t fpos = 0;
    std::size_t tpos = 0;
    std::string_view flevel;
    std::string_view tlevel;
    while (next_level(filter, fpos, flevel)) {
        if (flevel == "#") return true;  // also matches the parent level: "a/#" matches "a"
        if (!next_level(topic, tpos, tlevel)) return false;
        if (flevel != "+" && flevel != tlevel) return false;
    }
    return tpos > topic.size();  // every topic level consumed
}

}  // namespace securemqtt
