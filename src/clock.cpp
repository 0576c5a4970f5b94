// SPDX-License-Identifier: Apache-2.0
#include <securemqtt/clock.hpp>

#include <chrono>

namespace securemqtt {

std::int64_t system_clock_ms() noexcept {
    using namespace std::chrono;
    return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

}  // namespace securemqtt
