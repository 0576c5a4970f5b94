// SPDX-License-Identifier: Apache-2.0
// TCP connect with a deadline and socket timeouts, for the connect diagnosis probe: the part of
// it that differs between platforms.
#pragma once

#include <chrono>
#include <string>

namespace securemqtt::detail {

/// Connects to host:port within `timeout` and returns a blocking socket whose reads and writes
/// time out after `io_timeout`; -1 with `error` set (e.g. "Connection refused") on failure.
int connect_tcp(const std::string& host, int port, std::chrono::milliseconds timeout,
                std::chrono::milliseconds io_timeout, std::string& error) noexcept;

}  // namespace securemqtt::detail
