// SPDX-License-Identifier: Apache-2.0
#include "subscription_registry.hpp"

#include <securemqtt/topic.hpp>

namespace securemqtt::detail {
namespace {

// Completes, as superseded, what an entry replaced or removed before its SUBACK still waited
// for (outside the lock: completion callbacks run there).
void supersede(const std::vector<std::shared_ptr<CompletionState>>& pending, const char* why) noexcept {
    for (const auto& state : pending) state->complete(Outcome{OutcomeStatus::failed, ReasonCode::success, why});
}

}  // namespace

Subscription::Subscription(const std::string& f, int q, SecureSession::Handler h)
    : filter(f), match(matching_filter(f)), qos(q), handler(std::move(h)) {}

std::shared_ptr<const SubscriptionList> SubscriptionRegistry::snapshot() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return list_;
}

std::uint64_t SubscriptionRegistry::add(const std::string& filter, int qos, SecureSession::Handler handler,
                                        std::shared_ptr<CompletionState> pending) {
    std::uint64_t id = 0;
    std::vector<std::shared_ptr<CompletionState>> superseded;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        auto next = std::make_shared<SubscriptionList>(*list_);
        id = next_id_++;
        Subscription* entry = nullptr;
        for (Subscription& sub : *next) {
            if (sub.filter == filter) {
                if (sub.pending) superseded.push_back(sub.pending);
                sub = Subscription(filter, qos, std::move(handler));
                entry = &sub;
                break;
            }
        }
        if (!entry) entry = &next->emplace_back(filter, qos, std::move(handler));
        entry->pending = std::move(pending);
        entry->id = id;
        list_ = std::move(next);
    }
    supersede(superseded, "replaced by a later subscribe of the same filter before the broker answered");
    return id;
}

void SubscriptionRegistry::remove(const std::string& filter) {
    std::vector<std::shared_ptr<CompletionState>> superseded;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        auto next = std::make_shared<SubscriptionList>();
        for (const Subscription& sub : *list_) {
            if (sub.filter != filter) {
                next->push_back(sub);
            } else if (sub.pending) {
                superseded.push_back(sub.pending);
            }
        }
        list_ = std::move(next);
    }
    supersede(superseded, "unsubscribed before the broker answered the subscribe");
}

bool SubscriptionRegistry::drop(const std::string& filter, std::uint64_t id) noexcept {
    try {
        std::lock_guard<std::mutex> lock(mutex_);
        auto next = std::make_shared<SubscriptionList>();
        bool dropped = false;
        for (const Subscription& sub : *list_) {
            if (sub.filter == filter && (id == 0 || sub.id == id)) {
                dropped = true;
            } else {
                next->push_back(sub);
            }
        }
        if (dropped) list_ = std::move(next);
        return dropped;
    } catch (const std::exception&) {  // out of memory: it stays, refused again later
        return false;
    }
}

void SubscriptionRegistry::close_pending(const Outcome& outcome) const noexcept {
    for (const Subscription& sub : *snapshot()) {
        if (sub.pending) sub.pending->complete(outcome);  // finished ones ignore a second outcome
    }
}

}  // namespace securemqtt::detail
