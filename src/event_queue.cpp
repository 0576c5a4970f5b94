// SPDX-License-Identifier: Apache-2.0
#include "event_queue.hpp"

#include <utility>

namespace securemqtt::detail {

EventQueue::EventQueue(std::function<void(const SessionEvent&)> deliver) : deliver_(std::move(deliver)) {}

EventQueue::~EventQueue() { stop(); }

void EventQueue::push(SessionEvent event) {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        if (stopped_) return;
        events_.push_back(std::move(event));
        if (!thread_.joinable()) thread_ = std::thread([this] { run(); });
    }
    cv_.notify_one();
}

void EventQueue::run() noexcept {
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
        cv_.wait(lock, [this] { return stopped_ || !events_.empty(); });
        if (events_.empty()) return;  // stopped, and all delivered
        const SessionEvent event = std::move(events_.front());
        events_.pop_front();
        lock.unlock();
        deliver_(event);
        lock.lock();
    }
}

void EventQueue::stop() noexcept {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stopped_ = true;
    }
    cv_.notify_all();
    if (!thread_.joinable()) return;
    if (thread_.get_id() == std::this_thread::get_id()) {
        thread_.detach();  // the handler itself ends the session
    } else {
        thread_.join();
    }
}

}  // namespace securemqtt::detail
