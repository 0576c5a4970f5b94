// SPDX-License-Identifier: Apache-2.0
// The session's subscriptions: what it sends the broker at every connection, and which handlers
// a verified message reaches. Copy-on-write: a delivery walks a snapshot while subscribe() and
// unsubscribe() make the next list, so no lock is held while handlers run.
#pragma once

#include "completion.hpp"

#include <securemqtt/secure_session.hpp>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace securemqtt::detail {

struct Subscription {
    Subscription(const std::string& f, int q, SecureSession::Handler h);
    std::string filter;  ///< as sent to the broker
    std::string match;   ///< what topics are matched against ($share/GROUP/ removed)
    int qos = 0;
    SecureSession::Handler handler;
    /// subscribe_async() before connecting: completed by the SUBACK at the next connection.
    std::shared_ptr<CompletionState> pending;
    std::uint64_t id = 0;  ///< this subscription, not another of the same filter made later
};
using SubscriptionList = std::vector<Subscription>;

class SubscriptionRegistry {
public:
    /// The subscriptions now, in the order they were made (a replaced one keeps its place).
    std::shared_ptr<const SubscriptionList> snapshot() const;

    /// Adds `filter`, or replaces the subscription of the same filter (whose subscribe still
    /// waiting for its SUBACK completes as failed, superseded). `pending` completes with this
    /// subscription's SUBACK. Returns the new subscription's id.
    std::uint64_t add(const std::string& filter, int qos, SecureSession::Handler handler,
                      std::shared_ptr<CompletionState> pending);
    /// Removes `filter` (a subscribe of it still waiting completes as failed, superseded).
    void remove(const std::string& filter);
    /// Removes the subscription `id` of `filter` (id 0: whichever it is), as the broker refused
    /// it; false when it is gone already (a later one of the same filter stands). Never throws:
    /// out of memory, it stays.
    bool drop(const std::string& filter, std::uint64_t id) noexcept;
    /// Completes every subscribe still waiting with `outcome` (the session's end).
    void close_pending(const Outcome& outcome) const noexcept;

private:
    mutable std::mutex mutex_;
    std::shared_ptr<const SubscriptionList> list_ = std::make_shared<SubscriptionList>();
    std::uint64_t next_id_ = 1;
};

}  // namespace securemqtt::detail
