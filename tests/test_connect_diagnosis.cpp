// SPDX-License-Identifier: Apache-2.0
// The connect-failure diagnosis (src/connect_diagnosis.cpp) where it needs no broker.
#include "support/catch.hpp"

#include "connect_diagnosis.hpp"

#include <securemqtt/errors.hpp>
#include <securemqtt/tls_options.hpp>

using namespace securemqtt;

TEST_CASE("with the connect timeout used up, the diagnosis makes no probe and names the timeout", "[diagnosis]") {
    // 192.0.2.1 (TEST-NET-1) answers nothing: a probe would wait, or fail as unreachable.
    const detail::Diagnosis d = detail::diagnose_connect_failure("192.0.2.1", 8883, detail::TlsSetup{}, 4,
                                                                 "TCP connect completion failure", -1,
                                                                 std::chrono::milliseconds(0));
    CHECK(d.reason == ConnectFailure::timeout);
    CHECK(d.detail.find("TCP connect completion failure") != std::string::npos);
    CHECK(d.detail.find("connect timeout ran out") != std::string::npos);
}

TEST_CASE("CONNACK refusals are named without any network I/O, whatever time is left", "[diagnosis]") {
    struct Case {
        int code;
        int version;
        ConnectFailure reason;
        const char* detail;
    };
    const Case cases[] = {
        {5, 4, ConnectFailure::not_authorized, "not authorised (CONNACK 5)"},
        {4, 4, ConnectFailure::not_authorized, "bad user name or password (CONNACK 4)"},
        {2, 4, ConnectFailure::other, "client identifier rejected (CONNACK 2)"},
        {1, 4, ConnectFailure::protocol_not_supported, "unacceptable protocol version (CONNACK 1)"},
        {0x84, 5, ConnectFailure::protocol_not_supported, "unsupported_protocol_version (MQTT 5 reason code 132)"},
        {0x87, 5, ConnectFailure::not_authorized, "not_authorized (MQTT 5 reason code 135)"},
        {0x8A, 5, ConnectFailure::not_authorized, "banned (MQTT 5 reason code 138)"},
    };
    for (const Case& c : cases) {
        INFO("code " << c.code);
        const detail::Diagnosis d = detail::diagnose_connect_failure("192.0.2.1", 8883, detail::TlsSetup{}, c.version,
                                                                     "refused", c.code, std::chrono::milliseconds(0));
        CHECK(d.reason == c.reason);
        CHECK(d.detail == std::string("the broker refused the connection: ") + c.detail);
    }
}
