// SPDX-License-Identifier: Apache-2.0
// The connect-failure diagnosis (src/connect_diagnosis.cpp) where it needs no broker.
#include "support/catch.hpp"

#include "connect_diagnosis.hpp"

#include <securemqtt/errors.hpp>
#include <securemqtt/tls_options.hpp>

using namespace securemqtt;

TEST_CASE("with the connect timeout used up, the diagnosis makes no probe and names the timeout", "[diagnosis]") {
    // 192.0.2.1 (TEST-NET-1) answers nothing: a probe would wait, or fail as unreachable.
    const detail::Diagnosis d = detail::diagnose_connect_failure("192.0.2.1", 8883, TlsOptions{}, "", "", "",
                                                                 "TCP connect completion failure", -1,
                                                                 std::chrono::milliseconds(0));
    CHECK(d.reason == ConnectFailure::timeout);
    CHECK(d.detail.find("TCP connect completion failure") != std::string::npos);
    CHECK(d.detail.find("connect timeout ran out") != std::string::npos);
}

TEST_CASE("CONNACK refusals are named without any network I/O, whatever time is left", "[diagnosis]") {
    const detail::Diagnosis d = detail::diagnose_connect_failure("192.0.2.1", 8883, TlsOptions{}, "", "", "",
                                                                 "refused", 5, std::chrono::milliseconds(0));
    CHECK(d.reason == ConnectFailure::not_authorized);
    CHECK(d.detail == "the broker refused the connection: not authorised (CONNACK 5)");
}
