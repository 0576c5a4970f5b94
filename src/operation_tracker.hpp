// SPDX-License-Identifier: Apache-2.0
// Outcomes not known yet: publishes by their message (the same message object follows a
// publish carried over to a new client), subscribes and unsubscribes by an id handed to Paho
// as the token's user context. Completed outside the lock; whatever is left when the session
// ends is completed as session_closed.
#pragma once

#include "completion.hpp"

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

namespace mqtt {
class message;
}

namespace securemqtt::detail {

/// A SUBSCRIBE or UNSUBSCRIBE waiting for its answer.
struct TrackedRequest {
    std::shared_ptr<CompletionState> state;
    std::uint64_t subscription = 0;  ///< the subscription's id, for a SUBSCRIBE
    std::string filter;
};

class OperationTracker {
public:
    void track_publish(const mqtt::message* msg, std::shared_ptr<CompletionState> state);
    /// Completes the publish of `msg` (nothing when it is not tracked, or no more).
    void complete_publish(const mqtt::message* msg, Outcome outcome) noexcept;
    /// Stops tracking `msg` without completing it (it was never handed over).
    void forget_publish(const mqtt::message* msg) noexcept;

    /// Tracks a request; returns its id.
    std::uintptr_t track_request(std::shared_ptr<CompletionState> state, std::uint64_t subscription = 0,
                                 const std::string& filter = std::string());
    /// The request `id` stands for, no longer tracked; nothing when it is not (any more).
    std::optional<TrackedRequest> take_request(std::uintptr_t id) noexcept;
    void complete_request(std::uintptr_t id, Outcome outcome) noexcept;

    /// Completes everything still tracked with `outcome`, and tracks nothing more of it.
    void complete_all(const Outcome& outcome) noexcept;

private:
    std::mutex mutex_;
    std::unordered_map<const mqtt::message*, std::shared_ptr<CompletionState>> publishes_;
    std::unordered_map<std::uintptr_t, TrackedRequest> requests_;
    std::uintptr_t next_request_ = 1;
};

}  // namespace securemqtt::detail
