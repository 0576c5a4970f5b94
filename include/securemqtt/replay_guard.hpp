// SPDX-License-Identifier: Apache-2.0
// ReplayGuard: freshness (timestamp window) and anti-replay (per-stream sliding counter window)
// for messages whose MAC has already been checked.
#pragma once

#include <securemqtt/errors.hpp>
#include <securemqtt/export.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string_view>

SECUREMQTT_DLL_INTERFACE_WARNINGS_PUSH  // MSVC C4251/C4275 on exported classes: see export.hpp

namespace securemqtt {

class ReplayStore;

/// What happens to retained messages, which a new subscriber receives long after they were
/// signed.
enum class RetainedPolicy {
    /// Retained messages are judged like live ones: older than max_age_ms is too_old.
    same_as_live,
    /// Default. A message the broker delivered as retained AND that the sender signed with the
    /// retain flag may be up to max_retained_age_ms old. The flag is covered by the MAC, so a
    /// live message cannot be passed off as a retained one. Counters are checked as usual.
    allow_older,
};

/// The policy's snake_case name, e.g. "allow_older".
SECUREMQTT_EXPORT std::string_view to_string(RetainedPolicy policy) noexcept;

/// Settings of a ReplayGuard. The defaults suit devices with NTP-synchronised clocks.
struct ReplayGuardOptions {
    /// Anti-replay window in counters: a multiple of 64 from 64 to 65536. A message more than
    /// this many counters behind the newest one seen from its stream is rejected as replayed.
    std::size_t window_size = 1024;
    /// Most streams tracked per key id, at least 1. Beyond it the key's least recently admitted
    /// stream is evicted and raises that key's watermark (docs/envelope-v1.md §4): what one key
    /// id does never evicts another's streams. A key shared by many senders needs at least as
    /// many as it has senders live within max_age_ms.
    std::size_t max_streams_per_key = 1024;
    /// Most key ids tracked at once, at least 1. Only authenticated messages reach the guard, so
    /// key ids come from the keyring: set this to at least the number of keys it holds over the
    /// guard's life. Beyond it the least recently admitted key id is forgotten and raises the
    /// floor that every key id tracked afresh starts from, so keys then affect each other (fail
    /// closed: messages may be lost, never accepted twice). See max_memory_bytes().
    std::size_t max_keys = 1024;
    /// Oldest acceptable timestamp, in ms before now (default 5 minutes).
    std::int64_t max_age_ms = 5 * 60 * 1000;
    /// Furthest a timestamp may be ahead of now, in ms (default 60 seconds).
    std::int64_t max_future_skew_ms = 60 * 1000;
    /// How retained messages are judged.
    RetainedPolicy retained_policy = RetainedPolicy::allow_older;
    /// Oldest acceptable retained message under allow_older, in ms (default 24 hours). Retained
    /// rules only ever widen the live limit: below max_age_ms (or a topic's allowance) this has
    /// no effect, since the delivery's retain flag is not under the MAC (docs/envelope-v1.md §5).
    std::int64_t max_retained_age_ms = 24LL * 60 * 60 * 1000;
    /// Where the state outlives the process (replay_store.hpp, open_replay_store()); null, the
    /// default, keeps it in memory only. With a store the guard loads its state when made,
    /// judges in memory as before, and writes a message's stream to the store only when the
    /// message is confirmed (confirm()). It also refuses a message signed with the retain flag
    /// that is older than the newest one admitted on its topic (no rollback of retained state).
    /// One store serves one guard. With a shared store (Redis) the store judges instead: see
    /// the three settings below and ReplayStore.
    std::shared_ptr<ReplayStore> store;
    /// Shared store only: the longest a message waits for the store's decision — while the
    /// store is unreachable, or while another verifier holds the message's reservation — before
    /// it is rejected as replay_state_unavailable. Waiting holds up the caller (the MQTT client's
    /// thread in a SecureSession, so the broker keeps further messages queued); keep it well
    /// under the session's keep-alive. Must exceed store_lease_ms.
    std::int64_t store_hold_ms = 20 * 1000;
    /// Shared store only: how long a reservation (verify() until confirm()) keeps every other
    /// verifier from admitting the same message. A verifier that dies inside a handler blocks
    /// the broker's redelivery of that message elsewhere this long; a handler that takes longer
    /// lets another verifier deliver it too. At least 1.
    std::int64_t store_lease_ms = 10 * 1000;
    /// Shared store only: called when the store stops answering (false) and when it answers
    /// again (true), once per change, on the thread that noticed; `detail` says why. Keep it
    /// short. SecureSession logs these.
    std::function<void(bool available, std::string_view detail)> on_store_availability;
};

/// The facts about one authenticated message that the guard judges.
struct StreamPosition {
    std::string_view key_id;    ///< at most 64 bytes
    std::uint64_t stream_id = 0;
    std::uint64_t counter = 0;
    std::int64_t timestamp_ms = 0;
    /// True when the broker delivered the message as retained and the envelope carries the
    /// retain flag; then the retained policy applies.
    bool retained = false;
    /// When set, the oldest acceptable timestamp for this message, in ms before now, instead of
    /// max_age_ms (a Verifier's per-topic AgeAllowance, e.g. for Last Will topics).
    std::optional<std::int64_t> max_age_ms;
    /// The topic it arrived on; used only with a store, for retained messages.
    std::string_view topic;
    /// True when the envelope carries the retain flag, however it was delivered; used only with
    /// a store: such a message older than the newest one admitted on its topic is replayed.
    bool signed_retained = false;
};

/// Freshness and anti-replay state for all streams a receiver sees, kept per key id.
///
/// For each (key id, stream id) it keeps the highest counter accepted and a bitmap of the
/// window_size counters below it, as IPsec and DTLS do. A message is admitted at most once, so a
/// QoS 1 redelivery of a message already accepted is rejected as replayed: the application sees
/// each message once. Quotas, eviction and watermarks are per key id, and only an admitted
/// message counts as a use of its stream, so a rejected one changes nothing. Memory is bounded
/// by max_memory_bytes(). Thread-safe.
class SECUREMQTT_EXPORT ReplayGuard {
public:
    /// Throws ConfigError when an option is out of range, or when max_memory_bytes() would not
    /// fit in a size_t.
    explicit ReplayGuard(ReplayGuardOptions options = {});
    ~ReplayGuard();
    ReplayGuard(const ReplayGuard&) = delete;
    ReplayGuard& operator=(const ReplayGuard&) = delete;

