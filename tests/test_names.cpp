// SPDX-License-Identifier: Apache-2.0
// Every public enum has a stable name for each of its values, distinct within the enum.
#include "support/catch.hpp"

#include <securemqtt/securemqtt.hpp>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

using namespace securemqtt;

namespace {

template <typename Enum>
void check_names(const std::vector<Enum>& values) {
    std::set<std::string> seen;
    for (const Enum v : values) {
        const std::string name(to_string(v));
        INFO("value " << static_cast<int>(v) << " named '" << name << "'");
        CHECK(!name.empty());
        CHECK(name != "unknown");
        CHECK(name.find(' ') == std::string::npos);
        CHECK(seen.insert(name).second);
    }
}

}  // namespace

TEST_CASE("every public enum value has its own name", "[names]") {
    check_names<LogLevel>({LogLevel::debug, LogLevel::info, LogLevel::warning, LogLevel::error});
    check_names<RetainedPolicy>({RetainedPolicy::same_as_live, RetainedPolicy::allow_older});
    check_names<TlsVersion>({TlsVersion::tls1_2, TlsVersion::tls1_3});
    check_names<QoS>({QoS::at_most_once, QoS::at_least_once, QoS::exactly_once});
    check_names<MqttVersion>({MqttVersion::v3_1_1, MqttVersion::v5});
    check_names<SessionEventType>({SessionEventType::connected, SessionEventType::connection_lost,
                                   SessionEventType::reconnecting, SessionEventType::disconnected});
    check_names<Delivery>({Delivery::once, Delivery::every_matching_subscription});
    check_names<ReplayStore::Verdict>({ReplayStore::Verdict::admitted, ReplayStore::Verdict::replayed,
                                       ReplayStore::Verdict::in_flight, ReplayStore::Verdict::unavailable});
    check_names<OutcomeStatus>({OutcomeStatus::success, OutcomeStatus::refused, OutcomeStatus::connection_lost,
                                OutcomeStatus::timeout, OutcomeStatus::buffer_full, OutcomeStatus::session_closed,
                                OutcomeStatus::failed});
    std::vector<ConnectFailure> failures;
    for (int i = 0; i <= static_cast<int>(ConnectFailure::protocol_not_supported); ++i) failures.push_back(static_cast<ConnectFailure>(i));
    check_names(failures);
    std::vector<RejectReason> reasons;
    for (std::size_t i = 0; i < reject_reason_count; ++i) reasons.push_back(static_cast<RejectReason>(i));
    check_names(reasons);
    // MQTT 5's reason codes (§2.4): every defined value named, undefined ones not.
    const std::vector<int> defined = {0x00, 0x01, 0x02, 0x04, 0x10, 0x11, 0x18, 0x19, 0x80, 0x81, 0x82, 0x83, 0x84,
                                      0x85, 0x86, 0x87, 0x88, 0x89, 0x8A, 0x8B, 0x8C, 0x8D, 0x8E, 0x8F, 0x90, 0x91,
                                      0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9E,
                                      0x9F, 0xA0, 0xA1, 0xA2};
    std::vector<ReasonCode> codes;
    for (const int c : defined) codes.push_back(static_cast<ReasonCode>(c));
    check_names(codes);
    for (int c = 0; c < 256; ++c) {
        if (std::find(defined.begin(), defined.end(), c) == defined.end()) {
            CHECK(to_string(static_cast<ReasonCode>(c)) == "unknown_reason_code");
        }
    }
    CHECK(to_string(ReasonCode::not_authorized) == "not_authorized");
    CHECK(to_string(TlsVersion::tls1_3) == "tlsv1.3");
    CHECK(parse_tls_version(to_string(TlsVersion::tls1_2)) == TlsVersion::tls1_2);
}
