// SPDX-License-Identifier: Apache-2.0
#include <securemqtt/replay_guard.hpp>

#include <securemqtt/replay_store.hpp>

#include "shared_admission.hpp"

#include <algorithm>
#include <functional>
#include <limits>
#include <list>
#include <mutex>
#include <new>
#include <random>
#include <string>
#include <unordered_map>

namespace securemqtt {
namespace {

// One sender stream's anti-replay state: the highest counter accepted and a ring bitmap of the
// window_size counters at and below it (counter c at bit c % 64 of word (c / 64) % words).
struct Stream {
    std::uint64_t stream_id = 0;
    std::uint64_t highest = 0;
    std::int64_t highest_timestamp_ms = 0;
    std::unique_ptr<std::uint64_t[]> bits;
};

// Stream ids are chosen by the sender, so a key holder could pick ids that share a bucket of an
// identity hash; a seeded mix keeps each key's lookups constant time.
struct StreamIdHash {
    std::uint64_t seed;
    std::size_t operator()(std::uint64_t id) const noexcept {
        std::uint64_t z = id ^ seed;  // splitmix64's finaliser
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return static_cast<std::size_t>(z ^ (z >> 31));
    }
};

using StreamList = std::list<Stream>;

// Everything the guard knows about one key id. Nothing in here is touched by another key's
// messages: that is the isolation the spec promises (docs/envelope-v1.md §4).
struct KeyState {
    KeyState(std::string_view id, std::size_t h, std::int64_t watermark, std::uint64_t seed)
        : key_id(id), hash(h), watermark_ms(watermark), index(0, StreamIdHash{seed}) {}
    std::string key_id;
    std::size_t hash;
    // New streams of this key must be newer than this: the highest timestamp of any stream of
    // this key that was evicted (or, for a key tracked afresh, the forgotten keys' floor).
    std::int64_t watermark_ms;
    StreamList streams;  // most recently admitted first
    std::unordered_map<std::uint64_t, StreamList::iterator, StreamIdHash> index;
    // With a store only: each stream's confirmed state (what the store holds), made at the
    // stream's first confirmation. The windows above also hold reserved counters.
    std::unique_ptr<std::unordered_map<std::uint64_t, Stream>> durable;
};

using KeyList = std::list<KeyState>;

std::size_t key_hash(std::string_view key_id) noexcept { return std::hash<std::string_view>{}(key_id); }

std::uint64_t random_seed() noexcept {
    try {
        std::random_device rd;
        return (std::uint64_t{rd()} << 32) ^ rd();
    } catch (...) {  // no entropy source: still a mix, only a predictable one
        return 0x9e3779b97f4a7c15ULL;
    }
}

}  // namespace

struct ReplayGuard::Impl {
    explicit Impl(const ReplayGuardOptions& o)
        : options(o), words(o.window_size / 64), words_pow2((words & (words - 1)) == 0), seed(random_seed()) {}