    /// Judges a message at time `now_ms`: too_old, from_future, replayed, or admitted (returns
    /// no reason) — in which case its counter is recorded. Call it only after the MAC has been
    /// verified, or an attacker could fill the windows. Never throws; if memory for a new
    /// stream cannot be had, the message is rejected as replayed (fail closed).
    [[nodiscard]] std::optional<RejectReason> admit(const StreamPosition& position,
                                                    std::int64_t now_ms) noexcept;

    /// Makes an admitted message's record durable: writes its stream's state, with this counter
    /// and every counter confirmed before it, to the store. Until then the admission is a
    /// reservation: it is judged in memory (a copy is `replayed`) but a restart forgets it, so
    /// the broker's redelivery of a message whose handling a crash cut short is admitted again.
    /// Call it once per admitted message, after the message was handled; counters admitted but
    /// not yet confirmed on other threads are not written. Without a store it does nothing and
    /// returns true. Returns false when the write failed (the message then counts as reserved
    /// only: after a restart a copy of it would be admitted once more). Never throws.
    [[nodiscard]] bool confirm(const StreamPosition& position) noexcept;

    /// The store in use, or null.
    ReplayStore* store() const noexcept;
    /// Number of store writes that failed so far (0 without a store); with a shared store,
    /// commits that got no answer.
    std::uint64_t store_failures() const;
    /// Shared store only: messages the store recorded from another verifier while this one
    /// held them (its lease ran out before confirm()): delivered twice. 0 otherwise.
    std::uint64_t store_lease_overruns() const;

    /// Checks only the timestamp window, without recording anything.
    [[nodiscard]] std::optional<RejectReason> check_freshness(const StreamPosition& position,
                                                              std::int64_t now_ms) const noexcept;

    /// Number of streams currently tracked, over all key ids.
    std::size_t tracked_streams() const;
    /// Number of streams currently tracked for `key_id`.
    std::size_t tracked_streams(std::string_view key_id) const;
    /// Number of key ids currently tracked.
    std::size_t tracked_keys() const;
    /// Number of streams evicted so far to stay within max_streams_per_key.
    std::uint64_t evictions() const;
    /// Number of key ids forgotten so far to stay within max_keys (0 when max_keys is at least
    /// the keyring's size).
    std::uint64_t key_evictions() const;
    /// Approximate bytes of memory one tracked stream costs with this guard's window size.
    std::size_t bytes_per_stream() const noexcept;
    /// Approximate bytes of memory one tracked key id costs besides its streams.
    std::size_t bytes_per_key() const noexcept;
    /// Upper bound of the memory the guard's state can take: max_keys * (bytes_per_key() +
    /// max_streams_per_key * bytes_per_stream()).
    std::size_t max_memory_bytes() const noexcept;
    /// The options in force.
    const ReplayGuardOptions& options() const noexcept;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace securemqtt

SECUREMQTT_DLL_INTERFACE_WARNINGS_POP
