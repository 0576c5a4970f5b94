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

/// Waits until `fd` has something to read (data, or the end of the connection) for at most
/// `wait`; false when nothing came. Where this cannot wait (Windows), true at once: the socket's
/// own read timeout bounds the read that follows.
bool wait_readable(int fd, std::chrono::milliseconds wait) noexcept;

/// While it lives, a write to a connection the peer has reset does not raise SIGPIPE in this
/// thread (the signal is blocked, and one it caused is taken back), whatever the process's
/// SIGPIPE disposition. No-op where writes raise no SIGPIPE (Windows).
class NoSigpipe {
public:
    NoSigpipe() noexcept;
    ~NoSigpipe();
    NoSigpipe(const NoSigpipe&) = delete;
    NoSigpipe& operator=(const NoSigpipe&) = delete;

private:
    bool restore_ = false;
    bool was_pending_ = false;
    unsigned char old_mask_[256] = {};  // a sigset_t, kept opaque to keep <signal.h> out of this header
};

}  // namespace securemqtt::detail
