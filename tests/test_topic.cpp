// SPDX-License-Identifier: Apache-2.0
#include "support/catch.hpp"

#include <securemqtt/topic.hpp>

#include <string>

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

TEST_CASE("a wildcard or NUL anywhere in a topic name makes it invalid", "[topic]") {
    for (std::size_t size = 1; size <= 40; ++size) {
        std::string topic(size, 'a');
        CHECK(is_valid_topic_name(topic));
        for (std::size_t pos = 0; pos < size; ++pos) {
            for (const char c : {'+', '#', '\0'}) {
                std::string bad = topic;
                bad[pos] = c;
                INFO("size " << size << ", position " << pos << ", byte " << int(c));
                CHECK_FALSE(is_valid_topic_name(bad));
            }
        }
    }
    // Bytes next to the ones looked for, and with the high bit set, are fine.
    const std::string near("\x01\x22\x24\x2a\x2c\x80\xff\xab", 8);
    CHECK(is_valid_topic_name(near));
    CHECK(is_valid_topic_name(near + near + "\x2a"));
}
