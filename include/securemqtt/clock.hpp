// SPDX-License-Identifier: Apache-2.0
// Time as the envelope sees it: milliseconds since the Unix epoch, from a replaceable clock.
#pragma once

#include <securemqtt/export.hpp>

#include <cstdint>
#include <functional>

namespace securemqtt {

/// Returns the current time in milliseconds since the Unix epoch (UTC). Signers stamp messages
/// with it and verifiers judge freshness by it; tests inject their own to simulate skew. It is
/// called from whichever thread signs or verifies, so it must be thread-safe.
using Clock = std::function<std::int64_t()>;

/// The system's real-time clock in milliseconds since the Unix epoch; what an empty Clock stands
/// for. On Linux it reads the coarse real-time clock (resolution: the kernel tick, 1 to 4 ms).
SECUREMQTT_EXPORT std::int64_t system_clock_ms() noexcept;

}  // namespace securemqtt
