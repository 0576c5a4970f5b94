// SPDX-License-Identifier: Apache-2.0
// The Redis client's pieces that need no server (src/redis_client.hpp, src/redis_scripts.hpp):
// cluster key slots against values from `redis-cli cluster keyslot`, location parsing, and the
// Lua scripts embedded at build time. The client against real servers: tests/integration.
#include "support/catch.hpp"
#include "support/test_util.hpp"

#include "redis_client.hpp"
#include "redis_scripts.hpp"

#include <securemqtt/errors.hpp>

#include <filesystem>
#include <string>

using securemqtt::ConfigError;
using namespace securemqtt::detail;

TEST_CASE("redis_key_slot: CRC16/XMODEM mod 16384, as redis-cli cluster keyslot says") {
    CHECK(redis_key_slot("") == 0);
    CHECK(redis_key_slot("foo") == 12182);
    CHECK(redis_key_slot("bar") == 5061);
    CHECK(redis_key_slot("hello") == 866);
    CHECK(redis_key_slot("123456789") == 12739);  // CRC16/XMODEM's check value 0x31c3
    CHECK(redis_key_slot("\xff") == 7920);        // bytes are unsigned
    CHECK(redis_key_slot("securemqtt:{6b6579}:m:0000000000000001") == 8559);
}

TEST_CASE("redis_key_slot: only the first non-empty {hash tag} counts") {
    CHECK(redis_key_slot("{user1000}.following") == 3443);
    CHECK(redis_key_slot("{user1000}.followers") == 3443);
    CHECK(redis_key_slot("foo{bar}{zap}") == 5061);    // "bar"
    CHECK(redis_key_slot("foo{}{bar}") == 8363);       // empty tag: the whole key
    CHECK(redis_key_slot("{}") == 15257);
    CHECK(redis_key_slot("foo{{bar}}zap") == 4015);    // "{bar"
    CHECK(redis_key_slot("{bar") == 4015);             // no '}': the whole key
    CHECK(redis_key_slot("a{b") == 13340);
    CHECK(redis_key_slot("}{x}") == 16287);            // "x"
    CHECK(redis_key_slot(std::string("k\0{t}", 5)) == redis_key_slot("t"));
}

TEST_CASE("parse_redis_location: host, port, database") {
    CHECK(is_redis_location("redis://h"));
    CHECK_FALSE(is_redis_location("rediss://h"));
    CHECK_FALSE(is_redis_location("/var/lib/store.db"));

    RedisLocation l = parse_redis_location("redis://127.0.0.1:7000/3");
    CHECK(l.text == "redis://127.0.0.1:7000/3");
    CHECK(l.host == "127.0.0.1");
    CHECK(l.port == 7000);
    CHECK(l.db == 3);

    l = parse_redis_location("redis://cache-1.example.com");
    CHECK(l.host == "cache-1.example.com");
    CHECK(l.port == 6379);
    CHECK(l.db == 0);

    l = parse_redis_location("redis://[::1]:6380/0");
    CHECK(l.host == "::1");
    CHECK(l.port == 6380);

    l = parse_redis_location("redis://[fe80::1:2]");
    CHECK(l.host == "fe80::1:2");
    CHECK(l.port == 6379);

    CHECK(parse_redis_location("redis://h:65535/2147483647").port == 65535);
    CHECK(parse_redis_location("redis://h:1/2147483647").db == 2147483647);
}

TEST_CASE("parse_redis_location: what is wrong, in one line naming the location") {
    const auto wrong = [](const std::string& location) {
        try {
            parse_redis_location(location);
        } catch (const ConfigError& e) {
            return std::string(e.what());
        }
        FAIL("accepted: " << location);
        return std::string();
    };
    using Catch::Contains;
    CHECK_THAT(wrong("http://h:1"), Contains("'http://h:1'") && Contains("redis://HOST:PORT[/DB]"));
    CHECK_THAT(wrong("redis://"), Contains("'redis://'") && Contains("the host is empty"));
    CHECK_THAT(wrong("redis://:6379"), Contains("the host is empty"));
    CHECK_THAT(wrong("redis://h:0"), Contains("'redis://h:0'") && Contains("port must be a number from 1 to 65535"));
    CHECK_THAT(wrong("redis://h:65536"), Contains("port must be a number from 1 to 65535"));
    CHECK_THAT(wrong("redis://h:"), Contains("port must be a number from 1 to 65535"));
    CHECK_THAT(wrong("redis://h:+1"), Contains("port must be a number from 1 to 65535"));
    CHECK_THAT(wrong("redis://h:6379x"), Contains("port must be a number from 1 to 65535"));
    CHECK_THAT(wrong("redis://h:1/-1"), Contains("'redis://h:1/-1'") && Contains("database must be a non-negative integer"));
    CHECK_THAT(wrong("redis://h:1/"), Contains("database must be a non-negative integer"));
    CHECK_THAT(wrong("redis://h:1/0/extra"), Contains("database must be a non-negative integer"));
    CHECK_THAT(wrong("redis://h:1/2147483648"), Contains("database must be a non-negative integer"));
    CHECK_THAT(wrong("redis://h:1?db=2"), Contains("query strings are not supported"));
    CHECK_THAT(wrong("redis://h:1#x"), Contains("fragments are not supported"));
    CHECK_THAT(wrong("redis://h h:1"), Contains("not a host name or an IP address"));
    CHECK_THAT(wrong("redis://::1:6379"), Contains("must be in brackets, as in redis://[::1]:6379"));
    CHECK_THAT(wrong("redis://[::1"), Contains("lacks its closing ']'"));
    CHECK_THAT(wrong("redis://[::1]6379"), Contains("unexpected text after the IPv6 address"));
    CHECK_THAT(wrong("redis://[]:6379"), Contains("'' is not an IPv6 address"));
    CHECK_THAT(wrong("redis://[127.0.0.1]:6379"), Contains("'127.0.0.1' is not an IPv6 address"));
    const std::string line = wrong("redis://h:1\n/x");
    CHECK(line.find('\n') == std::string::npos);
}

TEST_CASE("parse_redis_location: user and password refused, the password never shown") {
    for (const std::string location : {"redis://user:s3cret@h:6379/0", "redis://:s3cret@h:6379", "redis://u:s3c@ret@h"}) {
        try {
            parse_redis_location(location);
            FAIL("accepted: " << location);
        } catch (const ConfigError& e) {
            const std::string what = e.what();
            CHECK_THAT(what, Catch::Contains("user names and passwords in the location are not supported"));
            CHECK_THAT(what, Catch::Contains("redis://...@h"));
            CHECK(what.find("s3c") == std::string::npos);
        }
    }
    // Nor in a query string or a fragment.
    for (const std::string location : {"redis://h:6379?password=s3cret", "redis://h:6379/0#s3cret"}) {
        try {
            parse_redis_location(location);
            FAIL("accepted: " << location);
        } catch (const ConfigError& e) {
            CHECK(std::string(e.what()).find("s3c") == std::string::npos);
        }
    }
}

TEST_CASE("redis_script: every src/redis/*.lua embedded as it is on disk") {
    int count = 0;
    for (const auto& entry : std::filesystem::directory_iterator(SECUREMQTT_SOURCE_DIR "/src/redis")) {
        if (entry.path().extension() != ".lua") continue;
        ++count;
        INFO(entry.path());
        CHECK(redis_script(entry.path().stem().string()) == testutil::read_file(entry.path().string()));
    }
    CHECK(count >= 1);
    CHECK_FALSE(redis_script("replay_admit").empty());
    CHECK_THROWS_AS(redis_script("no_such_script"), std::out_of_range);
}
