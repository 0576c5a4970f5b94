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
