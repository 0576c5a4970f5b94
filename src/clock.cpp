// SPDX-License-Identifier: Apache-2.0
#include <securemqtt/clock.hpp>

#include <chrono>

#if defined(__linux__)
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#endif

namespace securemqtt {

std::int64_t system_clock_ms() noexcept {
#if defined(__linux__) && defined(CLOCK_REALTIME_COARSE) && defined(SYS_clock_gettime64)
    // A 32-bit time_t (Debian 12 armhf) ends in January 2038, and with it glibc's clock_gettime
    // and std::chrono::system_clock there. The kernel's 64-bit call does not: timestamps stay
    // right on such a device past 2038 (OpenSSL's certificate checks there still end).
    if constexpr (sizeof(time_t) < 8) {
        struct {
            std::int64_t tv_sec;
            std::int64_t tv_nsec;
        } ts{};  // the kernel's __kernel_timespec
        if (::syscall(SYS_clock_gettime64, CLOCK_REALTIME_COARSE, &ts) == 0) return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    }
#endif
#if defined(__linux__) && defined(CLOCK_REALTIME_COARSE)
    // Read on every message signed and verified: the coarse clock costs a few ns instead of
    // ~25 ns, and its resolution (the kernel tick, 1 to 4 ms) is ample for timestamps in ms
    // judged against windows of seconds.
    timespec ts{};
    if (clock_gettime(CLOCK_REALTIME_COARSE, &ts) == 0) {
        return static_cast<std::int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
    }
#endif
    using namespace std::chrono;
    return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

}  // namespace securemqtt
