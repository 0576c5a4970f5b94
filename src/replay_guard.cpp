// SPDX-License-Identifier: Apache-2.0
#include <securemqtt/replay_guard.hpp>

#include <algorithm>
#include <functional>
#include <limits>
#include <list>
#include <mutex>
#include <new>
#include <string>
#include <unordered_map>

namespace securemqtt {
namespace {

// One sender stream's anti-replay state: the highest counter accepted and a ring bitmap of the
// window_size counters at and below it (counter c at bit c % 64 of word (c / 64) % words).
struct Stream {
    std::string key_id;
    std::uint64_t stream_id = 0;
    std::uint64_t highest = 0;
    std::int64_t highest_timestamp_ms = 0;
    std::unique_ptr<std::uint64_t[]> bits;
};

std::size_t stream_hash(std::string_view key_id, std::uint64_t stream_id) noexcept {
    const std::size_t h = std::hash<std::string_view>{}(key_id);
    return h ^ (std::hash<std::uint64_t>{}(stream_id) + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2));
}

}  // namespace

struct ReplayGuard::Impl {
    explicit Impl(const ReplayGuardOptions& o)
        : options(o), words(o.window_size / 64), words_pow2((words & (words - 1)) == 0) {}

    // With a power-of-two window (the default) a mask replaces the 64-bit division, which
    // otherwise costs more than the rest of admit() together.
    std::uint64_t& word(Stream& s, std::uint64_t counter) const noexcept {
        const std::uint64_t block = counter / 64;
        return s.bits[words_pow2 ? (block & (words - 1)) : (block % words)];
    }
    bool test(Stream& s, std::uint64_t counter) const noexcept { return (word(s, counter) >> (counter % 64)) & 1u; }
    void set(Stream& s, std::uint64_t counter) const noexcept { word(s, counter) |= std::uint64_t{1} << (counter % 64); }
    // Clears the bits of counters from..to (inclusive), fewer than window_size of them.
    void clear(Stream& s, std::uint64_t from, std::uint64_t to) const noexcept {
        while (from <= to) {
            const std::uint64_t bit = from % 64;
            const std::uint64_t n = std::min<std::uint64_t>(64 - bit, to - from + 1);
            const std::uint64_t mask = (n == 64 ? ~std::uint64_t{0} : ((std::uint64_t{1} << n) - 1)) << bit;
            word(s, from) &= ~mask;
            if (to - from + 1 == n) break;  // also guards against from + n wrapping past 2^64 - 1
            from += n;
        }
    }

    // Checks and records `counter` in an existing stream.
    bool record(Stream& s, std::uint64_t counter, std::int64_t timestamp_ms) const noexcept {
        if (counter > s.highest) {
            if (counter - s.highest >= options.window_size) {
                std::fill_n(s.bits.get(), words, std::uint64_t{0});
            } else {
                clear(s, s.highest + 1, counter);
            }
            s.highest = counter;
        } else {
            if (s.highest - counter >= options.window_size) return false;  // behind the window
            if (test(s, counter)) return false;
        }
        set(s, counter);
        s.highest_timestamp_ms = std::max(s.highest_timestamp_ms, timestamp_ms);
        return true;
    }

    Stream* find(std::string_view key_id, std::uint64_t stream_id) {
        // Senders come in runs: the stream seen last needs no hashing.
        if (!lru.empty() && lru.front().stream_id == stream_id && lru.front().key_id == key_id) return &lru.front();
        const auto range = index.equal_range(stream_hash(key_id, stream_id));
        for (auto it = range.first; it != range.second; ++it) {
            Stream& s = *it->second;
            if (s.stream_id == stream_id && s.key_id == key_id) {
                if (it->second != lru.begin()) lru.splice(lru.begin(), lru, it->second);  // most recent first
                return &s;
            }
        }
        return nullptr;
    }

    void evict_oldest() {
        Stream& victim = lru.back();
        // Replays of the victim's messages must stay rejected once it is forgotten: new streams
        // must be newer than anything it had. A victim idle beyond the age limit raises the
        // watermark only to a point freshness already rejects, so normal eviction costs nothing.
        watermark_ms = std::max(watermark_ms, victim.highest_timestamp_ms);
        const std::size_t hash = stream_hash(victim.key_id, victim.stream_id);
        const auto range = index.equal_range(hash);
        for (auto it = range.first; it != range.second; ++it) {
            if (&*it->second == &victim) {
                index.erase(it);
                break;
            }
        }
        lru.pop_back();
        ++evictions;
    }

