// SPDX-License-Identifier: Apache-2.0
// The session's lifecycle events on their way to the application: queued where they happen
// and delivered by one thread of the queue's own, in order, one at a time, never with a lock
// held and never on Paho's thread -- so that a handler may call anything, connect() and
// disconnect() included, and may block.
#pragma once

#include <securemqtt/secure_session.hpp>

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

namespace securemqtt::detail {

class EventQueue {
public:
    /// `deliver` is called with each event on the queue's thread (started at the first push);
    /// it must not throw.
    explicit EventQueue(std::function<void(const SessionEvent&)> deliver);
    /// stop().
    ~EventQueue();
    EventQueue(const EventQueue&) = delete;
    EventQueue& operator=(const EventQueue&) = delete;

    /// Queues `event`; nothing once stopped. Throws std::exception when there is no memory for
    /// it or no thread to deliver it (the event is then lost).
    void push(SessionEvent event);
    /// Delivers what is queued, then no more. Called from the delivering thread itself (a
    /// handler ending the session), it detaches that thread instead of waiting for it.
    void stop() noexcept;

private:
    void run() noexcept;

    std::function<void(const SessionEvent&)> deliver_;
    std::mutex mutex_;
    std::condition_variable cv_;
    std::deque<SessionEvent> events_;
    bool stopped_ = false;
    std::thread thread_;
};

}  // namespace securemqtt::detail
