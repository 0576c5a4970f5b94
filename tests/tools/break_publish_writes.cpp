// SPDX-License-Identifier: Apache-2.0
// Fault injection for integration.faults (LD_PRELOAD into an example program): breaks the
// connection under chosen MQTT PUBLISH writes, the way a broker that dies mid-stream does, so
// that the MQTT client's handling of a write failing on a dead connection can be tested on
// demand instead of once in many broker kills.
//
//   SECUREMQTT_BREAK_PUBLISH=500,1500 LD_PRELOAD=libsecuremqtt_break_publish_writes.so secure_publisher ...
//
// Before the 500th and the 1500th TLS record that starts a PUBLISH packet, the socket is shut
// down in both directions; the real SSL_write then fails as on a reset connection (EPIPE), and
// the broker sees the connection close.
#include <openssl/ssl.h>

#include <dlfcn.h>
#include <sys/socket.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <set>
#include <string>

namespace {

using SslWrite = int (*)(SSL*, const void*, int);

std::set<long> break_points() {
    std::set<long> points;
    const char* text = std::getenv("SECUREMQTT_BREAK_PUBLISH");
    std::string s = text ? text : "";
    std::size_t start = 0;
    while (start < s.size()) {
        const std::size_t end = s.find(',', start);
        points.insert(std::strtol(s.substr(start, end - start).c_str(), nullptr, 10));
        if (end == std::string::npos) break;
        start = end + 1;
    }
    return points;
}

std::atomic<long> publishes{0};

}  // namespace

extern "C" int SSL_write(SSL* ssl, const void* buf, int num) {
    static const auto real = reinterpret_cast<SslWrite>(dlsym(RTLD_NEXT, "SSL_write"));
    static const std::set<long> points = break_points();
    const auto* bytes = static_cast<const unsigned char*>(buf);
    if (num > 0 && (bytes[0] & 0xF0) == 0x30) {  // MQTT fixed header: PUBLISH
        const long n = publishes.fetch_add(1) + 1;
        if (points.count(n) != 0) shutdown(SSL_get_fd(ssl), SHUT_RDWR);
    }
    return real(ssl, buf, num);
}
