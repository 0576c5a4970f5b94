// SPDX-License-Identifier: Apache-2.0
#include "support/catch.hpp"
#include "support/replay_position.hpp"

#include <securemqtt/replay_guard.hpp>

#include <atomic>
#include <limits>
#include <thread>
#include <vector>

using namespace securemqtt;

namespace {

constexpr std::int64_t now = testutil::replay_now;
using testutil::at;

bool admitted(ReplayGuard& g, const StreamPosition& p, std::int64_t t = now) { return !g.admit(p, t).has_value(); }

}  // namespace

TEST_CASE("each counter of a stream is admitted once", "[replay]") {
    ReplayGuard g;
    CHECK(admitted(g, at(1)));
    CHECK(g.admit(at(1), now) == RejectReason::replayed);
    CHECK(admitted(g, at(2)));
    CHECK(admitted(g, at(10)));
    CHECK(admitted(g, at(5)));  // late but inside the window
    CHECK(g.admit(at(5), now) == RejectReason::replayed);
    CHECK(g.admit(at(10), now) == RejectReason::replayed);
    CHECK(admitted(g, at(9)));
}

TEST_CASE("counters behind the window are rejected as replayed", "[replay]") {
    ReplayGuardOptions o;
    o.window_size = 64;
    ReplayGuard g(o);
    CHECK(admitted(g, at(100)));
    CHECK(admitted(g, at(37)));                         // 100 - 63: the oldest in the window
    CHECK(g.admit(at(36), now) == RejectReason::replayed);  // 100 - 64: just outside
    CHECK(admitted(g, at(100 + 64 * 3)));               // a jump clears the whole bitmap
    CHECK(admitted(g, at(100 + 64 * 3 - 1)));
    CHECK(g.admit(at(100), now) == RejectReason::replayed);
}

TEST_CASE("the window slides correctly across word and ring boundaries", "[replay]") {
    // 128 and 1024 take the power-of-two path, 192 and 320 the general one.
    const std::size_t window = GENERATE(as<std::size_t>{}, 128, 192, 320, 1024);
    ReplayGuardOptions o;
    o.window_size = window;
    ReplayGuard g(o);
    // Admit every third counter up to 3000, then every counter in the window must be judged
    // exactly: seen ones replayed, unseen ones admitted once.
    for (std::uint64_t c = 1; c <= 3000; c += 3) REQUIRE(admitted(g, at(c)));
    for (std::uint64_t c = 3000 - (window - 1); c <= 3000; ++c) {
        INFO("window " << window << ", counter " << c);
        if ((c - 1) % 3 == 0) {
            CHECK(g.admit(at(c), now) == RejectReason::replayed);
        } else {
            CHECK(admitted(g, at(c)));
        }
    }
    CHECK(g.admit(at(3000 - window), now) == RejectReason::replayed);
}

TEST_CASE("the largest counter is handled without overflow", "[replay]") {
    ReplayGuard g;
    const std::uint64_t max = ~std::uint64_t{0};
    CHECK(admitted(g, at(max - 5)));
    CHECK(admitted(g, at(max)));
    CHECK(g.admit(at(max), now) == RejectReason::replayed);
    CHECK(admitted(g, at(max - 1)));
}

TEST_CASE("streams and key ids are tracked separately", "[replay]") {
    ReplayGuard g;
    CHECK(admitted(g, at(1, 1)));
    CHECK(admitted(g, at(1, 2)));
    CHECK(admitted(g, at(1, 1, now, "other")));
    CHECK(g.tracked_streams() == 3);
    // The same stream id under two key ids, alternating (the last stream seen is looked up
    // first): each is its own stream.
    CHECK(admitted(g, at(2, 7, now, "a")));
    CHECK(admitted(g, at(2, 7, now, "b")));
    CHECK(g.admit(at(2, 7, now, "b"), now) == RejectReason::replayed);
    CHECK(g.admit(at(2, 7, now, "a"), now) == RejectReason::replayed);
    CHECK(admitted(g, at(3, 7, now, "a")));
    CHECK(g.tracked_streams() == 5);
}

