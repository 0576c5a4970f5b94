// SPDX-License-Identifier: Apache-2.0
// QoS and MqttVersion as the API takes them, and the int forms they replaced (deprecated, still
// compiling: tests/tools/deprecated_int_forms.cpp checks that each one warns).
#include "support/catch.hpp"

#include <securemqtt/securemqtt.hpp>

#include <type_traits>

using namespace securemqtt;

TEST_CASE("QoS and MqttVersion carry their wire numbers and names", "[mqtt_types]") {
    CHECK(static_cast<int>(QoS::at_most_once) == 0);
    CHECK(static_cast<int>(QoS::at_least_once) == 1);
    CHECK(static_cast<int>(QoS::exactly_once) == 2);
    CHECK(static_cast<int>(MqttVersion::v3_1_1) == 4);
    CHECK(static_cast<int>(MqttVersion::v5) == 5);
    CHECK(to_string(QoS::exactly_once) == "exactly_once");
    CHECK(to_string(MqttVersion::v3_1_1) == "v3_1_1");
    CHECK(to_string(static_cast<QoS>(7)) == "unknown");
}

TEST_CASE("settings take the enums and compare with them", "[mqtt_types]") {
    PublishOptions publish;
    CHECK(publish.qos == QoS::at_least_once);  // the defaults are as they were
    publish.qos = QoS::exactly_once;
    CHECK(publish.qos == QoS::exactly_once);
    CHECK(publish.qos != QoS::at_most_once);
    CHECK(publish.qos.level() == 2);
    CHECK(to_string(publish.qos) == "exactly_once");
    PublishOptions other;
    CHECK(other.qos < publish.qos);
    CHECK(other.qos != publish.qos);
    SessionOptions session;
    CHECK(session.mqtt_version == MqttVersion::v3_1_1);
    session.mqtt_version = MqttVersion::v5;
    CHECK(session.mqtt_version.level() == 5);
    const QoS plain = Message{}.qos;
    CHECK(plain == QoS::at_most_once);
    CHECK(LastWill{}.qos == QoS::at_least_once);
    CHECK(RequesterOptions{}.qos == QoS::at_least_once);
    // A QoS is no int: mixing them needs the deprecated conversions below.
    STATIC_REQUIRE_FALSE(std::is_convertible_v<QoS, int>);
}

// The old int forms, as code written before the enums has them: they compile and mean the same.
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
#elif defined(_MSC_VER)
#pragma warning(push)
#pragma warning(disable : 4996)
#endif
TEST_CASE("the int forms still compile and mean the same", "[mqtt_types]") {
    PublishOptions publish;
    publish.qos = 2;
    CHECK(publish.qos == QoS::exactly_once);
    CHECK(publish.qos == 2);
    const int level = publish.qos;
    CHECK(level == 2);
    SessionOptions session;
    session.mqtt_version = 5;
    CHECK(session.mqtt_version == MqttVersion::v5);
    const PublishOptions aggregate{0, true, {}};
    CHECK(aggregate.qos == QoS::at_most_once);
    CHECK(IntCompatible<QoS>{} == QoS::at_most_once);  // `{}` meant the int 0
    CHECK(publish.qos > 1);
    // On the numbers as given: an int outside the enum's range equals no enum value, even one
    // its low byte would name.
    const IntCompatible<QoS> odd = 256;
    CHECK(odd != QoS::at_most_once);
    CHECK(odd.level() == 256);
    // Out of range, as an int could always be: kept as given, refused where used.
    session.mqtt_version = 3;
    CHECK(session.mqtt_version.level() == 3);
    session.keyring = std::make_shared<Keyring>();
    session.server_uri = "mqtts://localhost:8883";
    CHECK_THROWS_WITH(SecureSession(session), Catch::Contains("mqtt_version must be 4 (MQTT 3.1.1) or 5, got 3"));
}
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#elif defined(_MSC_VER)
#pragma warning(pop)
#endif
