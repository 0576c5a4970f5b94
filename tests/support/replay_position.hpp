// SPDX-License-Identifier: Apache-2.0
// A StreamPosition in one line, for the replay guard and replay store tests.
#pragma once

#include <securemqtt/replay_guard.hpp>

#include <cstdint>
#include <string_view>

namespace testutil {

/// 2026-01-01T00:00:00Z: the tests' "now".
inline constexpr std::int64_t replay_now = 1767225600000;

inline securemqtt::StreamPosition at(std::uint64_t counter, std::uint64_t stream = 1, std::int64_t ts = replay_now,
                                     std::string_view key = "k") {
    securemqtt::StreamPosition p;
    p.key_id = key;
    p.stream_id = stream;
    p.counter = counter;
    p.timestamp_ms = ts;
    return p;
}

}  // namespace testutil
