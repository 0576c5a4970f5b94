// SPDX-License-Identifier: Apache-2.0
// The durable replay store: what a guard confirmed survives it, in a new guard on the same file.
#include "support/catch.hpp"
#include "support/replay_position.hpp"
#include "support/test_util.hpp"

#include <securemqtt/securemqtt.hpp>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <sys/stat.h>
#include <unistd.h>

using namespace securemqtt;

namespace {

constexpr std::int64_t now = testutil::replay_now;
using testutil::at;

// A private directory for one test's store files, removed with them.
struct TempDir {
    std::string path;
    TempDir() {
        std::string pattern = "/tmp/securemqtt-store-XXXXXX";
        if (mkdtemp(pattern.data()) == nullptr) FAIL("mkdtemp failed");
        path = pattern;
    }
    ~TempDir() { std::system(("rm -rf '" + path + "'").c_str()); }
    std::string file(const char* name) const { return path + "/" + name; }
};

StreamPosition retained_at(std::string_view topic, std::uint64_t stream, std::int64_t ts) {
    StreamPosition p = at(1, stream, ts);
    p.topic = topic;
    p.signed_retained = true;
    p.retained = true;
    return p;
}

ReplayGuardOptions with_store(const std::string& file) {
    ReplayGuardOptions o;
    o.store = open_replay_store(file);
    return o;
}

// Admits and confirms, as a session does for a handled message.
bool handled(ReplayGuard& g, const StreamPosition& p, std::int64_t t = now) {
    if (g.admit(p, t)) return false;
    return g.confirm(p);
}

bool admitted(ReplayGuard& g, const StreamPosition& p, std::int64_t t = now) { return !g.admit(p, t).has_value(); }

std::string config_error_of(const std::string& file) {
    try {
        ReplayGuard g(with_store(file));
    } catch (const ConfigError& e) {
        return e.what();
    }
    return "(no error)";
}

}  // namespace

TEST_CASE("a reopened store rejects replays of confirmed messages and admits new ones", "[replay_store]") {
    TempDir dir;
    const std::string file = dir.file("replay.db");
    {
        ReplayGuard g(with_store(file));
        for (std::uint64_t c : {1u, 2u, 3u, 7u, 5u}) REQUIRE(handled(g, at(c)));
        REQUIRE(handled(g, at(1, 2, now, "other")));
    }
    ReplayGuard g(with_store(file));
    for (std::uint64_t c : {1u, 2u, 3u, 5u, 7u}) CHECK(g.admit(at(c), now) == RejectReason::replayed);
    CHECK(g.admit(at(1, 2, now, "other"), now) == RejectReason::replayed);
    CHECK(admitted(g, at(4)));  // in the window, never seen
    CHECK(admitted(g, at(8)));
    CHECK(admitted(g, at(1, 3)));  // a new stream
    CHECK(g.tracked_keys() == 2);
}

TEST_CASE("a message admitted but not confirmed is not in the store", "[replay_store]") {
    TempDir dir;
    const std::string file = dir.file("replay.db");
    {
        ReplayGuard g(with_store(file));
        REQUIRE(handled(g, at(1)));
        REQUIRE(admitted(g, at(2)));                        // reserved: its handler never returned
        CHECK(g.admit(at(2), now) == RejectReason::replayed);  // but a copy is already refused
        REQUIRE(admitted(g, at(1, 9)));                     // a whole stream only reserved
    }
    ReplayGuard g(with_store(file));
    CHECK(g.admit(at(1), now) == RejectReason::replayed);
    CHECK(admitted(g, at(2)));     // the broker's redelivery after the crash
    CHECK(admitted(g, at(1, 9)));
}

TEST_CASE("confirming writes only confirmed counters, not others reserved meanwhile", "[replay_store]") {
    TempDir dir;
    const std::string file = dir.file("replay.db");
    {
        ReplayGuard g(with_store(file));
        REQUIRE(admitted(g, at(1)));  // reserved, still in its handler on another thread
        REQUIRE(handled(g, at(2)));
        CHECK(g.confirm(at(2)));  // a second confirmation changes nothing
    }
    ReplayGuard g(with_store(file));
    CHECK(admitted(g, at(1)));
    CHECK(g.admit(at(2), now) == RejectReason::replayed);
}