TEST_CASE("freshness: too old and from the future, at the exact edges", "[replay]") {
    ReplayGuard g;  // 5 min age, 60 s skew
    CHECK(admitted(g, at(1, 1, now - 300000)));
    CHECK(g.admit(at(2, 1, now - 300001), now) == RejectReason::too_old);
    CHECK(admitted(g, at(3, 1, now + 60000)));
    CHECK(g.admit(at(4, 1, now + 60001), now) == RejectReason::from_future);
    // A rejected timestamp does not consume the counter.
    CHECK(admitted(g, at(2, 1, now)));
    // Extreme values do not overflow.
    CHECK(g.admit(at(5, 1, 0), std::numeric_limits<std::int64_t>::max()) == RejectReason::too_old);
    CHECK(g.admit(at(5, 1, std::numeric_limits<std::int64_t>::max()), 0) == RejectReason::from_future);
}

TEST_CASE("retained messages follow the retained policy", "[replay]") {
    auto old = at(1, 1, now - 3600 * 1000);
    old.retained = true;
    ReplayGuard allow;  // allow_older, 24 h
    CHECK(admitted(allow, old));
    auto ancient = at(2, 1, now - 25 * 3600 * 1000LL);
    ancient.retained = true;
    CHECK(allow.admit(ancient, now) == RejectReason::too_old);

    ReplayGuardOptions o;
    o.retained_policy = RetainedPolicy::same_as_live;
    ReplayGuard strict(o);
    CHECK(strict.admit(old, now) == RejectReason::too_old);
}

TEST_CASE("a max_retained_age below max_age never makes a retained message stricter than a live one",
          "[replay]") {
    ReplayGuardOptions o;
    o.max_retained_age_ms = 60 * 1000;  // below the 5 minute max_age
    ReplayGuard g(o);
    auto retained = at(1, 1, now - 120 * 1000);
    retained.retained = true;
    CHECK(admitted(g, retained));  // judged by the larger limit, as the same bytes delivered live
    auto beyond = at(2, 1, now - 300001);
    beyond.retained = true;
    CHECK(g.admit(beyond, now) == RejectReason::too_old);
}

TEST_CASE("eviction keeps memory bounded and never reopens a replay", "[replay]") {
    ReplayGuardOptions o;
    o.max_streams_per_key = 4;
    ReplayGuard g(o);
    // Stream 1 is the oldest; four more streams evict it while its message is still fresh.
    CHECK(admitted(g, at(7, 1, now - 1000)));
    for (std::uint64_t s = 2; s <= 5; ++s) CHECK(admitted(g, at(1, s, now - 1000 + static_cast<std::int64_t>(s))));
    CHECK(g.tracked_streams() == 4);
    CHECK(g.evictions() == 1);
    // The replay of stream 1's message is still rejected...
    CHECK(g.admit(at(7, 1, now - 1000), now) == RejectReason::replayed);
    // ...as is any new stream no newer than what was evicted...
    CHECK(g.admit(at(1, 99, now - 1000), now) == RejectReason::replayed);
    // ...while genuinely new messages, from new or forgotten streams, get through.
    CHECK(admitted(g, at(8, 1, now)));
    CHECK(admitted(g, at(1, 100, now)));
    CHECK(g.tracked_streams() == 4);
}

TEST_CASE("evicting streams idle beyond the age limit costs new streams nothing", "[replay]") {
    ReplayGuardOptions o;
    o.max_streams_per_key = 2;
    ReplayGuard g(o);
    CHECK(admitted(g, at(1, 1, now - 1000), now - 1000));
    CHECK(admitted(g, at(1, 2, now - 900), now - 900));
    const std::int64_t later = now + 10 * 60 * 1000;  // both idle for ten minutes
    CHECK(admitted(g, at(1, 3, later - 5000), later));
    CHECK(admitted(g, at(1, 4, later - 250000), later));  // old-ish clock, still admitted
}

TEST_CASE("memory per tracked stream is a few hundred bytes with the default window", "[replay]") {
    ReplayGuard g;
    INFO("bytes per stream: " << g.bytes_per_stream() << ", per key: " << g.bytes_per_key());
    CHECK(g.bytes_per_stream() >= 1024 / 8);
    CHECK(g.bytes_per_stream() <= 400);
    CHECK(g.bytes_per_key() <= 400);
    // The documented bound: max_keys * (per key + max_streams_per_key * per stream).
    CHECK(g.max_memory_bytes() == 1024 * (g.bytes_per_key() + 1024 * g.bytes_per_stream()));
    CHECK(g.max_memory_bytes() <= std::size_t{300} << 20);
}