    bool add(const StreamPosition& pos) {
        if (pos.timestamp_ms <= watermark_ms) return false;
        if (lru.size() >= options.max_streams) evict_oldest();
        Stream s;
        s.key_id.assign(pos.key_id.data(), pos.key_id.size());
        s.stream_id = pos.stream_id;
        s.highest = pos.counter;
        s.highest_timestamp_ms = pos.timestamp_ms;
        s.bits.reset(new std::uint64_t[words]());
        set(s, pos.counter);
        lru.push_front(std::move(s));
        try {
            index.emplace(stream_hash(pos.key_id, pos.stream_id), lru.begin());
        } catch (...) {
            lru.pop_front();
            throw;
        }
        return true;
    }

    const ReplayGuardOptions options;
    const std::size_t words;
    const bool words_pow2;
    mutable std::mutex mutex;
    std::list<Stream> lru;
    std::unordered_multimap<std::size_t, std::list<Stream>::iterator> index;
    std::int64_t watermark_ms = std::numeric_limits<std::int64_t>::min();
    std::uint64_t evictions = 0;
};

ReplayGuard::ReplayGuard(ReplayGuardOptions options) {
    if (options.window_size < 64 || options.window_size > 65536 || options.window_size % 64 != 0) {
        throw ConfigError("replay guard: window_size must be a multiple of 64 from 64 to 65536, got " +
                          std::to_string(options.window_size));
    }
    if (options.max_streams == 0) throw ConfigError("replay guard: max_streams must be at least 1");
    if (options.max_age_ms < 0 || options.max_future_skew_ms < 0 || options.max_retained_age_ms < 0) {
        throw ConfigError("replay guard: ages and skew must not be negative");
    }
    impl_ = std::make_unique<Impl>(options);
}

ReplayGuard::~ReplayGuard() = default;

std::optional<RejectReason> ReplayGuard::check_freshness(const StreamPosition& pos,
                                                         std::int64_t now_ms) const noexcept {
    const ReplayGuardOptions& o = impl_->options;
    const bool retained_rules = pos.retained && o.retained_policy == RetainedPolicy::allow_older;
    const std::int64_t live_age = pos.max_age_ms ? *pos.max_age_ms : o.max_age_ms;
    const std::int64_t max_age = retained_rules ? std::max(live_age, o.max_retained_age_ms) : live_age;
    // Written to avoid signed overflow for any timestamp and clock value.
    if (pos.timestamp_ms < now_ms && static_cast<std::uint64_t>(now_ms) - static_cast<std::uint64_t>(pos.timestamp_ms) >
                                         static_cast<std::uint64_t>(max_age)) {
        return RejectReason::too_old;
    }
    if (pos.timestamp_ms > now_ms && static_cast<std::uint64_t>(pos.timestamp_ms) - static_cast<std::uint64_t>(now_ms) >
                                         static_cast<std::uint64_t>(o.max_future_skew_ms)) {
        return RejectReason::from_future;
    }
    return std::nullopt;
}

std::optional<RejectReason> ReplayGuard::admit(const StreamPosition& pos, std::int64_t now_ms) noexcept {
    if (auto stale = check_freshness(pos, now_ms)) return stale;
    std::lock_guard<std::mutex> lock(impl_->mutex);
    if (Stream* s = impl_->find(pos.key_id, pos.stream_id)) {
        if (impl_->record(*s, pos.counter, pos.timestamp_ms)) return std::nullopt;
        return RejectReason::replayed;
    }
    try {
        if (impl_->add(pos)) return std::nullopt;
    } catch (const std::bad_alloc&) {  // fail closed
    }
    return RejectReason::replayed;
}

std::size_t ReplayGuard::tracked_streams() const {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    return impl_->lru.size();
}

std::uint64_t ReplayGuard::evictions() const {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    return impl_->evictions;
}

std::size_t ReplayGuard::bytes_per_stream() const noexcept {
    // The list node (two links + Stream), the index node (next link, hash, iterator), one bucket
    // pointer, the bitmap, and an allocator header per allocation (three of them).
    constexpr std::size_t alloc_overhead = 16;
    const std::size_t list_node = 2 * sizeof(void*) + sizeof(Stream) + alloc_overhead;
    const std::size_t index_node = sizeof(void*) + sizeof(std::size_t) + sizeof(std::list<Stream>::iterator) + alloc_overhead;
    const std::size_t bitmap = impl_->words * sizeof(std::uint64_t) + alloc_overhead;
    return list_node + index_node + sizeof(void*) + bitmap;
}

const ReplayGuardOptions& ReplayGuard::options() const noexcept { return impl_->options; }

}  // namespace securemqtt
