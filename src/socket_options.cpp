// SPDX-License-Identifier: Apache-2.0
#include "socket_options.hpp"

#if defined(_WIN32)
#include <winsock2.h>
#else
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/time.h>
#endif

namespace securemqtt::detail {

bool set_blocking_with_timeouts(int fd, std::chrono::milliseconds timeout) noexcept {
#if defined(_WIN32)
    u_long mode = 0;
    if (ioctlsocket(static_cast<SOCKET>(fd), FIONBIO, &mode) != 0) return false;
    const DWORD ms = static_cast<DWORD>(timeout.count());
    const char* value = reinterpret_cast<const char*>(&ms);
    return setsockopt(static_cast<SOCKET>(fd), SOL_SOCKET, SO_RCVTIMEO, value, sizeof ms) == 0 &&
           setsockopt(static_cast<SOCKET>(fd), SOL_SOCKET, SO_SNDTIMEO, value, sizeof ms) == 0;
#else
    const int flags = fcntl(fd, F_GETFL, 0);
    if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0) return false;
    timeval tv{};
    tv.tv_sec = static_cast<decltype(tv.tv_sec)>(timeout.count() / 1000);
    tv.tv_usec = static_cast<decltype(tv.tv_usec)>((timeout.count() % 1000) * 1000);
    return setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) == 0 &&
           setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) == 0;
#endif
}

}  // namespace securemqtt::detail
