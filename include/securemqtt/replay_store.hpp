// SPDX-License-Identifier: Apache-2.0
// ReplayStore: where a ReplayGuard keeps its state beyond the process (docs/envelope-v1.md §4,
// "Stores"). The in-memory guard needs none; open_replay_store() opens the durable one or the
// shared one.
#pragma once

#include <securemqtt/export.hpp>
#include <securemqtt/replay_guard.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace securemqtt {

/// One tracked stream as a store keeps it: what §4 says the receiver keeps per stream.
struct StoredStream {
    std::string key_id;
    std::uint64_t stream_id = 0;
    std::uint64_t highest = 0;              ///< H, the highest counter confirmed
    std::int64_t highest_timestamp_ms = 0;  ///< T(s)
    /// The window bitmap, window_size / 64 words, in the guard's ring layout (counter c at bit
    /// c % 64 of word (c / 64) % words).
    std::vector<std::uint64_t> window;
    /// Order of last use, larger is more recent; the guard rebuilds its eviction order from it.
    std::uint64_t last_used = 0;
};

/// Everything a store holds, as ReplayStore::load() returns it.
struct StoredReplayState {
    /// The forgotten keys' floor; INT64_MIN ("none") for a new store.
    std::int64_t floor_ms = INT64_MIN;
    /// (key id, watermark) for every key whose watermark has risen; others start at floor_ms.
    std::vector<std::pair<std::string, std::int64_t>> watermarks;
    std::vector<StoredStream> streams;
    /// (topic, highest signed timestamp) of messages signed with the retain flag.
    std::vector<std::pair<std::string, std::int64_t>> retained_topics;
};

/// Durable home of a ReplayGuard's state.
///
/// This is the *mirror* contract: the guard judges every message in its own memory, as it does
/// without a store, and tells the store what changed — a confirmed message's stream
/// (save_stream), an eviction (erase_stream, raising the key's watermark), a forgotten key
/// (erase_key, raising the floor), a retained topic's newest timestamp. At start-up the guard
/// loads the whole state once. So a store adds no read per message, and a write only when a
/// message is confirmed (after its handlers returned: see Verifier::confirm), never when it is
/// reserved.
///
/// Every write is safe on its own whatever happens to the others: a failed save_stream loses
/// only that confirmation (the message may be delivered again after a restart: at-least-once);
/// a failed erase leaves the stream's row, which is loaded again and protects as before.
///
/// A *shared* store (Redis, for consumer groups; shared() is true) cannot mirror: other
/// processes change the state between two messages. Its guard judges nothing in memory but
/// freshness; it hands each message to reserve() and, once handled, to commit(), each one atomic
/// step in the store (the window check and update of a stream, its key's quota and watermark,
/// keys hash-tagged per key id). load() and the mirror's write functions are not called.
///
/// Threads: a store belongs to one ReplayGuard, which calls a mirror under its own lock and a
/// shared store from any thread (a shared store serialises itself); the write functions never
/// throw.
class SECUREMQTT_EXPORT ReplayStore {
public:
    virtual ~ReplayStore();

    /// What a shared store answers.
    enum class Verdict : std::uint8_t {
        admitted,     ///< reserve(): reserved for the caller; commit(): recorded
        replayed,     ///< recorded already by some verifier, or behind the window or watermark
        in_flight,    ///< reserved by another verifier whose lease has not ended: ask again
        unavailable,  ///< no answer from the store
    };
    struct Answer {
        Verdict verdict = Verdict::unavailable;
        std::int64_t retry_after_ms = 0;  ///< in_flight: when the other lease ends, at the latest
    };
    /// What a shared store needs of the guard's settings for one call.
    struct SharedRules {
        std::size_t window_size = 0;
        std::size_t max_streams_per_key = 0;
        /// How long state may live unused: the longest age a message can be accepted at, plus
        /// the future skew and a margin, so expiry never reopens a replay.
        std::int64_t expiry_ms = 0;
        /// How long a reservation keeps other verifiers from admitting the message.
        std::int64_t lease_ms = 0;
        /// Who reserves: unique per guard (random), so a reservation is never mistaken for
        /// another verifier's.
        std::string_view holder;
    };

    /// Where the state lives, for messages (a file path).
    virtual const std::string& location() const noexcept = 0;
    /// Reads the whole state, once, when the guard is made. Throws ConfigError naming the
    /// location and the cause when it cannot be read.
    virtual StoredReplayState load() = 0;
    /// Records a stream's confirmed state (insert or replace). False when the write failed.
    virtual bool save_stream(const StoredStream& stream) noexcept = 0;
    /// Forgets a stream and raises its key's watermark to at least `watermark_ms`, in one step.
    virtual bool erase_stream(std::string_view key_id, std::uint64_t stream_id, std::int64_t watermark_ms) noexcept = 0;
    /// Forgets a key id and its streams and raises the floor to at least `floor_ms`, in one step.
    virtual bool erase_key(std::string_view key_id, std::int64_t floor_ms) noexcept = 0;
    /// Raises the newest signed timestamp of a retained message on `topic` to `timestamp_ms`.
    virtual bool save_retained(std::string_view topic, std::int64_t timestamp_ms) noexcept = 0;

    /// True for a shared store, which judges (reserve/commit) instead of mirroring.
    virtual bool shared() const noexcept { return false; }
    /// Shared stores: admits `position` as a reservation held by `rules.holder` for
    /// `rules.lease_ms`, unless it was recorded (replayed) or another holder's lease runs
    /// (in_flight). Changes no window. A message signed with the retain flag that is older than
    /// the newest one recorded on its topic under the same key id is replayed. Never throws.
    virtual Answer reserve(const StreamPosition& position, const SharedRules& rules) noexcept;
    /// Shared stores: records a reserved message (window, quota, watermark, expiry) and ends its
    /// reservation, answered before it returns (the MQTT acknowledgement follows). replayed when
    /// some verifier recorded it meanwhile (a lease that ran out: the message was then delivered
    /// twice). Never throws.
    virtual Answer commit(const StreamPosition& position, const SharedRules& rules) noexcept;

protected:
    ReplayStore() = default;
    ReplayStore(const ReplayStore&) = delete;
    ReplayStore& operator=(const ReplayStore&) = delete;
};

/// The verdict's snake_case name, e.g. "in_flight".
SECUREMQTT_EXPORT std::string_view to_string(ReplayStore::Verdict verdict) noexcept;

/// Opens the store at `location`: a file path opens (or creates) an SQLite database there;
/// "redis://HOST:PORT[/DB]" connects to a Redis server or Redis Cluster node (a shared store:
/// one per guard, as many guards and processes on it as share a consumer group). Throws
/// ConfigError naming the location when it is not a database, cannot be opened for writing or
/// has another schema, is not a valid Redis location or cannot be connected to. An empty
/// location returns null: the guard keeps its state in memory.
SECUREMQTT_EXPORT std::shared_ptr<ReplayStore> open_replay_store(const std::string& location);

}  // namespace securemqtt
