// SPDX-License-Identifier: Apache-2.0
// The completing side of a Completion (outcome.hpp), for the session.
#pragma once

#include <securemqtt/outcome.hpp>

#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

namespace securemqtt {

struct Completion::State {
    std::mutex mutex;
    std::condition_variable cv;
    std::optional<Outcome> outcome;
    std::vector<std::function<void(const Outcome&)>> callbacks;
    bool running = false;  // complete() is running the callbacks: later ones queue behind them
    std::thread::id runner;  // the thread running them

    /// Sets the outcome and runs the callbacks, the first time only; false after that.
    bool complete(Outcome result) noexcept;
    bool finished() noexcept {
        std::lock_guard<std::mutex> lock(mutex);
        return outcome.has_value();
    }
};

namespace detail {

struct CompletionAccess {
    using State = Completion::State;
    /// A pending completion and the handle that completes it.
    static std::pair<Completion, std::shared_ptr<Completion::State>> make();
    static Completion finished(Outcome outcome);
};

using CompletionState = CompletionAccess::State;

}  // namespace detail
}  // namespace securemqtt
