// SPDX-License-Identifier: Apache-2.0
#include "support/catch.hpp"

#include <securemqtt/topic.hpp>

using namespace securemqtt;

TEST_CASE("topic filters follow MQTT wildcard rules", "[topic]") {
    CHECK(topic_matches("a/b", "a/b"));
    CHECK_FALSE(topic_matches("a/b", "a/b/c"));
    CHECK_FALSE(topic_matches("a/b/c", "a/b"));
    CHECK(topic_matches("a/+", "a/b"));
    CHECK(topic_matches("a/+", "a/"));
    CHECK_FALSE(topic_matches("a/+", "a/b/c"));
    CHECK(topic_matches("a/+/c", "a/x/c"));
    CHECK(topic_matches("a/#", "a"));
    CHECK(topic_matches("a/#", "a/b/c/d"));
    CHECK(topic_matches("#", "anything/at/all"));
    CHECK(topic_matches("+/+", "/x"));
    CHECK_FALSE(topic_matches("b/#", "a/b"));
    CHECK_FALSE(topic_matches("#", "$SYS/broker"));
    CHECK_FALSE(topic_matches("+/broker", "$SYS/broker"));
    CHECK(topic_matches("$SYS/#", "$SYS/broker"));
}

TEST_CASE("invalid filters and names never match", "[topic]") {
    CHECK_FALSE(is_valid_topic_filter(""));
    CHECK_FALSE(is_valid_topic_filter("a/#/b"));
    CHECK_FALSE(is_valid_topic_filter("a#"));
    CHECK_FALSE(is_valid_topic_filter("a/b+"));
    CHECK(is_valid_topic_filter("+/+/#"));
    CHECK_FALSE(is_valid_topic_name("a/+"));
    CHECK_FALSE(is_valid_topic_name("a/#"));
    CHECK_FALSE(is_valid_topic_name(""));
    CHECK_FALSE(is_valid_topic_name(std::string_view("a\0b", 3)));
    CHECK_FALSE(topic_matches("a/#/b", "a/x/b"));
    CHECK_FALSE(topic_matches("a/+", "a/+"));
}

TEST_CASE("a shared subscription matches topics by the filter after its group", "[topic]") {
    CHECK(matching_filter("$share/workers/devices/#") == "devices/#");
    CHECK(matching_filter("$share/g/a/+/c") == "a/+/c");
    CHECK(matching_filter("devices/#") == "devices/#");
    CHECK(matching_filter("$SYS/#") == "$SYS/#");
    CHECK(is_valid_topic_filter("$share/workers/devices/#"));
    CHECK(is_valid_topic_filter("$share/g/+"));
    CHECK_FALSE(is_valid_topic_filter("$share/workers"));      // no filter
    CHECK_FALSE(is_valid_topic_filter("$share/workers/"));     // empty filter
    CHECK_FALSE(is_valid_topic_filter("$share//devices/#"));   // empty group
    CHECK_FALSE(is_valid_topic_filter("$share/+/devices/#"));  // wildcard group
    CHECK_FALSE(is_valid_topic_filter("$share/g#/devices"));
    CHECK_FALSE(is_valid_topic_filter("$share/g/devices/#/x"));  // the filter itself invalid
    // The topic a message arrives on never carries the share prefix.
    CHECK(topic_matches(matching_filter("$share/workers/devices/#"), "devices/device-1/temp"));
    CHECK_FALSE(topic_matches("$share/workers/devices/#", "devices/device-1/temp"));
}
