// SPDX-License-Identifier: Apache-2.0
// Three versions: Windows (Winsock), POSIX with SOCK_CLOEXEC (Linux, the BSDs), and POSIX
// without it (macOS), where close-on-exec is set with fcntl right after socket().
// SECUREMQTT_TEST_NO_SOCK_CLOEXEC takes the last path on Linux too, so that a test can run it
// (tests/CMakeLists.txt).
#include "socket_options.hpp"

#include <algorithm>

#if defined(_WIN32)
#ifndef NOMINMAX
#define NOMINMAX
#endif
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <winsock2.h>
#include <ws2tcpip.h>
#include <windows.h>
#else
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstring>
#include <ctime>
#endif

namespace securemqtt::detail {

namespace {
// Waits are capped at a day: beyond what poll()'s int and select()'s timeval hold comfortably.
long long wait_ms(std::chrono::milliseconds wait) noexcept {
    return std::max<long long>(0, std::min<long long>(wait.count(), 24LL * 3600 * 1000));
}
}  // namespace

#if defined(_WIN32)
static_assert(sizeof(SocketHandle) == sizeof(SOCKET) && static_cast<SocketHandle>(INVALID_SOCKET) == invalid_socket,
              "SocketHandle holds a SOCKET");

namespace {

SOCKET native(SocketHandle s) noexcept { return static_cast<SOCKET>(s); }

// Paho starts Winsock as well, but the probe must not depend on the order of things. Never
// WSACleanup()ed: WSAStartup counts per process, and the count left at exit is harmless.
bool winsock_started() noexcept {
    static const bool started = [] {
        WSADATA data{};
        return WSAStartup(MAKEWORD(2, 2), &data) == 0;
    }();
    return started;
}

std::string windows_error_text(int code) {
    char* text = nullptr;
    const DWORD n = FormatMessageA(
        FORMAT_MESSAGE_ALLOCATE_BUFFER | FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS, nullptr,
        static_cast<DWORD>(code), 0, reinterpret_cast<char*>(&text), 0, nullptr);
    std::string words = n > 0 && text != nullptr ? std::string(text, n) : "error " + std::to_string(code);
    if (text != nullptr) LocalFree(text);
    while (!words.empty() && (words.back() == '\n' || words.back() == '\r' || words.back() == ' ' || words.back() == '.')) {
        words.pop_back();
    }
    return words;
}

bool set_blocking(SOCKET s, bool blocking) noexcept {
    u_long mode = blocking ? 0 : 1;
    return ioctlsocket(s, static_cast<long>(FIONBIO), &mode) == 0;
}

// One socket in an fd_set, spelled out (Winsock's FD_SET macro is all C casts).
fd_set only(SOCKET s) noexcept {
    fd_set set{};
    set.fd_count = 1;
    set.fd_array[0] = s;
    return set;
}

timeval to_timeval(std::chrono::milliseconds wait) noexcept {
    const long long ms = wait_ms(wait);
    timeval tv{};
    tv.tv_sec = static_cast<long>(ms / 1000);
    tv.tv_usec = static_cast<long>((ms % 1000) * 1000);
    return tv;
}

bool try_address(const addrinfo* ai, std::chrono::milliseconds timeout, std::chrono::milliseconds io_timeout,
                 SocketHandle& out, std::string& error) {
    // WSA_FLAG_NO_HANDLE_INHERIT is Windows' close-on-exec; WSA_FLAG_OVERLAPPED is what socket()
    // sets, and SO_RCVTIMEO/SO_SNDTIMEO take effect only with it.
    const SOCKET s = WSASocketW(ai->ai_family, ai->ai_socktype, ai->ai_protocol, nullptr, 0,
                                WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT);
    if (s == INVALID_SOCKET) {
        error = windows_error_text(WSAGetLastError());
        return false;
    }
    int err = 0;
    if (!set_blocking(s, false)) {
        err = WSAGetLastError();
    } else if (::connect(s, ai->ai_addr, static_cast<int>(ai->ai_addrlen)) != 0) {
        err = WSAGetLastError();
        if (err == WSAEWOULDBLOCK) {
            // A connect that fails shows in the exception set, not as writable.
            fd_set writable = only(s);
            fd_set failed = only(s);
            timeval tv = to_timeval(timeout);  // not const: MinGW declares select() with a non-const pointer
            const int n = ::select(0, nullptr, &writable, &failed, &tv);
            if (n == 0) {
                error = "no answer within " + std::to_string(timeout.count()) + " ms";
                closesocket(s);
                return false;
            }
            if (n == SOCKET_ERROR) {
                err = WSAGetLastError();
            } else {
                int so_error = 0;
                int len = sizeof so_error;
                err = getsockopt(s, SOL_SOCKET, SO_ERROR, reinterpret_cast<char*>(&so_error), &len) == 0
                          ? so_error
                          : WSAGetLastError();
            }
        }
    }
    if (err == 0 && !set_blocking(s, true)) err = WSAGetLastError();
    if (err != 0) {
        error = windows_error_text(err);
        closesocket(s);
        return false;
    }
    // Winsock takes these timeouts as a DWORD of milliseconds, not a timeval.
    const DWORD ms = static_cast<DWORD>(std::max<long long>(1, wait_ms(io_timeout)));
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, reinterpret_cast<const char*>(&ms), sizeof ms);
    setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, reinterpret_cast<const char*>(&ms), sizeof ms);
    out = static_cast<SocketHandle>(s);
    return true;
}

}  // namespace