TEST_CASE("evictions and the watermark they raise survive a reopen", "[replay_store]") {
    TempDir dir;
    const std::string file = dir.file("replay.db");
    ReplayGuardOptions o = with_store(file);
    o.max_streams_per_key = 2;
    {
        ReplayGuard g(o);
        REQUIRE(handled(g, at(1, 1, now - 1000)));
        REQUIRE(handled(g, at(1, 2, now - 500)));
        REQUIRE(handled(g, at(1, 3, now)));  // evicts stream 1: watermark now - 1000
        CHECK(g.evictions() == 1);
        CHECK(g.tracked_streams("k") == 2);
    }
    o.store = nullptr;  // closes the first run's file
    o.store = open_replay_store(file);
    ReplayGuard g(o);
    CHECK(g.tracked_streams("k") == 2);
    CHECK(g.admit(at(1, 1, now - 1000), now) == RejectReason::replayed);  // evicted, below the watermark
    CHECK(g.admit(at(1, 2, now - 500), now) == RejectReason::replayed);
    CHECK(g.admit(at(1, 3, now), now) == RejectReason::replayed);
    CHECK(g.admit(at(1, 4, now - 1000), now) == RejectReason::replayed);  // a new stream at the watermark
    CHECK(admitted(g, at(1, 5, now - 999)));
}

TEST_CASE("a forgotten key's floor survives a reopen", "[replay_store]") {
    TempDir dir;
    const std::string file = dir.file("replay.db");
    ReplayGuardOptions o = with_store(file);
    o.max_keys = 1;
    {
        ReplayGuard g(o);
        REQUIRE(handled(g, at(1, 1, now - 1000, "a")));
        REQUIRE(handled(g, at(1, 1, now, "b")));  // forgets "a": floor now - 1000
        CHECK(g.key_evictions() == 1);
    }
    o.store = nullptr;  // closes the first run's file
    o.store = open_replay_store(file);
    ReplayGuard g(o);
    CHECK(g.admit(at(1, 1, now - 1000, "a"), now) == RejectReason::replayed);
    CHECK(g.admit(at(1, 1, now, "b"), now) == RejectReason::replayed);
    CHECK(admitted(g, at(2, 1, now - 999, "a")));
}

TEST_CASE("a stream saved with another window size is forgotten safely at reopen", "[replay_store]") {
    TempDir dir;
    const std::string file = dir.file("replay.db");
    ReplayGuardOptions o = with_store(file);
    {
        ReplayGuard g(o);
        REQUIRE(handled(g, at(5, 1, now - 10)));
    }
    o.store = nullptr;  // closes the first run's file
    o.store = open_replay_store(file);
    o.window_size = 128;
    ReplayGuard g(o);
    CHECK(g.admit(at(5, 1, now - 10), now) == RejectReason::replayed);  // by the raised watermark
    CHECK(admitted(g, at(1, 2, now)));
}

TEST_CASE("an older retained message on a topic is rejected after a reopen", "[replay_store]") {
    TempDir dir;
    const std::string file = dir.file("replay.db");
    {
        ReplayGuard g(with_store(file));
        REQUIRE(handled(g, retained_at("door/1", 1, now - 2000)));  // unlock-door
        REQUIRE(handled(g, retained_at("door/1", 2, now - 1000)));  // lock-door
        // Within the same run too: a captured unlock-door from a stream never seen here.
        CHECK(g.admit(retained_at("door/1", 3, now - 1500), now) == RejectReason::replayed);
    }
    ReplayGuard g(with_store(file));
    CHECK(g.admit(retained_at("door/1", 4, now - 1500), now) == RejectReason::replayed);
    CHECK(admitted(g, retained_at("door/1", 5, now - 500)));   // newer state
    CHECK(admitted(g, retained_at("door/2", 6, now - 1500)));  // another topic
    CHECK(admitted(g, at(1, 7, now - 1500)));                  // not signed retained: live rules
}

