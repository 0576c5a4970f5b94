// SPDX-License-Identifier: Apache-2.0
// TCP connect with a deadline and socket timeouts, for the connect diagnosis probe: the part of
// it that differs between platforms.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace securemqtt::detail {

#if defined(_WIN32)
/// A SOCKET (UINT_PTR), kept whole; <winsock2.h> stays out of this header.
using SocketHandle = std::uintptr_t;
inline constexpr SocketHandle invalid_socket = ~SocketHandle{0};  // INVALID_SOCKET
#else
/// A file descriptor.
using SocketHandle = int;
inline constexpr SocketHandle invalid_socket = -1;
#endif

/// Connects to host:port within `timeout` and returns a blocking socket, not inherited by child
/// processes, whose reads and writes time out after `io_timeout`; invalid_socket with `error`
/// set (e.g. "Connection refused") on failure.
SocketHandle connect_tcp(const std::string& host, int port, std::chrono::milliseconds timeout,
                         std::chrono::milliseconds io_timeout, std::string& error) noexcept;

/// OpenSSL's socket BIO takes an int on every platform (on Windows it casts it back to SOCKET):
/// `s` as that int. Windows socket handles are kernel handles, whose values fit in 32 bits.
int openssl_socket(SocketHandle s) noexcept;

/// Closes a socket connect_tcp() returned that no BIO owns.
void close_socket(SocketHandle s) noexcept;

/// Makes `s` non-blocking, so that every wait on it is wait_socket()'s; false where it cannot.
bool set_nonblocking(SocketHandle s) noexcept;

/// Waits until `s` can be read (data, or the end of the connection), or written with
/// `for_write`, for at most `wait`; false when the time ran out.
bool wait_socket(SocketHandle s, bool for_write, std::chrono::milliseconds wait) noexcept;

/// The calling thread's last socket error (errno; WSAGetLastError() on Windows), and clearing
/// it, for telling a reset from a close after an OpenSSL call on a socket.
int last_socket_error() noexcept;
void clear_socket_error() noexcept;
/// The system's words for a socket error, e.g. "Connection reset by peer".
std::string socket_error_text(int error);

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