SocketHandle connect_tcp(const std::string& host, int port, std::chrono::milliseconds timeout,
                         std::chrono::milliseconds io_timeout, std::string& error) noexcept {
    if (!winsock_started()) {
        error = "Winsock could not be started";
        return invalid_socket;
    }
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    addrinfo* list = nullptr;
    const int gai = ::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &list);
    if (gai != 0) {
        error = "cannot resolve '" + host + "': " + windows_error_text(gai);  // WSA codes, unlike POSIX's EAI_*
        return invalid_socket;
    }
    SocketHandle s = invalid_socket;
    for (const addrinfo* ai = list; ai != nullptr && s == invalid_socket; ai = ai->ai_next) {
        try_address(ai, timeout, io_timeout, s, error);
    }
    freeaddrinfo(list);
    return s;
}

int openssl_socket(SocketHandle s) noexcept { return static_cast<int>(s); }

void close_socket(SocketHandle s) noexcept {
    if (s != invalid_socket) closesocket(native(s));
}
#else
namespace {
bool try_address(const addrinfo* ai, std::chrono::milliseconds timeout, std::chrono::milliseconds io_timeout,
                 int& fd_out, std::string& error) {
#if defined(SOCK_CLOEXEC) && !defined(SECUREMQTT_TEST_NO_SOCK_CLOEXEC)
    const int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
#else
    // No SOCK_CLOEXEC (macOS): set close-on-exec at once. A fork and exec on another thread in
    // between could still inherit the socket; Darwin has no atomic way.
    int fd = ::socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
    if (fd >= 0 && ::fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) {
        const int err = errno;
        ::close(fd);
        fd = -1;
        errno = err;
    }
#endif
    if (fd < 0) {
        error = std::strerror(errno);
        return false;
    }
#if defined(__APPLE__)
    const int on = 1;
    setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &on, sizeof on);  // no MSG_NOSIGNAL there
#endif
    const int flags = fcntl(fd, F_GETFL, 0);
    fcntl(fd, F_SETFL, flags | O_NONBLOCK);
    int rc = ::connect(fd, ai->ai_addr, ai->ai_addrlen);
    if (rc != 0 && errno == EINPROGRESS) {
        // Through wait_socket: a signal (EINTR) must not pass for a finished connect.
        if (!wait_socket(fd, true, timeout)) {
            error = "no answer within " + std::to_string(timeout.count()) + " ms";
            ::close(fd);
            return false;
        }
        int so_error = 0;
        socklen_t len = sizeof so_error;
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &len);
        rc = so_error == 0 ? 0 : -1;
        errno = so_error;
    }
    if (rc != 0) {
        error = std::strerror(errno);
        ::close(fd);
        return false;
    }
    fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    timeval tv{};
    tv.tv_sec = static_cast<decltype(tv.tv_sec)>(io_timeout.count() / 1000);
    tv.tv_usec = static_cast<decltype(tv.tv_usec)>((io_timeout.count() % 1000) * 1000);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    fd_out = fd;
    return true;
}
}  // namespace

