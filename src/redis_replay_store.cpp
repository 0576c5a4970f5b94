// SPDX-License-Identifier: Apache-2.0
#include "redis_replay_store.hpp"

#include "redis_client.hpp"
#include "redis_scripts.hpp"

#include <securemqtt/errors.hpp>

#include <chrono>
#include <cstdio>
#include <deque>
#include <vector>
#include <mutex>

namespace securemqtt::detail {
namespace {

// How long one call may take before the store counts as not answering (the guard then asks
// again, within its store_hold_ms).
constexpr std::chrono::milliseconds call_timeout{1000};

std::string hex16(std::uint64_t v) {
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
    return buf;
}

// Every key of one key id shares the hash tag {hex(key id)}: one cluster slot, so each script
// stays atomic in a Redis Cluster.
std::string key_prefix(std::string_view key_id) {
    static const char digits[] = "0123456789abcdef";
    std::string p = "securemqtt:{";
    for (const char ch : key_id) {
        const auto c = static_cast<unsigned char>(ch);
        p += digits[c >> 4];
        p += digits[c & 15];
    }
    p += "}:";
    return p;
}

// Commits are pipelined: commit() sends the script and returns; its answer comes back with the
// next reservation's, in the same round trip. So a message costs one round trip, not two, and
// its commit is written to Redis before the MQTT acknowledgement all the same.
class RedisReplayStore final : public ReplayStore {
public:
    explicit RedisReplayStore(RedisLocation where) : client_(std::move(where), call_timeout) {
        reserve_ = client_.add_script(std::string(redis_script("replay_reserve")));
        commit_ = client_.add_script(std::string(redis_script("replay_admit")));
    }

    ~RedisReplayStore() override {
        // Reads what is still unanswered, and tries once more what got no answer.
        try {
            std::lock_guard<std::mutex> lock(mutex_);
            exchange({});
            retry_unsettled();
            failures_ += unsettled_.size();
        } catch (...) {  // bad_alloc: nothing more to do
        }
    }

    const std::string& location() const noexcept override { return client_.location().text; }
    bool shared() const noexcept override { return true; }

    // The mirror contract does not apply: the guard never calls these on a shared store.
    StoredReplayState load() override { return {}; }
    bool save_stream(const StoredStream&) noexcept override { return false; }
    bool erase_stream(std::string_view, std::uint64_t, std::int64_t) noexcept override { return false; }
    bool erase_key(std::string_view, std::int64_t) noexcept override { return false; }
    bool save_retained(std::string_view, std::int64_t) noexcept override { return false; }

    Answer reserve(const StreamPosition& pos, const SharedRules& rules) noexcept override {
        try {
            const std::string p = key_prefix(pos.key_id);
            const std::string s = hex16(pos.stream_id);
            const std::string c = hex16(pos.counter);
            RedisScriptCall call;
            call.script = reserve_;
            call.keys = {p + "m:" + s, p + "b:" + s, p + "wm", p + "r:" + s + ":" + c};
            if (pos.signed_retained) call.keys.push_back(p + "rt:" + std::string(pos.topic));
            call.args = {c, std::to_string(pos.timestamp_ms), std::to_string(rules.window_size),
                         std::string(rules.holder), std::to_string(rules.lease_ms)};
            std::lock_guard<std::mutex> lock(mutex_);
            // Every earlier commit must be in before a reservation is judged: a copy of a
            // message whose commit got lost would otherwise find only its (own) reservation.
            if (!retry_unsettled()) return {};
            RedisReply r = exchange({call}).front();
            if (!unsettled_.empty()) {  // a commit sent before this call got no answer
                if (!retry_unsettled()) return {};
                r = exchange({call}).front();
                if (!unsettled_.empty()) return {};
            }
            if (r.kind != RedisReply::Kind::integer) return {};
            if (r.integer == 0) return {Verdict::admitted, 0};
            if (r.integer == 1) return {Verdict::replayed, 0};
            if (r.integer < 0) return {Verdict::in_flight, -r.integer};
        } catch (...) {  // bad_alloc
        }
        return {};
    }

