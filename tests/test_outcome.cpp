// SPDX-License-Identifier: Apache-2.0
// Completion: one outcome, once; waiting and callbacks from any thread.
#include "support/catch.hpp"

#include "bounded_wait.hpp"
#include "completion.hpp"

#include <atomic>
#include <climits>
#include <cstdint>
#include <ctime>
#include <thread>
#include <vector>

using namespace securemqtt;

TEST_CASE("a completion completes once: waiters and callbacks see that outcome", "[outcome]") {
    auto [completion, state] = detail::CompletionAccess::make();
    CHECK_FALSE(completion.done());
    CHECK_FALSE(completion.wait_for(std::chrono::milliseconds(1)).has_value());
    std::atomic<int> calls{0};
    std::vector<int> order;
    completion.then([&](const Outcome& o) {
        order.push_back(1);
        if (o.status == OutcomeStatus::refused) ++calls;
    });
    completion.then([&](const Outcome&) { order.push_back(2); });
    completion.then([&](const Outcome&) { throw std::runtime_error("a callback's exception is ignored"); });
    const Completion copy = completion;  // shares the outcome
    std::thread completer([s = state] {
        CHECK(s->complete(Outcome{OutcomeStatus::refused, ReasonCode::quota_exceeded, "quota"}));
        CHECK_FALSE(s->complete(Outcome{}));  // the first outcome stands
    });
    const Outcome waited = copy.wait();
    completer.join();
    CHECK(waited.status == OutcomeStatus::refused);
    CHECK(waited.reason == ReasonCode::quota_exceeded);
    CHECK_FALSE(waited);
    CHECK(completion.done());
    CHECK(calls == 1);
    CHECK(order == std::vector<int>{1, 2});
    completion.then([&](const Outcome& o) { calls += o.reason == ReasonCode::quota_exceeded ? 10 : 100; });
    CHECK(calls == 11);  // at once, on this thread
}

TEST_CASE("a default completion is a success already, and so is a moved-from one", "[outcome]") {
    Completion done;
    CHECK(done.done());
    CHECK(done.wait().ok());
    auto [pending, state] = detail::CompletionAccess::make();
    const Completion moved_to = std::move(pending);
    CHECK(pending.done());  // NOLINT(bugprone-use-after-move): what a moved-from one does
    CHECK(pending.wait_for(std::chrono::milliseconds(0))->ok());
    CHECK_FALSE(moved_to.done());
    state->complete(Outcome{OutcomeStatus::failed, ReasonCode::success, "x"});
    CHECK(moved_to.wait().status == OutcomeStatus::failed);
}

TEST_CASE("a callback added while the outcome's callbacks run queues behind them", "[outcome]") {
    auto [completion, state] = detail::CompletionAccess::make();
    std::vector<int> order;
    const Completion c = completion;
    completion.then([&order, c](const Outcome&) {
        order.push_back(1);
        c.then([&order](const Outcome&) { order.push_back(3); });  // added while 1 and 2 run
    });
    completion.then([&order](const Outcome&) { order.push_back(2); });
    CHECK(state->complete(Outcome{}));
    CHECK(order == std::vector<int>{1, 2, 3});
    completion.then([&order](const Outcome&) { order.push_back(4); });  // after: at once
    CHECK(order == std::vector<int>{1, 2, 3, 4});
}

TEST_CASE("once the outcome is known, a then() from another thread runs at once there, even while the "
          "completing thread still runs earlier callbacks", "[outcome]") {
    auto [completion, state] = detail::CompletionAccess::make();
    std::atomic<bool> release{false};
    std::atomic<bool> first_started{false};
    completion.then([&](const Outcome&) {
        first_started = true;
        // Holds the completing thread until the main thread's then() has run (bounded).
        for (int i = 0; i < 3000 && !release; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    });
    std::thread completer([s = state] { s->complete(Outcome{}); });
    CHECK(completion.wait().ok());
    std::thread::id ran_on;
    completion.then([&ran_on](const Outcome&) { ran_on = std::this_thread::get_id(); });
    CHECK(ran_on == std::this_thread::get_id());
    release = true;
    completer.join();
    CHECK(first_started);
}

TEST_CASE("deadlines saturate, and token waits go in steps of at most a day", "[outcome]") {
    using clock = std::chrono::steady_clock;
    CHECK(detail::deadline_after(std::chrono::milliseconds::max()) == clock::time_point::max());
    const auto past = detail::deadline_after(std::chrono::milliseconds(-1));
    CHECK(past <= clock::now());
    // A token that completes on its third wait: every wait asked of it is positive and at most
    // a day, also for a timeout "for ever" (a plain wait_for(max) returns false at once).
    struct Token {
        std::vector<std::chrono::milliseconds> asked;
        bool wait_for(std::chrono::milliseconds t) {
            asked.push_back(t);
            return asked.size() == 3;
        }
    } token;
    CHECK(detail::wait_token(token, std::chrono::milliseconds::max()));
    REQUIRE(token.asked.size() == 3);
    for (const auto t : token.asked) CHECK(t == std::chrono::hours(24));
    Token quick;
    CHECK_FALSE(detail::wait_token(quick, std::chrono::milliseconds(0)));
    CHECK(quick.asked.size() == 1);
}

TEST_CASE("wait_for for ever waits", "[outcome]") {
    auto [completion, state] = detail::CompletionAccess::make();
    std::thread completer([s = state] {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        s->complete(Outcome{OutcomeStatus::refused, ReasonCode::not_authorized, "no"});
    });
    const std::optional<Outcome> o = completion.wait_for(std::chrono::milliseconds::max());
    completer.join();
    REQUIRE(o.has_value());
    CHECK(o->reason == ReasonCode::not_authorized);
}

TEST_CASE("a wait decades long sleeps, it does not spin", "[outcome]") {
    // seconds(INT32_MAX) ends ~68 years ahead: past a 32-bit time_t, where libstdc++'s wait would
    // return at once, over and over. The waiting thread's CPU time tells a sleep from a spin.
    auto [completion, state] = detail::CompletionAccess::make();
    std::atomic<bool> waiting{false};
    std::atomic<std::int64_t> cpu_ns{-1};
    std::thread waiter([&, c = completion] {
        timespec start{}, end{};
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &start);
        waiting = true;
        const bool got = c.wait_for(std::chrono::seconds(INT32_MAX)).has_value();
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &end);
        if (got) cpu_ns = (std::int64_t{end.tv_sec} - start.tv_sec) * 1000000000 + (end.tv_nsec - start.tv_nsec);
    });
    while (!waiting) std::this_thread::yield();
    // Wall time for a spin to show: at least 300 ms of it, however slow the machine.
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    CHECK(state->complete(Outcome{}));
    waiter.join();
    REQUIRE(cpu_ns >= 0);
    // A sleeping waiter uses microseconds; a spinning one burns most of the 300 ms.
    CHECK(cpu_ns < 100 * 1000 * 1000);
}

TEST_CASE("a callback may wait on its own completion: it does not wait for itself", "[outcome]") {
    auto [completion, state] = detail::CompletionAccess::make();
    const Completion c = completion;
    bool waited = false;
    completion.then([&waited, c](const Outcome&) {
        waited = c.wait_for(std::chrono::seconds(30)).has_value();
        (void)c.wait();
    });
    CHECK(state->complete(Outcome{}));
    CHECK(waited);
}
