// SPDX-License-Identifier: Apache-2.0
// On 32-bit glibc targets (Debian armhf), a 64-bit time_t for this file alone (glibc >= 2.34):
// clock_gettime is then glibc's 64-bit one, through the vDSO, and does not end in 2038. No
// time_t leaves this file, so nothing else sees the difference.
#if defined(__linux__) && !defined(_TIME_BITS)
#ifndef _FILE_OFFSET_BITS
#define _FILE_OFFSET_BITS 64
#endif
#define _TIME_BITS 64
#endif
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
    // Still a 32-bit time_t (a glibc older than 2.34 ignores _TIME_BITS): it ends in January
    // 2038, and with it clock_gettime and std::chrono::system_clock there. The kernel's 64-bit
    // call does not: timestamps stay right past 2038 (OpenSSL's certificate checks still end).
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
