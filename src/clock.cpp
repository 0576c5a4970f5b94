// SPDX-License-Identifier: Apache-2.0
#include <securemqtt/clock.hpp>

#include <chrono>

#if defined(__linux__)
#include <time.h>
#endif

namespace securemqtt {

std::int64_t system_clock_ms() noexcept {
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
