// SPDX-License-Identifier: Apache-2.0
#include "shared_admission.hpp"

#include "bounded_wait.hpp"

#include <openssl/rand.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <thread>

namespace securemqtt::detail {
namespace {

// Unique per guard among every verifier sharing the store: 128 random bits.
std::string random_holder() {
    unsigned char bytes[16];
    if (RAND_bytes(bytes, sizeof bytes) != 1) {
        throw ConfigError("replay guard: OpenSSL's random generator failed; cannot draw a reservation holder id");
    }
    std::string out;
    char hex[3];
    for (unsigned char b : bytes) {
        std::snprintf(hex, sizeof hex, "%02x", b);
        out += hex;
    }
    return out;
}

// State outlives its last use by this much beyond the longest acceptable age: the future skew,
// the longest a message can wait for the store, its lease, and a minute for clocks.
constexpr std::int64_t expiry_margin_ms = 60 * 1000;

}  // namespace

SharedAdmission::SharedAdmission(const ReplayGuardOptions& options, std::shared_ptr<ReplayStore> store)
    : options_(options), store_(std::move(store)), holder_(random_holder()) {
    if (options.store_lease_ms < 1) throw ConfigError("replay guard: store_lease_ms must be at least 1");
    if (options.store_hold_ms <= options.store_lease_ms) {
        throw ConfigError("replay guard: store_hold_ms (" + std::to_string(options.store_hold_ms) +
                          ") must exceed store_lease_ms (" + std::to_string(options.store_lease_ms) +
                          "), or a message reserved by a verifier that died would be rejected, not taken over");
    }
    constexpr std::int64_t limit = std::int64_t{1} << 52;  // exact in the store's doubles
    if (options.max_age_ms > limit || options.max_retained_age_ms > limit || options.max_future_skew_ms > limit ||
        options.store_hold_ms > limit) {
        throw ConfigError("replay guard: ages, skew and hold must be below 2^52 ms with a shared store");
    }
}

ReplayStore::SharedRules SharedAdmission::rules_for(const StreamPosition& pos) const noexcept {
    ReplayStore::SharedRules r;
    r.window_size = options_.window_size;
    r.max_streams_per_key = options_.max_streams_per_key;
    std::int64_t age = std::max(options_.max_age_ms, options_.max_retained_age_ms);
    if (pos.max_age_ms) age = std::max(age, std::min<std::int64_t>(*pos.max_age_ms, std::int64_t{1} << 52));
    r.expiry_ms = age + options_.max_future_skew_ms + options_.store_hold_ms + options_.store_lease_ms + expiry_margin_ms;
    r.lease_ms = options_.store_lease_ms;
    r.holder = holder_;
    return r;
}

void SharedAdmission::note(bool available) noexcept {
    // One lock over the change and its report, so that threads noticing at once report the
    // changes in the order they happened.
    std::lock_guard<std::mutex> lock(note_mutex_);
    if (available_ == available) return;
    available_ = available;
    if (!options_.on_store_availability) return;
    try {
        options_.on_store_availability(available, available ? "answering again" : "not answering");
    } catch (...) {  // a notification must not decide a message
    }
}

template <typename Ask>
std::optional<ReplayStore::Answer> SharedAdmission::decide(Ask ask) noexcept {
    using clock = std::chrono::steady_clock;
    const auto deadline = deadline_after(std::chrono::milliseconds(options_.store_hold_ms));  // saturates
    std::int64_t backoff_ms = 5;
    for (;;) {
        const ReplayStore::Answer answer = ask();
        std::int64_t wait_ms = 0;
        if (answer.verdict == ReplayStore::Verdict::unavailable) {
            note(false);
            wait_ms = backoff_ms;
            backoff_ms = std::min<std::int64_t>(backoff_ms * 2, 500);
        } else {
            note(true);
            if (answer.verdict != ReplayStore::Verdict::in_flight) return answer;
            // Another verifier holds it: ask again when its lease ends, sooner if it confirms.
            wait_ms = std::clamp<std::int64_t>(answer.retry_after_ms, 1, 100);
        }
        const auto now = clock::now();
        if (now >= deadline) return std::nullopt;
        std::this_thread::sleep_for(std::min<clock::duration>(deadline - now, std::chrono::milliseconds(wait_ms)));
    }
}

void SharedAdmission::forget(const Id& id) noexcept {
    std::lock_guard<std::mutex> lock(mutex_);
    in_flight_.erase(id);
}

std::optional<RejectReason> SharedAdmission::admit(const StreamPosition& pos) noexcept {
    Id id;
    try {
        id = Id(std::string(pos.key_id), pos.stream_id, pos.counter);
        std::lock_guard<std::mutex> lock(mutex_);
        if (!in_flight_.insert(id).second) return RejectReason::replayed;  // this process has it
    } catch (...) {  // bad_alloc: fail closed
        return RejectReason::replayed;
    }
    const ReplayStore::SharedRules rules = rules_for(pos);
    const auto answer = decide([&] { return store_->reserve(pos, rules); });
    if (answer && answer->verdict == ReplayStore::Verdict::admitted) return std::nullopt;  // stays in flight
    forget(id);
    return answer ? RejectReason::replayed : RejectReason::replay_state_unavailable;
}

bool SharedAdmission::confirm(const StreamPosition& pos) noexcept {
    const ReplayStore::SharedRules rules = rules_for(pos);
    // Waits like admit(): the broker is not acknowledged meanwhile, so a crash here still gets
    // the message redelivered.
    // A commit that got no answer may have been carried out: `replayed` after one is our own.
    bool unanswered = false;
    const auto answer = decide([&] {
        const ReplayStore::Answer a = store_->commit(pos, rules);
        if (a.verdict == ReplayStore::Verdict::unavailable) unanswered = true;
        return a;
    });
    try {
        forget(Id(std::string(pos.key_id), pos.stream_id, pos.counter));
    } catch (...) {  // bad_alloc: the entry stays; a copy of this message is then `replayed` here
    }
    if (!answer) {
        failures_.fetch_add(1, std::memory_order_relaxed);
        return false;
    }
    if (answer->verdict == ReplayStore::Verdict::replayed && !unanswered) lease_overruns_.fetch_add(1, std::memory_order_relaxed);
    return true;
}

}  // namespace securemqtt::detail
