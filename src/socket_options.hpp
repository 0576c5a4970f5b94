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

/// Makes `fd` non-blocking, so that every wait on it is wait_socket()'s; false where it cannot
/// (Windows, whose probe socket stays blocking: issue of the Windows port).
bool set_nonblocking(int fd) noexcept;

/// Waits until `fd` can be read (data, or the end of the connection), or written with
/// `for_write`, for at most `wait`; false when the time ran out. Where this cannot wait
/// (Windows), true at once.
bool wait_socket(int fd, bool for_write, std::chrono::milliseconds wait) noexcept;

/// While it lives, a write to a connection the peer has reset does not raise SIGPIPE in this
/// thread (the signal is blocked, and one it caused is taken back), whatever the process's
/// SIGPIPE disposition. No-op where writes raise no SIGPIPE (Windows) or the socket is told not
/// to (macOS: SO_NOSIGPIPE, set by connect_tcp).
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