    Answer commit(const StreamPosition& pos, const SharedRules& rules) noexcept override {
        try {
            const std::string p = key_prefix(pos.key_id);
            const std::string s = hex16(pos.stream_id);
            const std::string c = hex16(pos.counter);
            RedisScriptCall call;
            call.script = commit_;
            call.keys = {p + "m:" + s, p + "b:" + s, p + "lru", p + "wm", p + "seq", p + "r:" + s + ":" + c};
            if (pos.signed_retained) call.keys.push_back(p + "rt:" + std::string(pos.topic));
            call.args = {s,
                         c,
                         std::to_string(pos.timestamp_ms),
                         std::to_string(rules.window_size),
                         std::to_string(rules.max_streams_per_key),
                         std::to_string(rules.expiry_ms),
                         p};
            std::lock_guard<std::mutex> lock(mutex_);
            posted_.push_back(call);
            client_.post(posted_.back());
            // Bounded: with no reservation coming to collect them, read the answers now.
            if (posted_.size() >= max_posted) exchange({});
            return {Verdict::admitted, 0};
        } catch (...) {  // bad_alloc
        }
        return {};
    }

    Deferred deferred() const noexcept override {
        std::lock_guard<std::mutex> lock(mutex_);
        return {failures_, overruns_};
    }

private:
    static constexpr std::size_t max_posted = 64;

    // Runs `calls` and returns their replies; settles the posted commits' replies that come first.
    std::vector<RedisReply> exchange(const std::vector<RedisScriptCall>& calls) {
        std::vector<RedisReply> replies = client_.run(calls);
        const std::size_t answered = replies.size() - calls.size();
        for (std::size_t i = 0; i < answered && i < posted_.size(); ++i) settle(posted_[i], replies[i]);
        posted_.clear();
        replies.erase(replies.begin(), replies.begin() + static_cast<std::ptrdiff_t>(answered));
        if (replies.size() < calls.size()) replies.resize(calls.size());  // unavailable
        return replies;
    }

    void settle(const RedisScriptCall& call, const RedisReply& r) {
        if (r.kind == RedisReply::Kind::integer && (r.integer == 0 || r.integer == 1)) {
            if (r.integer == 1) ++overruns_;
        } else if (r.kind == RedisReply::Kind::unavailable) {
            unsettled_.push_back(call);  // may or may not have run: the script makes a retry safe
        } else {
            ++failures_;  // the store refused it (an error): retrying would not help
        }
    }

    // Sends the commits that got no answer again, one at a time; false while one still gets none.
    bool retry_unsettled() {
        while (!unsettled_.empty()) {
            const RedisScriptCall call = unsettled_.front();
            unsettled_.pop_front();
            const RedisReply r = exchange({call}).front();
            if (r.kind == RedisReply::Kind::unavailable) {
                unsettled_.push_front(call);
                return false;
            }
            // A retried commit that finds its message recorded ran the first time: not an overrun.
            if (r.kind != RedisReply::Kind::integer || (r.integer != 0 && r.integer != 1)) ++failures_;
        }
        return true;
    }

    mutable std::mutex mutex_;  // the client is not thread-safe; the guard calls from any thread
    RedisScriptClient client_;
    std::size_t reserve_ = 0, commit_ = 0;
    std::vector<RedisScriptCall> posted_;     // sent, answers not read yet, oldest first
    std::deque<RedisScriptCall> unsettled_;  // sent, no answer: to be sent again
    std::uint64_t failures_ = 0, overruns_ = 0;
};

}  // namespace

std::shared_ptr<ReplayStore> open_redis_replay_store(const std::string& location) {
    try {
        return std::make_shared<RedisReplayStore>(parse_redis_location(location));
    } catch (const ConfigError& e) {  // the client's words name the location and the cause
        throw ConfigError(std::string("replay store: ") + e.what());
    }
}

}  // namespace securemqtt::detail