    // With a power-of-two window (the default) a mask replaces the 64-bit division, which
    // otherwise costs more than the rest of admit() together.
    std::uint64_t& word(Stream& s, std::uint64_t counter) const noexcept {
        const std::uint64_t block = counter / 64;
        // Below words (at most 1024), so exact on 32-bit size_t too.
        return s.bits[static_cast<std::size_t>(words_pow2 ? (block & (words - 1)) : (block % words))];
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

    // Checks and records `counter` in an existing stream; a rejected counter changes nothing.
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

    // Looks up without reordering anything: only an admitted message is a use (see touch()).
    KeyList::iterator find_key(std::string_view key_id) {
        const auto range = key_index.equal_range(key_hash(key_id));
        for (auto it = range.first; it != range.second; ++it) {
            if (it->second->key_id == key_id) return it->second;
        }
        return keys.end();
    }

    // Marks a key and its stream most recently used, after an admission.
    void touch(KeyList::iterator key, StreamList::iterator stream) noexcept {
        if (stream != key->streams.begin()) key->streams.splice(key->streams.begin(), key->streams, stream);
        if (key != keys.begin()) keys.splice(keys.begin(), keys, key);
    }

    void evict_stream(KeyState& key) noexcept {
        Stream& victim = key.streams.back();
        // Replays of the victim's messages must stay rejected once it is forgotten: this key's
        // new streams must be newer than anything it had. A victim idle beyond the age limit
        // raises the watermark only to a point freshness already rejects, so normal eviction
        // costs nothing.
        key.watermark_ms = std::max(key.watermark_ms, victim.highest_timestamp_ms);
        if (store) {
            // A failed write leaves the stream's row, which is loaded again and protects as
            // before; nothing is reopened.
            if (!store->erase_stream(key.key_id, victim.stream_id, key.watermark_ms)) ++store_failures;
            if (key.durable) key.durable->erase(victim.stream_id);
        }
        key.index.erase(victim.stream_id);
        key.streams.pop_back();
        ++evictions;
    }

    // Forgets the least recently used key id; every key id tracked afresh starts above it.
    void evict_key() noexcept {
        KeyState& victim = keys.back();
        std::int64_t highest = victim.watermark_ms;
        for (const Stream& s : victim.streams) highest = std::max(highest, s.highest_timestamp_ms);
        forgotten_keys_floor_ms = std::max(forgotten_keys_floor_ms, highest);
        if (store && !store->erase_key(victim.key_id, forgotten_keys_floor_ms)) ++store_failures;
        const auto range = key_index.equal_range(victim.hash);
        for (auto it = range.first; it != range.second; ++it) {
            if (&*it->second == &victim) {
                key_index.erase(it);
                break;
            }
        }
        keys.pop_back();
        ++key_evictions;
    }

    // Admits the first message of a stream not tracked, `key` being its key's state or end().
    // Everything that can throw happens before any state changes, so bad_alloc leaves the guard
    // as it was.
    bool add(const StreamPosition& pos, KeyList::iterator key) {
        const bool new_key = key == keys.end();
        if (pos.timestamp_ms <= (new_key ? forgotten_keys_floor_ms : key->watermark_ms)) return false;

        StreamList node(1);
        Stream& s = node.front();
        s.stream_id = pos.stream_id;
        s.highest = pos.counter;
        s.highest_timestamp_ms = pos.timestamp_ms;
        s.bits.reset(new std::uint64_t[words]());
        set(s, pos.counter);

        if (new_key) {
            KeyList fresh;
            fresh.emplace_back(pos.key_id, key_hash(pos.key_id), forgotten_keys_floor_ms, seed);
            KeyState& k = fresh.front();
            k.index.emplace(pos.stream_id, node.begin());
            k.streams.splice(k.streams.begin(), node);
            key_index.emplace(k.hash, fresh.begin());
            keys.splice(keys.begin(), fresh);
            if (keys.size() > options.max_keys) evict_key();
            return true;
        }
        key->index.emplace(pos.stream_id, node.begin());
        key->streams.splice(key->streams.begin(), node);
        if (key->streams.size() > options.max_streams_per_key) evict_stream(*key);
        if (key != keys.begin()) keys.splice(keys.begin(), keys, key);
        return true;
    }

    // With a store: a message signed with the retain flag must not be older than the newest one
    // admitted on its topic, or a captured old retained state could be put back.
    bool retained_rolls_back(const StreamPosition& pos) const {
        if (!pos.signed_retained) return false;
        const auto it = retained_topics.find(std::string(pos.topic));
        return it != retained_topics.end() && pos.timestamp_ms < it->second;
    }

    std::optional<RejectReason> admit_with_store(const StreamPosition& pos) {
        if (retained_rolls_back(pos)) return RejectReason::replayed;
        std::string topic;
        if (pos.signed_retained) topic.assign(pos.topic);  // may throw: before any change
        if (auto reason = admit(pos)) return reason;
        if (pos.signed_retained) {
            std::int64_t& newest = retained_topics.try_emplace(std::move(topic), pos.timestamp_ms).first->second;
            newest = std::max(newest, pos.timestamp_ms);
        }
        return std::nullopt;
    }

    // Writes a confirmed message's stream to the store; see ReplayGuard::confirm().
    bool confirm(const StreamPosition& pos) {
        const auto key = find_key(pos.key_id);
        // A key or stream forgotten since the message was admitted raised the floor or the
        // watermark to at least its timestamp, in the store too: nothing left to write.
        if (key == keys.end() || key->index.find(pos.stream_id) == key->index.end()) return true;
        if (!key->durable) key->durable = std::make_unique<std::unordered_map<std::uint64_t, Stream>>();
        auto [it, fresh] = key->durable->try_emplace(pos.stream_id);
        Stream& d = it->second;
        if (fresh) {
            d.stream_id = pos.stream_id;
            d.highest_timestamp_ms = std::numeric_limits<std::int64_t>::min();
            try {
                d.bits.reset(new std::uint64_t[words]());
            } catch (...) {
                key->durable->erase(it);
                throw;
            }
        }
        if (!record(d, pos.counter, pos.timestamp_ms)) return true;  // confirmed before
        scratch.key_id.assign(key->key_id);
        scratch.stream_id = d.stream_id;
        scratch.highest = d.highest;
        scratch.highest_timestamp_ms = d.highest_timestamp_ms;
        scratch.window.assign(d.bits.get(), d.bits.get() + words);
        scratch.last_used = ++last_used;
        bool ok = store->save_stream(scratch);
        if (pos.signed_retained) ok = store->save_retained(pos.topic, pos.timestamp_ms) && ok;
        if (!ok) ++store_failures;
        return ok;
    }

    // Rebuilds the state from the store, in the order of last use, enforcing today's quotas.
    void load() {
        StoredReplayState state = store->load();
        forgotten_keys_floor_ms = state.floor_ms;
        const auto key_for = [&](const std::string& id, std::int64_t watermark) {
            auto key = find_key(id);
            if (key != keys.end()) return key;
            KeyList fresh;
            fresh.emplace_back(id, key_hash(id), watermark, seed);
            key_index.emplace(fresh.front().hash, fresh.begin());
            keys.splice(keys.begin(), fresh);
            if (keys.size() > options.max_keys) evict_key();
            return keys.begin();
        };
        // Keys with a raised watermark first, so that no stream of theirs starts from the floor.
        for (const auto& [id, watermark] : state.watermarks) key_for(id, std::max(watermark, forgotten_keys_floor_ms));
        for (StoredStream& st : state.streams) {
            last_used = std::max(last_used, st.last_used);
            if (find_key(st.key_id) == keys.end() && st.highest_timestamp_ms <= forgotten_keys_floor_ms) {
                if (!store->erase_stream(st.key_id, st.stream_id, st.highest_timestamp_ms)) ++store_failures;
                continue;
            }
            const auto key = key_for(st.key_id, forgotten_keys_floor_ms);
            if (st.window.size() != words) {
                // Written with another window size: forget it the safe way, as an eviction.
                key->watermark_ms = std::max(key->watermark_ms, st.highest_timestamp_ms);
                if (!store->erase_stream(st.key_id, st.stream_id, key->watermark_ms)) ++store_failures;
                continue;
            }
            StreamList node(1);
            Stream& s = node.front();
            s.stream_id = st.stream_id;
            s.highest = st.highest;
            s.highest_timestamp_ms = st.highest_timestamp_ms;
            s.bits.reset(new std::uint64_t[words]);
            std::copy(st.window.begin(), st.window.end(), s.bits.get());
            if (!key->durable) key->durable = std::make_unique<std::unordered_map<std::uint64_t, Stream>>();
            Stream& d = (*key->durable)[st.stream_id];
            d.stream_id = s.stream_id;
            d.highest = s.highest;
            d.highest_timestamp_ms = s.highest_timestamp_ms;
            d.bits.reset(new std::uint64_t[words]);
            std::copy(st.window.begin(), st.window.end(), d.bits.get());
            key->index.emplace(st.stream_id, node.begin());
            key->streams.splice(key->streams.begin(), node);
            if (key->streams.size() > options.max_streams_per_key) evict_stream(*key);
            if (key != keys.begin()) keys.splice(keys.begin(), keys, key);
        }
        for (auto& [topic, ts] : state.retained_topics) retained_topics.emplace(std::move(topic), ts);
    }

    std::optional<RejectReason> admit(const StreamPosition& pos) {
        // Senders come in runs: the stream admitted last, at the front of the front key, needs
        // no hashing and no reordering.
        if (!keys.empty()) {
            KeyState& k = keys.front();
            if (!k.streams.empty() && k.streams.front().stream_id == pos.stream_id && k.key_id == pos.key_id) {
                if (record(k.streams.front(), pos.counter, pos.timestamp_ms)) return std::nullopt;
                return RejectReason::replayed;
            }
        }
        const auto key = find_key(pos.key_id);
        if (key != keys.end()) {
            const auto found = key->index.find(pos.stream_id);
            if (found != key->index.end()) {
                if (!record(*found->second, pos.counter, pos.timestamp_ms)) return RejectReason::replayed;
                touch(key, found->second);
                return std::nullopt;
            }
        }
        if (add(pos, key)) return std::nullopt;
        return RejectReason::replayed;
    }

    const ReplayGuardOptions options;
    const std::size_t words;
    const bool words_pow2;
    const std::uint64_t seed;
    mutable std::mutex mutex;
    KeyList keys;  // most recently admitted first
    std::unordered_multimap<std::size_t, KeyList::iterator> key_index;
    // Where a key id tracked afresh starts its watermark: the highest timestamp any forgotten
    // key had. Stays at its starting value while no more than max_keys key ids are seen.
    std::int64_t forgotten_keys_floor_ms = std::numeric_limits<std::int64_t>::min();
    std::uint64_t evictions = 0;
    std::uint64_t key_evictions = 0;
    // With a store only.
    std::shared_ptr<ReplayStore> store;
    std::unordered_map<std::string, std::int64_t> retained_topics;  // topic -> newest signed timestamp
    std::uint64_t last_used = 0;  // the order of confirmations, for the store's rows
    std::uint64_t store_failures = 0;
    StoredStream scratch;  // reused by confirm()
    // With a shared store only: the store judges, this guard only checks freshness.
    std::unique_ptr<detail::SharedAdmission> shared;
};

namespace {

// The estimates behind bytes_per_stream() and bytes_per_key(): node sizes of the standard
// containers plus an allocator header per allocation.
constexpr std::size_t alloc_overhead = 16;

std::size_t stream_bytes(std::size_t words) noexcept {
    const std::size_t list_node = 2 * sizeof(void*) + sizeof(Stream) + alloc_overhead;
    // next link, key, iterator, cached hash
    const std::size_t index_node = sizeof(void*) + sizeof(std::uint64_t) + sizeof(StreamList::iterator) +
                                   sizeof(std::size_t) + alloc_overhead;
    const std::size_t bucket = sizeof(void*);
    const std::size_t bitmap = words * sizeof(std::uint64_t) + alloc_overhead;
    return list_node + index_node + bucket + bitmap;
}

std::size_t key_bytes() noexcept {
    const std::size_t list_node = 2 * sizeof(void*) + sizeof(KeyState) + alloc_overhead;
    const std::size_t key_id = 64 + 1 + alloc_overhead;  // the longest id, beyond the short-string buffer
    const std::size_t index_node = sizeof(void*) + sizeof(std::size_t) + sizeof(KeyList::iterator) + alloc_overhead;
    const std::size_t bucket = sizeof(void*);
    return list_node + key_id + index_node + bucket;
}

}  // namespace

ReplayGuard::ReplayGuard(ReplayGuardOptions options) {
    if (options.window_size < 64 || options.window_size > 65536 || options.window_size % 64 != 0) {
        throw ConfigError("replay guard: window_size must be a multiple of 64 from 64 to 65536, got " +
                          std::to_string(options.window_size));
    }
    if (options.max_streams_per_key == 0) throw ConfigError("replay guard: max_streams_per_key must be at least 1");
    if (options.max_keys == 0) throw ConfigError("replay guard: max_keys must be at least 1");
    // The most the guard may hold must fit the address space: all of it on 64 bits; half of it on
    // 32 bits, where a process has 2 to 3 GiB and the rest of the program needs room too (more
    // would fail at run time, each failed allocation rejecting a genuine message).
    const std::size_t limit = sizeof(void*) >= 8 ? std::numeric_limits<std::size_t>::max()
                                                 : std::numeric_limits<std::size_t>::max() / 2;
    const std::size_t per_stream = stream_bytes(options.window_size / 64);
    if (options.max_streams_per_key > (limit - key_bytes()) / per_stream ||
        options.max_keys > limit / (key_bytes() + options.max_streams_per_key * per_stream)) {
        throw ConfigError("replay guard: max_keys * max_streams_per_key streams of window_size " +
                          std::to_string(options.window_size) + " (" + std::to_string(options.max_keys) + " * " +
                          std::to_string(options.max_streams_per_key) + ", " + std::to_string(per_stream) +
                          " bytes each) cannot fit this process's memory (" + std::to_string(limit >> 20) + " MiB)");
    }
    if (options.max_age_ms < 0 || options.max_future_skew_ms < 0 || options.max_retained_age_ms < 0) {
        throw ConfigError("replay guard: ages and skew must not be negative");
    }
    impl_ = std::make_unique<Impl>(options);
    impl_->store = options.store;
    if (impl_->store && impl_->store->shared()) {
        impl_->shared = std::make_unique<detail::SharedAdmission>(options, impl_->store);
    } else if (impl_->store) {
        impl_->load();
    }
}

ReplayGuard::~ReplayGuard() = default;

std::optional<RejectReason> ReplayGuard::check_freshness(const StreamPosition& pos,
                                                         std::int64_t now_ms) const noexcept {
    const ReplayGuardOptions& o = impl_->options;
    const bool retained_rules = pos.retained && o.retained_policy == RetainedPolicy::allow_older;
    const std::int64_t live_age = pos.max_age_ms ? *pos.max_age_ms : o.max_age_ms;
    // Retained rules only widen: the broker's retain flag is not under the MAC, so whoever could
    // clear it would get the live limit anyway; a narrower retained limit would only lose
    // messages (docs/envelope-v1.md §5).
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
    if (impl_->shared) return impl_->shared->admit(pos);  // may wait for the store: no lock held
    std::lock_guard<std::mutex> lock(impl_->mutex);
    try {
        return impl_->store ? impl_->admit_with_store(pos) : impl_->admit(pos);
    } catch (const std::bad_alloc&) {  // fail closed; add() changed nothing
    }
    return RejectReason::replayed;
}

bool ReplayGuard::confirm(const StreamPosition& pos) noexcept {
    if (!impl_->store) return true;
    if (impl_->shared) return impl_->shared->confirm(pos);
    std::lock_guard<std::mutex> lock(impl_->mutex);
    try {
        return impl_->confirm(pos);
    } catch (...) {  // bad_alloc: not written
        ++impl_->store_failures;
        return false;
    }
}

ReplayStore* ReplayGuard::store() const noexcept { return impl_->store.get(); }

std::uint64_t ReplayGuard::store_failures() const {
    if (impl_->shared) return impl_->shared->failures();
    std::lock_guard<std::mutex> lock(impl_->mutex);
    return impl_->store_failures;
}

std::uint64_t ReplayGuard::store_lease_overruns() const {
    return impl_->shared ? impl_->shared->lease_overruns() : 0;
}

std::size_t ReplayGuard::tracked_streams() const {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    std::size_t n = 0;
    for (const KeyState& k : impl_->keys) n += k.streams.size();
    return n;
}

std::size_t ReplayGuard::tracked_streams(std::string_view key_id) const {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    const auto key = impl_->find_key(key_id);
    return key == impl_->keys.end() ? 0 : key->streams.size();
}

std::size_t ReplayGuard::tracked_keys() const {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    return impl_->keys.size();
}

std::uint64_t ReplayGuard::evictions() const {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    return impl_->evictions;
}

std::uint64_t ReplayGuard::key_evictions() const {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    return impl_->key_evictions;
}

std::size_t ReplayGuard::bytes_per_stream() const noexcept { return stream_bytes(impl_->words); }

std::size_t ReplayGuard::bytes_per_key() const noexcept { return key_bytes(); }

std::size_t ReplayGuard::max_memory_bytes() const noexcept {
    const ReplayGuardOptions& o = impl_->options;
    return o.max_keys * (bytes_per_key() + o.max_streams_per_key * bytes_per_stream());  // checked in the constructor
}

const ReplayGuardOptions& ReplayGuard::options() const noexcept { return impl_->options; }

}  // namespace securemqtt