TEST_CASE("each key id has its own stream quota, eviction and watermark", "[replay][isolation]") {
    ReplayGuardOptions o;
    o.max_streams_per_key = 2;
    ReplayGuard g(o);
    CHECK(admitted(g, at(1, 1, now - 3000, "a")));
    CHECK(admitted(g, at(1, 2, now - 2000, "a")));
    CHECK(admitted(g, at(1, 1, now - 3000, "b")));
    CHECK(admitted(g, at(1, 3, now - 1000, "a")));  // evicts a's stream 1, not b's
    CHECK(g.evictions() == 1);
    CHECK(g.tracked_streams("a") == 2);
    CHECK(g.tracked_streams("b") == 1);
    CHECK(g.admit(at(1, 9, now - 3000, "a"), now) == RejectReason::replayed);  // a's watermark
    CHECK(admitted(g, at(1, 9, now - 3000, "b")));                             // not b's
    CHECK(admitted(g, at(2, 1, now - 3000, "b")));                             // b's stream 1 kept
}

TEST_CASE("beyond max_keys the least recently used key id is forgotten and its replays stay closed",
          "[replay]") {
    ReplayGuardOptions o;
    o.max_keys = 2;
    ReplayGuard g(o);
    CHECK(admitted(g, at(1, 1, now - 3000, "a")));
    CHECK(admitted(g, at(1, 2, now - 2000, "b")));
    CHECK(g.admit(at(1, 1, now - 3000, "a"), now) == RejectReason::replayed);  // not a use of "a"
    CHECK(admitted(g, at(1, 3, now - 1000, "c")));  // forgets "a", the least recently admitted
    CHECK(g.tracked_keys() == 2);
    CHECK(g.key_evictions() == 1);
    CHECK(g.tracked_streams("a") == 0);
    CHECK(g.admit(at(1, 1, now - 3000, "a"), now) == RejectReason::replayed);
    // "a" tracked afresh starts from the forgotten keys' floor: its old message stays replayed.
    CHECK(admitted(g, at(1, 5, now - 2500, "a")));
    CHECK(g.admit(at(1, 1, now - 3000, "a"), now) == RejectReason::replayed);
    CHECK(g.tracked_streams() <= 2);
}

TEST_CASE("out-of-range options are refused", "[replay]") {
    ReplayGuardOptions o;
    o.window_size = 100;
    CHECK_THROWS_AS(ReplayGuard(o), ConfigError);
    o.window_size = 0;
    CHECK_THROWS_AS(ReplayGuard(o), ConfigError);
    o.window_size = 65536 + 64;
    CHECK_THROWS_AS(ReplayGuard(o), ConfigError);
    o = {};
    o.max_streams_per_key = 0;
    CHECK_THROWS_AS(ReplayGuard(o), ConfigError);
    o = {};
    o.max_keys = 0;
    CHECK_THROWS_AS(ReplayGuard(o), ConfigError);
    o = {};
    o.max_keys = std::numeric_limits<std::size_t>::max() / 2;  // a memory bound that overflows
    CHECK_THROWS_AS(ReplayGuard(o), ConfigError);
    o = {};
    o.max_streams_per_key = std::numeric_limits<std::size_t>::max();
    CHECK_THROWS_AS(ReplayGuard(o), ConfigError);
    o = {};
    o.max_age_ms = -1;
    CHECK_THROWS_AS(ReplayGuard(o), ConfigError);
}

TEST_CASE("the memory bound fits the address space, also on 32-bit targets", "[replay]") {
    // 480,000 streams of window 65536 (8 KiB of bits each): ~3.8 GiB. Beyond half of a 32-bit
    // address space, so refused there, naming window_size; nothing is allocated up front, so a
    // 64-bit process takes it.
    ReplayGuardOptions o;
    o.window_size = 65536;
    o.max_keys = 1;
    o.max_streams_per_key = 480000;
    if (sizeof(void*) < 8) {
        CHECK_THROWS_WITH(ReplayGuard(o), Catch::Contains("streams of window_size 65536 (1 * 480000") &&
                                              Catch::Contains("cannot fit this process's memory (2047 MiB)"));
    } else {
        CHECK_NOTHROW(ReplayGuard(o));
    }
    // The defaults fit everywhere (~240 MiB at most on 32-bit targets).
    CHECK_NOTHROW(ReplayGuard(ReplayGuardOptions{}));
}

