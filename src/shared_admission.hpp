// SPDX-License-Identifier: Apache-2.0
// SharedAdmission: how a ReplayGuard with a shared store (Redis) admits and confirms messages —
// reservations held for a lease, waiting (bounded) while the store is unreachable or another
// verifier holds the message, and telling the application when the store comes and goes.
#pragma once

#include <securemqtt/replay_guard.hpp>
#include <securemqtt/replay_store.hpp>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <tuple>

namespace securemqtt::detail {

class SharedAdmission {
public:
    /// Checks the options that matter here; throws ConfigError.
    SharedAdmission(const ReplayGuardOptions& options, std::shared_ptr<ReplayStore> store);

    /// Reserves `pos` in the store (see ReplayGuard::admit); freshness is checked already.
    std::optional<RejectReason> admit(const StreamPosition& pos) noexcept;
    /// Records a reserved `pos` in the store (see ReplayGuard::confirm).
    bool confirm(const StreamPosition& pos) noexcept;

    std::uint64_t failures() const noexcept { return failures_.load(std::memory_order_relaxed); }
    std::uint64_t lease_overruns() const noexcept { return lease_overruns_.load(std::memory_order_relaxed); }

private:
    using Id = std::tuple<std::string, std::uint64_t, std::uint64_t>;  // key id, stream, counter
    ReplayStore::SharedRules rules_for(const StreamPosition& pos) const noexcept;
    // Asks `ask` until it decides or store_hold_ms ran out; nullopt then.
    template <typename Ask>
    std::optional<ReplayStore::Answer> decide(Ask ask) noexcept;
    void note(bool available) noexcept;
    void forget(const Id& id) noexcept;

    const ReplayGuardOptions options_;
    const std::shared_ptr<ReplayStore> store_;
    const std::string holder_;
    std::mutex mutex_;
    // Reserved by this guard and not confirmed yet: a copy arriving meanwhile on another thread
    // is this process's own duplicate, not another verifier's reservation.
    std::set<Id> in_flight_;
    std::mutex note_mutex_;  // held while reporting a change of availability
    bool available_ = true;
    std::atomic<std::uint64_t> failures_{0}, lease_overruns_{0};
};

}  // namespace securemqtt::detail
