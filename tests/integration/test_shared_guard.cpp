// SPDX-License-Identifier: Apache-2.0
// ReplayGuard over the shared Redis store (open_replay_store("redis://...")), through the public
// API, against the real servers run_redis_client_tests.py starts: verifiers sharing a store
// admit a message once between them; a reservation holds the others off until its commit or
// its lease's end; a store that does not answer holds a message up to store_hold_ms, then
// rejects it as replay_state_unavailable, and availability changes are reported once each.
#include "support/catch.hpp"
#include "support/redis_test_env.hpp"
#include "support/replay_position.hpp"

#include <securemqtt/errors.hpp>
#include <securemqtt/replay_guard.hpp>
#include <securemqtt/replay_store.hpp>

#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

using securemqtt::ConfigError;
using securemqtt::RejectReason;
using securemqtt::ReplayGuard;
using securemqtt::ReplayGuardOptions;
using securemqtt::StreamPosition;
using testutil::at;
using testutil::replay_now;
using namespace std::chrono_literals;

namespace {

std::string location(int port) { return "redis://127.0.0.1:" + std::to_string(port); }

// Key ids of their own per test, so that no test sees another's state on the shared servers.
std::string fresh_key(const std::string& what) {
    static std::mt19937_64 rnd{std::random_device{}()};
    return what + "-" + std::to_string(rnd());
}

ReplayGuardOptions shared(const std::string& where, std::int64_t lease_ms = 10000, std::int64_t hold_ms = 20000) {
    ReplayGuardOptions o;
    o.store = securemqtt::open_replay_store(where);
    o.store_lease_ms = lease_ms;
    o.store_hold_ms = hold_ms;
    return o;
}

}  // namespace

TEST_CASE("two verifiers on one store admit a message once between them") {
    const std::string where = location(testutil::env_port("SECUREMQTT_REDIS_SERVER"));
    ReplayGuard a(shared(where)), b(shared(where));
    const std::string key = fresh_key("once");
    for (std::uint64_t c = 1; c <= 50; ++c) {
        const StreamPosition p = at(c, 7, replay_now, key);
        ReplayGuard& first = c % 2 ? a : b;
        ReplayGuard& second = c % 2 ? b : a;
        REQUIRE_FALSE(first.admit(p, replay_now).has_value());
        REQUIRE(first.confirm(p));
        REQUIRE(second.admit(p, replay_now) == RejectReason::replayed);
        REQUIRE(first.admit(p, replay_now) == RejectReason::replayed);
    }
    CHECK(a.store_failures() == 0);
    CHECK(a.store_lease_overruns() + b.store_lease_overruns() == 0);
}

TEST_CASE("a copy arriving while another verifier holds the message waits for its commit, then is replayed") {
    const std::string where = location(testutil::env_port("SECUREMQTT_REDIS_SERVER"));
    ReplayGuard a(shared(where)), b(shared(where));
    const std::string key = fresh_key("held");  // outlives the position, which views it
    const StreamPosition p = at(1, 1, replay_now, key);
    REQUIRE_FALSE(a.admit(p, replay_now).has_value());
    std::atomic<bool> committed{false};
    auto copy = std::async(std::launch::async, [&] {
        const auto verdict = b.admit(p, replay_now);
        return std::make_pair(verdict, committed.load());
    });
    // Not decided while a holds it (bounded: the lease is 10 s, this waits 300 ms).
    REQUIRE(copy.wait_for(300ms) == std::future_status::timeout);
    committed = true;
    REQUIRE(a.confirm(p));
    const auto [verdict, after_commit] = copy.get();
    CHECK(verdict == RejectReason::replayed);
    CHECK(after_commit);
}

TEST_CASE("a verifier that never commits (it died) holds a message only for its lease; then another takes it") {
    const std::string where = location(testutil::env_port("SECUREMQTT_REDIS_SERVER"));
    ReplayGuard dead(shared(where, 300, 5000)), other(shared(where, 300, 5000));
    const std::string key = fresh_key("lease");  // outlives the position, which views it
    const StreamPosition p = at(5, 2, replay_now, key);
    REQUIRE_FALSE(dead.admit(p, replay_now).has_value());
    REQUIRE_FALSE(other.admit(p, replay_now).has_value());  // after the lease: at least once
    REQUIRE(other.confirm(p));
    // The "dead" one was only slow, and commits too.
    REQUIRE(dead.confirm(p));
    // Commits are pipelined: each verifier learns its commit's outcome with its next call, and
    // the two commits race on their own connections, so either may be the one that finds the
    // message recorded — but exactly one does: the message was delivered twice.
    CHECK(dead.admit(p, replay_now) == RejectReason::replayed);
    CHECK(other.admit(p, replay_now) == RejectReason::replayed);
    CHECK(dead.store_lease_overruns() + other.store_lease_overruns() == 1);
}

