// SPDX-License-Identifier: Apache-2.0
// The probe's TCP connect (src/socket_options.cpp) against a loopback listener. Built twice:
// as is, and with SECUREMQTT_TEST_NO_SOCK_CLOEXEC, which takes the path of systems without
// SOCK_CLOEXEC (macOS) on Linux.
#include "support/catch.hpp"

#include "socket_options.hpp"

#if !defined(_WIN32)
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>

namespace {

using namespace std::chrono_literals;

// A loopback socket bound to a free port, listening when asked to.
struct Loopback {
    explicit Loopback(bool listening) {
        fd = ::socket(AF_INET, SOCK_STREAM, 0);
        REQUIRE(fd >= 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::bind(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) == 0);
        socklen_t len = sizeof a;
        REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0);
        port = ntohs(a.sin_port);
        if (listening) REQUIRE(::listen(fd, 1) == 0);
    }
    ~Loopback() { ::close(fd); }
    Loopback(const Loopback&) = delete;
    Loopback& operator=(const Loopback&) = delete;
    int fd = -1;
    int port = 0;
};

}  // namespace

TEST_CASE("connect_tcp gives a blocking socket that a child process does not inherit", "[socket]") {
    Loopback server(true);
    std::string error;
    const securemqtt::detail::SocketHandle s = securemqtt::detail::connect_tcp("127.0.0.1", server.port, 2s, 1s, error);
    INFO(error);
    REQUIRE(s != securemqtt::detail::invalid_socket);
    CHECK((::fcntl(s, F_GETFD) & FD_CLOEXEC) != 0);
    CHECK((::fcntl(s, F_GETFL) & O_NONBLOCK) == 0);
    CHECK(securemqtt::detail::set_nonblocking(s));
    CHECK((::fcntl(s, F_GETFL) & O_NONBLOCK) != 0);
    securemqtt::detail::close_socket(s);
}

TEST_CASE("connect_tcp names the cause when nothing listens", "[socket]") {
    Loopback bound_only(false);  // the port stays taken, and nothing accepts on it
    std::string error;
    const securemqtt::detail::SocketHandle s =
        securemqtt::detail::connect_tcp("127.0.0.1", bound_only.port, 2s, 1s, error);
    CHECK(s == securemqtt::detail::invalid_socket);
    CHECK(error == "Connection refused");
}
#endif
