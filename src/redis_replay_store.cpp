// SPDX-License-Identifier: Apache-2.0
#include "redis_replay_store.hpp"

#include "openssl_init.hpp"
#include "redis_client.hpp"
#include "redis_scripts.hpp"

#include <securemqtt/errors.hpp>

#include <chrono>
#include <cstdio>
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

// Each reservation and each commit is one round trip, answered before the call returns: the
// commit must be in Redis before the MQTT acknowledgement that follows confirm(), or a lost
// commit would let another member admit a copy of an acknowledged message once its lease ran
// out. (Sending the commit and reading its answer with the next call would halve the round
// trips, but only by acknowledging first: not done.)
class RedisReplayStore final : public ReplayStore {
public:
    explicit RedisReplayStore(RedisLocation where) : client_(std::move(where), call_timeout) {
        reserve_ = client_.add_script(std::string(redis_script("replay_reserve")));
        commit_ = client_.add_script(std::string(redis_script("replay_admit")));
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
            const RedisReply r = run(call);
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
            const RedisReply r = run(call);
            if (r.kind != RedisReply::Kind::integer) return {};
            // 2: the stream moved on past it (window or watermark) while it was reserved, so it
            // is covered, and nobody else recorded it: as good as recorded.
            if (r.integer == 0 || r.integer == 2) return {Verdict::admitted, 0};
            if (r.integer == 1) return {Verdict::replayed, 0};
        } catch (...) {  // bad_alloc
        }
        return {};
    }

private:
    RedisReply run(const RedisScriptCall& call) {
        std::lock_guard<std::mutex> lock(mutex_);
        std::vector<RedisReply> replies = client_.run({call});
        if (replies.empty()) return {};
        return std::move(replies.back());
    }

    mutable std::mutex mutex_;  // the client is not thread-safe; the guard calls from any thread
    RedisScriptClient client_;
    std::size_t reserve_ = 0, commit_ = 0;
};

}  // namespace

std::shared_ptr<ReplayStore> open_redis_replay_store(const std::string& location) {
    try {
        keep_openssl_until_exit();
        return std::make_shared<RedisReplayStore>(parse_redis_location(location));
    } catch (const ConfigError& e) {  // the client's words name the location and the cause
        throw ConfigError(std::string("replay store: ") + e.what());
    }
}

}  // namespace securemqtt::detail
