// SPDX-License-Identifier: Apache-2.0
// Calling the application's code (handlers, callbacks) from the session's threads: whatever it
// throws is caught, counted and logged, never let through into Paho or our own threads.
#pragma once

#include <atomic>
#include <cstdint>
#include <exception>
#include <string>
#include <utility>

namespace securemqtt::detail {

/// Runs `call()`. If it throws, adds one to `errors` and hands `log` one line:
/// "<describe()> threw: <what()>" (describe() is only called then). Never throws.
template <typename Call, typename Describe, typename Log>
void call_user_code(Call&& call, Describe&& describe, std::atomic<std::uint64_t>& errors, Log&& log) noexcept {
    try {
        std::forward<Call>(call)();
    } catch (const std::exception& e) {
        errors.fetch_add(1, std::memory_order_relaxed);
        try {
            log(describe() + " threw: " + e.what());
        } catch (...) {  // no memory for the line: the count stands
        }
    } catch (...) {
        errors.fetch_add(1, std::memory_order_relaxed);
        try {
            log(describe() + " threw a non-standard exception");
        } catch (...) {
        }
    }
}

}  // namespace securemqtt::detail