TEST_CASE("a store file that cannot be used is a ConfigError naming it", "[replay_store]") {
    TempDir dir;
    SECTION("garbage") {
        const std::string file = dir.file("garbage.db");
        std::ofstream(file) << std::string(4096, 'x');
        const std::string what = config_error_of(file);
        CHECK(what.find("'" + file + "'") != std::string::npos);
        CHECK(what.find("not a database") != std::string::npos);
    }
    SECTION("a directory") {
        const std::string what = config_error_of(dir.path);
        CHECK(what.find("'" + dir.path + "'") != std::string::npos);
    }
    SECTION("a path that cannot be created") {
        const std::string file = dir.file("missing/replay.db");
        CHECK(config_error_of(file).find("'" + file + "'") != std::string::npos);
    }
    SECTION("a file that cannot be written") {
        const std::string file = dir.file("ro.db");
        { ReplayGuard g(with_store(file)); }
        chmod(file.c_str(), 0400);
        chmod(dir.path.c_str(), 0500);  // nor its journal created
        if (geteuid() != 0) {  // root writes anyway
            const std::string what = config_error_of(file);
            CHECK(what.find("'" + file + "'") != std::string::npos);
        }
        chmod(dir.path.c_str(), 0700);
    }
    SECTION("a place no one can write") {
        const std::string file = "/proc/securemqtt-replay.db";
        CHECK(config_error_of(file).find("'" + file + "'") != std::string::npos);
    }
    SECTION("a file another guard has open") {
        const std::string file = dir.file("busy.db");
        ReplayGuard owner(with_store(file));
        const std::string what = config_error_of(file);
        CHECK(what == "replay store '" + file + "': in use by another replay guard or process");
    }
    SECTION("a Redis location that cannot be used") {
        const auto error_of = [](const std::string& location) {
            try {
                open_replay_store(location);
            } catch (const ConfigError& e) {
                return std::string(e.what());
            }
            return std::string("(no error)");
        };
        CHECK(error_of("redis://127.0.0.1:6379/x").rfind("replay store: Redis location 'redis://127.0.0.1:6379/x': ", 0) == 0);
        CHECK(error_of("rediss://:hunter2@127.0.0.1:6379") ==
              "replay store: TLS to Redis (rediss://) is not supported; use redis:// on a trusted network or a local "
              "TLS tunnel");
    }
}

TEST_CASE("a verifier confirms through its guard's store; without one confirm is free", "[replay_store]") {
    TempDir dir;
    const std::string file = dir.file("replay.db");
    auto keyring = std::make_shared<Keyring>();
    keyring->add_key("k", testutil::test_key(1));
    keyring->set_signing_key("k");
    VerifierOptions vo;
    vo.clock = [] { return now; };
    Signer signer(keyring, SignerOptions{vo.clock, std::nullopt, 1});
    const auto first = signer.sign("t", ByteView(std::string("one")));
    const auto second = signer.sign("t", ByteView(std::string("two")));
    {
        Verifier v(keyring, std::make_shared<ReplayGuard>(with_store(file)), vo);
        const VerifyResult r1 = v.verify("t", first);
        REQUIRE(r1.ok());
        CHECK(v.confirm(r1.message()));
        const VerifyResult r2 = v.verify("t", second);
        REQUIRE(r2.ok());  // reserved, never confirmed
    }
    Verifier v(keyring, std::make_shared<ReplayGuard>(with_store(file)), vo);
    CHECK(v.verify("t", first).reason() == RejectReason::replayed);
    CHECK(v.verify("t", second).ok());

    Verifier memory(keyring, nullptr, vo);
    const VerifyResult r = memory.verify("t", first);
    REQUIRE(r.ok());
    CHECK(memory.confirm(r.message()));
    CHECK(memory.replay_guard().store() == nullptr);
}