int connect_tcp(const std::string& host, int port, std::chrono::milliseconds timeout,
                std::chrono::milliseconds io_timeout, std::string& error) noexcept {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* list = nullptr;
    const int gai = ::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &list);
    if (gai != 0) {
        error = std::string("cannot resolve '") + host + "': " + gai_strerror(gai);
        return -1;
    }
    int fd = -1;
    for (const addrinfo* ai = list; ai != nullptr && fd < 0; ai = ai->ai_next) try_address(ai, timeout, io_timeout, fd, error);
    freeaddrinfo(list);
    return fd;
}

int openssl_socket(SocketHandle s) noexcept { return s; }

void close_socket(SocketHandle s) noexcept {
    if (s >= 0) ::close(s);
}
#endif

#if defined(_WIN32)
bool set_nonblocking(SocketHandle s) noexcept { return set_blocking(native(s), false); }

bool wait_socket(SocketHandle s, bool for_write, std::chrono::milliseconds wait) noexcept {
    fd_set set = only(native(s));
    timeval tv = to_timeval(wait);
    return ::select(0, for_write ? nullptr : &set, for_write ? &set : nullptr, nullptr, &tv) > 0;
}

int last_socket_error() noexcept { return WSAGetLastError(); }
void clear_socket_error() noexcept { WSASetLastError(0); }
std::string socket_error_text(int error) { return windows_error_text(error); }

NoSigpipe::NoSigpipe() noexcept = default;
NoSigpipe::~NoSigpipe() = default;
#else
bool set_nonblocking(int fd) noexcept {
    const int flags = fcntl(fd, F_GETFL, 0);
    return flags >= 0 && fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0;
}

bool wait_socket(int fd, bool for_write, std::chrono::milliseconds wait) noexcept {
    pollfd p{fd, static_cast<short>(for_write ? POLLOUT : POLLIN), 0};
    // After a signal, only what is left of the wait: signals arriving again and again (a
    // profiler's SIGPROF) must not stretch it.
    using clock = std::chrono::steady_clock;
    const auto deadline = clock::now() + std::chrono::milliseconds(wait_ms(wait));
    int rc;
    for (;;) {
        const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - clock::now());
        rc = ::poll(&p, 1, static_cast<int>(std::max<long long>(0, left.count())));
        if (rc >= 0 || errno != EINTR) break;
    }
    return rc > 0;
}

int last_socket_error() noexcept { return errno; }
void clear_socket_error() noexcept { errno = 0; }
std::string socket_error_text(int error) { return std::strerror(error); }

#if defined(__APPLE__)
NoSigpipe::NoSigpipe() noexcept = default;  // SO_NOSIGPIPE on the socket instead
NoSigpipe::~NoSigpipe() = default;
#else
static_assert(sizeof(sigset_t) <= 256, "NoSigpipe keeps a sigset_t in 256 bytes");

NoSigpipe::NoSigpipe() noexcept {
    sigset_t pipe_only;
    sigemptyset(&pipe_only);
    sigaddset(&pipe_only, SIGPIPE);
    sigset_t pending;
    sigemptyset(&pending);
    sigpending(&pending);
    was_pending_ = sigismember(&pending, SIGPIPE) == 1;
    sigset_t old;
    if (pthread_sigmask(SIG_BLOCK, &pipe_only, &old) == 0) {
        std::memcpy(old_mask_, &old, sizeof old);
        restore_ = true;
    }
}

NoSigpipe::~NoSigpipe() {
    if (!restore_) return;
    sigset_t old;
    std::memcpy(&old, old_mask_, sizeof old);
    sigset_t pending;
    sigemptyset(&pending);
    sigpending(&pending);
    if (!was_pending_ && sigismember(&pending, SIGPIPE) == 1) {
        sigset_t pipe_only;
        sigemptyset(&pipe_only);
        sigaddset(&pipe_only, SIGPIPE);
        const timespec none{0, 0};
        const int saved = errno;
        while (sigtimedwait(&pipe_only, nullptr, &none) < 0 && errno == EINTR) {
        }
        errno = saved;
    }
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
}
#endif
#endif

}  // namespace securemqtt::detail
