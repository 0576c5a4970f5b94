// SPDX-License-Identifier: Apache-2.0
// MessageProperties to and from Paho's property lists (src/mqtt_properties.cpp): what goes on
// the wire is what was signed, what comes off it is read in order, and values MQTT cannot carry
// are named before anything is sent.
#include "support/catch.hpp"

#include "mqtt_properties.hpp"

#include <securemqtt/properties.hpp>

#include <mqtt/async_client.h>

using namespace securemqtt;

namespace {

// Paho C counts its allocations in a heap of its own, set up when the first client is made;
// property lists built before that are never freed (eclipse-paho/paho.mqtt.c #1378). In the
// library a client always exists before any property list: so here too.
struct PahoHeap {
    PahoHeap() : client("ssl://127.0.0.1:1", "securemqtt-properties-test") {}
    mqtt::async_client client;
};
const PahoHeap& paho_heap() {
    static const PahoHeap heap;
    return heap;
}

MessageProperties all() {
    (void)paho_heap();
    MessageProperties p;
    p.content_type = "application/json";
    p.response_topic = "r/1";
    p.correlation_data = std::string("\0\xff", 2);
    p.user_properties = {{"a", "1"}, {"b", ""}, {"a", "2"}};
    p.message_expiry = std::chrono::seconds(4000000000LL);  // above INT32_MAX: the bits travel
    return p;
}

}  // namespace

TEST_CASE("properties survive the trip through Paho's list, in order, expiry included", "[properties][paho]") {
    const MessageProperties sent = all();
    MessageProperties got;
    REQUIRE(detail::from_paho(detail::to_paho(sent), got));
    CHECK(got.content_type == sent.content_type);
    CHECK(got.response_topic == sent.response_topic);
    CHECK(got.correlation_data == sent.correlation_data);
    CHECK(got.user_properties == sent.user_properties);
    CHECK(got.message_expiry == sent.message_expiry);
    CHECK(encode_covered_properties(got) == encode_covered_properties(sent));
    // The application's payload format is the envelope's flag: never a packet property.
    MessageProperties text;
    text.payload_format = PayloadFormat::utf8;
    CHECK(detail::to_paho(text).size() == 0);
}

TEST_CASE("a single-valued covered property twice makes the message unverifiable", "[properties][paho]") {
    (void)paho_heap();
    for (const auto code : {mqtt::property::CONTENT_TYPE, mqtt::property::RESPONSE_TOPIC, mqtt::property::CORRELATION_DATA}) {
        mqtt::properties twice;
        twice.add({code, std::string("x")});
        twice.add({code, std::string("y")});
        MessageProperties got;
        CHECK_FALSE(detail::from_paho(twice, got));
    }
    mqtt::properties users;  // user properties repeat by design
    users.add({mqtt::property::USER_PROPERTY, "k", "1"});
    users.add({mqtt::property::USER_PROPERTY, "k", "2"});
    MessageProperties got;
    CHECK(detail::from_paho(users, got));
    CHECK(got.user_properties.size() == 2);
}

TEST_CASE("values MQTT cannot carry are named", "[properties][paho]") {
    CHECK(detail::property_problem(all()).empty());
    const auto problem = [](auto change) {
        MessageProperties p = all();
        change(p);
        return detail::property_problem(p);
    };
    CHECK(problem([](MessageProperties& p) { p.response_topic = "r/+"; }).find("not a topic name") != std::string::npos);
    CHECK(problem([](MessageProperties& p) { p.response_topic = ""; }).find("not a topic name") != std::string::npos);
    CHECK(problem([](MessageProperties& p) { p.content_type = std::string("\xc0\xaf"); }).find("UTF-8") != std::string::npos);
    CHECK(problem([](MessageProperties& p) { p.content_type = std::string("a\0b", 3); }).find("U+0000") != std::string::npos);
    CHECK(problem([](MessageProperties& p) { p.user_properties[0].value = "tab\there"; }).find("control character (U+0009)") != std::string::npos);
    CHECK(problem([](MessageProperties& p) { p.user_properties[0].name = "\xc2\x85"; }).find("control character (U+0085)") != std::string::npos);
    CHECK(problem([](MessageProperties& p) { p.user_properties[0].value = "\xef\xb7\x90"; }).find("non-character (U+FDD0)") != std::string::npos);
    CHECK(problem([](MessageProperties& p) { p.user_properties[0].value = "\xf4\x8f\xbf\xbe"; }).find("non-character (U+10FFFE)") != std::string::npos);
    CHECK(problem([](MessageProperties& p) { p.user_properties[0].value = "caf\xc3\xa9 \xe2\x9c\x93"; }).empty());
    CHECK(problem([](MessageProperties& p) { p.correlation_data = std::string(65536, '\0'); }).find("65,535") != std::string::npos);
    CHECK(problem([](MessageProperties& p) { p.correlation_data = std::string(65535, '\1'); }).empty());  // bytes, not text
    CHECK(problem([](MessageProperties& p) { p.message_expiry = std::chrono::seconds(-1); }).find("expiry") != std::string::npos);
    CHECK(problem([](MessageProperties& p) { p.message_expiry = std::chrono::seconds(4294967296LL); }).find("expiry") != std::string::npos);
}