TEST_CASE("concurrent admits accept each counter exactly once", "[replay][threads]") {
    ReplayGuard g;
    constexpr std::size_t counters = 20000;
    std::vector<std::atomic<int>> hits(counters + 1);
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&] {
            for (std::size_t c = 1; c <= counters; ++c) {
                if (admitted(g, at(c, 1 + c % 3))) hits[c].fetch_add(1);
            }
        });
    }
    for (auto& t : threads) t.join();
    // Each thread offers counters in increasing order, so the first offer of any counter finds
    // its stream below it: every counter is admitted by exactly one thread.
    std::uint64_t wrong = 0;
    for (std::size_t c = 1; c <= counters; ++c) wrong += hits[c].load() == 1 ? 0u : 1u;
    CHECK(wrong == 0);
}

TEST_CASE("a key flooding streams stamped ahead changes nothing for another key", "[replay][isolation]") {
    // The flooding key holds a valid key scoped to its own topics: 10,001 fresh streams stamped
    // 59 s ahead (inside the skew), then 200 new streams a second for ten simulated minutes.
    // The victim sends one message a second and restarts (a new stream) half-way.
    ReplayGuard g;
    constexpr std::int64_t ahead = 59000;
    std::uint64_t next_flood_stream = 1000000;
    const auto flood = [&](std::int64_t t, int streams) {
        // Past its own quota the flooder's same-timestamp streams fail its own watermark: its
        // problem alone.
        for (int i = 0; i < streams; ++i) (void)g.admit(at(1, next_flood_stream++, t + ahead, "flooder"), t);
    };
    int victim_accepted = 0;
    const auto victim_sends = [&](std::int64_t second) {
        const std::int64_t t = now + second * 1000;
        const std::uint64_t stream = second < 300 ? 7 : 8;  // restarted at 300 s
        const std::uint64_t counter = static_cast<std::uint64_t>(second < 300 ? second + 1 : second - 299);
        if (admitted(g, at(counter, stream, t, "victim"), t)) ++victim_accepted;
    };

    victim_sends(0);
    const std::uint64_t first_flood_stream = next_flood_stream;
    flood(now, 10001);
    for (std::int64_t second = 1; second < 600; ++second) {
        const std::int64_t t = now + second * 1000;
        flood(t, 200);
        victim_sends(second);
        if (second == 30) {
            // The first wave is long evicted, its messages still fresh: none may come back.
            int replayed = 0;
            for (std::uint64_t s = first_flood_stream; s < first_flood_stream + 100; ++s) {
                replayed += g.admit(at(1, s, now + ahead, "flooder"), t) == RejectReason::replayed ? 1 : 0;
            }
            CHECK(replayed == 100);
        }
    }
    CHECK(victim_accepted == 600);
    CHECK(g.tracked_streams("flooder") <= g.options().max_streams_per_key);
    CHECK(g.tracked_streams("victim") == 2);

    // Streams the flooder opened ten seconds ago are evicted by now and still fresh.
    const std::int64_t end = now + 599 * 1000;
    const std::uint64_t recent = next_flood_stream - 200 * 10;
    int replayed = 0;
    for (std::uint64_t s = recent; s < recent + 100; ++s) {
        replayed += g.admit(at(1, s, end - 10 * 1000 + ahead, "flooder"), end) == RejectReason::replayed ? 1 : 0;
    }
    CHECK(replayed == 100);
}

TEST_CASE("a re-injected copy of a stream's message does not save it from eviction", "[replay]") {
    ReplayGuardOptions o;
    o.max_streams_per_key = 2;
    ReplayGuard g(o);
    REQUIRE(admitted(g, at(1, 1, now - 2000)));
    REQUIRE(admitted(g, at(1, 2, now - 1000)));
    // Anyone can re-inject a copy of stream 1's message: it is rejected, and is not a "use".
    CHECK(g.admit(at(1, 1, now - 2000), now) == RejectReason::replayed);
    REQUIRE(admitted(g, at(1, 3, now)));  // evicts the least recently admitted: stream 1
    // Stream 2 is still tracked, so its next counter is judged by its own window.
    CHECK(admitted(g, at(2, 2, now - 1000)));
    CHECK(g.admit(at(1, 1, now - 2000), now) == RejectReason::replayed);
}
