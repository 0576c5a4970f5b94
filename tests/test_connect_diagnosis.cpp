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
    const auto diagnose = [](int code, int version) {
        return detail::diagnose_connect_failure("192.0.2.1", 8883, detail::TlsSetup{}, version, "refused", code,
                                                std::chrono::milliseconds(0));
    };
    detail::Diagnosis d = diagnose(5, 4);
    CHECK(d.reason == ConnectFailure::not_authorized);
    CHECK(d.detail == "the broker refused the connection: not authorised (CONNACK 5)");
    d = diagnose(4, 4);
    CHECK(d.reason == ConnectFailure::not_authorized);
    CHECK(d.detail == "the broker refused the connection: bad user name or password (CONNACK 4)");
    d = diagnose(1, 4);
    CHECK(d.reason == ConnectFailure::protocol_not_supported);
    CHECK(d.detail == "the broker refused the connection: unacceptable protocol version (CONNACK 1)");
    d = diagnose(0x84, 5);
    CHECK(d.reason == ConnectFailure::protocol_not_supported);
    CHECK(d.detail == "the broker refused the connection: unsupported_protocol_version (MQTT 5 reason code 132)");
    d = diagnose(0x87, 5);
    CHECK(d.reason == ConnectFailure::not_authorized);
    CHECK(d.detail == "the broker refused the connection: not_authorized (MQTT 5 reason code 135)");
}