TEST_CASE("one verifier asked twice for a message it holds: the second copy is replayed at once") {
    const std::string where = location(testutil::env_port("SECUREMQTT_REDIS_SERVER"));
    ReplayGuard g(shared(where));
    const std::string key = fresh_key("self");  // outlives the position, which views it
    const StreamPosition p = at(1, 1, replay_now, key);
    REQUIRE_FALSE(g.admit(p, replay_now).has_value());
    CHECK(g.admit(p, replay_now) == RejectReason::replayed);
    REQUIRE(g.confirm(p));
    CHECK(g.admit(p, replay_now) == RejectReason::replayed);
}

TEST_CASE("freshness is still judged by the verifier, before the store") {
    const std::string where = location(testutil::env_port("SECUREMQTT_REDIS_SERVER"));
    ReplayGuard g(shared(where));
    const std::string key = fresh_key("fresh");
    CHECK(g.admit(at(1, 1, replay_now - 10 * 60 * 1000, key), replay_now) == RejectReason::too_old);
    CHECK(g.admit(at(2, 1, replay_now + 10 * 60 * 1000, key), replay_now) == RejectReason::from_future);
}

TEST_CASE("a retained state older than the newest recorded on its topic under the key id is replayed") {
    const std::string where = location(testutil::env_port("SECUREMQTT_REDIS_SERVER"));
    ReplayGuard g(shared(where));
    const std::string key = fresh_key("retained");
    StreamPosition unlock = at(1, 1, replay_now - 1000, key), lock = at(1, 2, replay_now, key);
    for (StreamPosition* p : {&unlock, &lock}) {
        p->topic = "devices/door";
        p->signed_retained = true;
    }
    REQUIRE_FALSE(g.admit(lock, replay_now).has_value());
    REQUIRE(g.confirm(lock));
    CHECK(g.admit(unlock, replay_now) == RejectReason::replayed);  // another stream, older state
}

TEST_CASE("the store settings are checked") {
    const std::string where = location(testutil::env_port("SECUREMQTT_REDIS_SERVER"));
    CHECK_THROWS_AS(ReplayGuard(shared(where, 1000, 1000)), ConfigError);
    CHECK_THROWS_AS(ReplayGuard(shared(where, 0, 1000)), ConfigError);
    CHECK_THROWS_AS(securemqtt::open_replay_store("redis://127.0.0.1:6379/not-a-db"), ConfigError);
}

TEST_CASE("a store that does not answer: held up to store_hold_ms, then replay_state_unavailable; reported once each way") {
    const std::string where = location(testutil::env_port("SECUREMQTT_REDIS_FAULTY"));
    ReplayGuardOptions o = shared(where, 200, 1500);
    std::mutex m;
    std::vector<bool> reports;
    o.on_store_availability = [&](bool available, std::string_view) {
        std::lock_guard<std::mutex> lock(m);
        reports.push_back(available);
    };
    ReplayGuard g(o);
    const std::string key = fresh_key("outage");
    REQUIRE_FALSE(g.admit(at(1, 1, replay_now, key), replay_now).has_value());
    REQUIRE(g.confirm(at(1, 1, replay_now, key)));

    testutil::control("stop");
    const auto verdict = g.admit(at(2, 1, replay_now, key), replay_now);
    const auto second = g.admit(at(3, 1, replay_now, key), replay_now);
    testutil::control("continue");
    CHECK(verdict == RejectReason::replay_state_unavailable);
    CHECK(second == RejectReason::replay_state_unavailable);

    // Served again: counter 2 was never admitted, so it is now; counter 1 stays replayed.
    REQUIRE_FALSE(g.admit(at(2, 1, replay_now, key), replay_now).has_value());
    REQUIRE(g.confirm(at(2, 1, replay_now, key)));
    CHECK(g.admit(at(1, 1, replay_now, key), replay_now) == RejectReason::replayed);
    std::lock_guard<std::mutex> lock(m);
    CHECK(reports == std::vector<bool>{false, true});
}

TEST_CASE("cluster: two verifiers on different nodes' addresses admit each of many key ids' messages once") {
    const auto ports = testutil::cluster_ports();
    ReplayGuard a(shared(location(ports[0]))), b(shared(location(ports[2])));
    for (int k = 0; k < 60; ++k) {
        const std::string key = fresh_key("cluster-" + std::to_string(k));
        const StreamPosition p = at(1, 1, replay_now, key);
        ReplayGuard& first = k % 2 ? a : b;
        ReplayGuard& second = k % 2 ? b : a;
        REQUIRE_FALSE(first.admit(p, replay_now).has_value());
        REQUIRE(first.confirm(p));
        REQUIRE(second.admit(p, replay_now) == RejectReason::replayed);
    }
}
