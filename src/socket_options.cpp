// SPDX-License-Identifier: Apache-2.0
#include "socket_options.hpp"

#include <algorithm>

#if defined(_WIN32)
#include <openssl/bio.h>
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

#if defined(_WIN32)
// Portable fallback: OpenSSL's blocking connect, without a deadline.
int connect_tcp(const std::string& host, int port, std::chrono::milliseconds, std::chrono::milliseconds,
                std::string& error) noexcept {
    const std::string target = (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + std::to_string(port);
    BIO* bio = BIO_new_connect(target.c_str());
    if (bio == nullptr || BIO_do_connect(bio) <= 0) {
        error = "connection failed";
        BIO_free_all(bio);
        return -1;
    }
    int fd = -1;
    BIO_ctrl(bio, BIO_C_GET_FD, 0, &fd);
    BIO_ctrl(bio, BIO_C_SET_CLOSE, BIO_NOCLOSE, nullptr);
    BIO_free_all(bio);
    return fd;
}
#else
namespace {
bool try_address(const addrinfo* ai, std::chrono::milliseconds timeout, std::chrono::milliseconds io_timeout,
                 int& fd_out, std::string& error) {
    const int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
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
        pollfd p{fd, POLLOUT, 0};
        rc = ::poll(&p, 1, static_cast<int>(timeout.count()));
        if (rc == 0) {
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
#endif

#if defined(_WIN32)
bool set_nonblocking(int) noexcept { return false; }
bool wait_socket(int, bool, std::chrono::milliseconds) noexcept { return true; }
NoSigpipe::NoSigpipe() noexcept = default;
NoSigpipe::~NoSigpipe() = default;
#else
bool set_nonblocking(int fd) noexcept {
    const int flags = fcntl(fd, F_GETFL, 0);
    return flags >= 0 && fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0;
}

bool wait_socket(int fd, bool for_write, std::chrono::milliseconds wait) noexcept {
    pollfd p{fd, static_cast<short>(for_write ? POLLOUT : POLLIN), 0};
    const auto ms = static_cast<int>(std::max<std::chrono::milliseconds::rep>(0, std::min<std::chrono::milliseconds::rep>(
                                                                                    wait.count(), 24 * 3600 * 1000)));
    int rc;
    do {
        rc = ::poll(&p, 1, ms);
    } while (rc < 0 && errno == EINTR);
    return rc > 0;
}

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
