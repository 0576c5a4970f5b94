// SPDX-License-Identifier: Apache-2.0
#include "operation_tracker.hpp"

#include <utility>

namespace securemqtt::detail {

void OperationTracker::track_publish(const mqtt::message* msg, std::shared_ptr<CompletionState> state) {
    std::lock_guard<std::mutex> lock(mutex_);
    publishes_.emplace(msg, std::move(state));
}

void OperationTracker::complete_publish(const mqtt::message* msg, Outcome outcome) noexcept {
    std::shared_ptr<CompletionState> state;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        const auto it = publishes_.find(msg);
        if (it == publishes_.end()) return;
        state = std::move(it->second);
        publishes_.erase(it);
    }
    state->complete(std::move(outcome));
}

void OperationTracker::forget_publish(const mqtt::message* msg) noexcept {
    std::lock_guard<std::mutex> lock(mutex_);
    publishes_.erase(msg);
}

std::uintptr_t OperationTracker::track_request(std::shared_ptr<CompletionState> state, std::uint64_t subscription,
                                               const std::string& filter) {
    std::lock_guard<std::mutex> lock(mutex_);
    const std::uintptr_t id = next_request_++;
    requests_.emplace(id, TrackedRequest{std::move(state), subscription, filter});
    return id;
}

std::optional<TrackedRequest> OperationTracker::take_request(std::uintptr_t id) noexcept {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto it = requests_.find(id);
    if (it == requests_.end()) return std::nullopt;
    std::optional<TrackedRequest> request(std::move(it->second));
    requests_.erase(it);
    return request;
}

void OperationTracker::complete_request(std::uintptr_t id, Outcome outcome) noexcept {
    if (auto request = take_request(id)) request->state->complete(std::move(outcome));
}

void OperationTracker::complete_all(const Outcome& outcome) noexcept {
    // Taken out whole (no allocation), completed outside the lock: callbacks run there.
    std::unordered_map<const mqtt::message*, std::shared_ptr<CompletionState>> publishes;
    std::unordered_map<std::uintptr_t, TrackedRequest> requests;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        publishes.swap(publishes_);
        requests.swap(requests_);
    }
    for (auto& entry : publishes) entry.second->complete(outcome);
    for (auto& entry : requests) entry.second.state->complete(outcome);
}

}  // namespace securemqtt::detail
