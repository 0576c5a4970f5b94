// SPDX-License-Identifier: Apache-2.0
// Waits with deadlines an application chose (any length, milliseconds::max() included).
#pragma once

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>

namespace securemqtt::detail {

// now + timeout, saturating at the clock's end (a plain sum overflows for milliseconds::max());
// a timeout of zero or less is now.
inline std::chrono::steady_clock::time_point deadline_after(std::chrono::milliseconds timeout) noexcept {
    using clock = std::chrono::steady_clock;
    const auto now = clock::now();
    if (timeout.count() <= 0) return now;
    const auto room = std::chrono::duration_cast<std::chrono::milliseconds>(clock::time_point::max() - now);
    return timeout >= room ? clock::time_point::max() : now + timeout;
}

// cv.wait_until(lock, deadline, done), in steps of at most a day: libstdc++ hands the C library
// the deadline in a time_t, which on 32-bit time_t targets (Debian armhf) wraps for deadlines
// decades ahead (seconds(INT32_MAX)), and the wait then returns at once, over and over: a core
// spinning for the whole wait. Returns done().
template <typename Done>
bool wait_until_bounded(std::condition_variable& cv, std::unique_lock<std::mutex>& lock,
                        std::chrono::steady_clock::time_point deadline, Done done) {
    using clock = std::chrono::steady_clock;
    constexpr auto step = std::chrono::hours(24);
    for (;;) {
        if (done()) return true;
        const auto now = clock::now();
        if (now >= deadline) return false;
        cv.wait_until(lock, deadline - now > step ? now + step : deadline, done);
    }
}

// token.wait_for(timeout) for a Paho token (or anything with a bool wait_for(milliseconds)), in
// steps of at most a day, for the same reasons: its wait is a plain cv.wait_for, which returns
// false at once for milliseconds::max() (the sum overflows) and spins on 32-bit time_t targets.
template <typename Token>
bool wait_token(Token& token, std::chrono::milliseconds timeout) {
    using clock = std::chrono::steady_clock;
    const auto deadline = deadline_after(timeout);
    constexpr std::chrono::milliseconds step = std::chrono::hours(24);
    for (;;) {
        const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - clock::now());
        if (token.wait_for(std::max(std::chrono::milliseconds(0), std::min(left, step)))) return true;
        if (clock::now() >= deadline) return false;
    }
}

}  // namespace securemqtt::detail
