// SPDX-License-Identifier: Apache-2.0
// Socket settings that differ between platforms, for the connect diagnosis probe.
#pragma once

#include <chrono>

namespace securemqtt::detail {

/// Makes a connected socket blocking, with send and receive timeouts. Returns false if the
/// platform refuses (the probe then runs without timeouts).
bool set_blocking_with_timeouts(int fd, std::chrono::milliseconds timeout) noexcept;

}  // namespace securemqtt::detail
