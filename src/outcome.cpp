// SPDX-License-Identifier: Apache-2.0
#include "completion.hpp"

#include "bounded_wait.hpp"

#include <algorithm>
#include <utility>

namespace securemqtt {

std::string_view to_string(ReasonCode code) noexcept {
    switch (code) {
        case ReasonCode::success: return "success";
        case ReasonCode::granted_qos_1: return "granted_qos_1";
        case ReasonCode::granted_qos_2: return "granted_qos_2";
        case ReasonCode::disconnect_with_will_message: return "disconnect_with_will_message";
        case ReasonCode::no_matching_subscribers: return "no_matching_subscribers";
        case ReasonCode::no_subscription_existed: return "no_subscription_existed";
        case ReasonCode::continue_authentication: return "continue_authentication";
        case ReasonCode::re_authenticate: return "re_authenticate";
        case ReasonCode::unspecified_error: return "unspecified_error";
        case ReasonCode::malformed_packet: return "malformed_packet";
        case ReasonCode::protocol_error: return "protocol_error";
        case ReasonCode::implementation_specific_error: return "implementation_specific_error";
        case ReasonCode::unsupported_protocol_version: return "unsupported_protocol_version";
        case ReasonCode::client_identifier_not_valid: return "client_identifier_not_valid";
        case ReasonCode::bad_user_name_or_password: return "bad_user_name_or_password";
        case ReasonCode::not_authorized: return "not_authorized";
        case ReasonCode::server_unavailable: return "server_unavailable";
        case ReasonCode::server_busy: return "server_busy";
        case ReasonCode::banned: return "banned";
        case ReasonCode::server_shutting_down: return "server_shutting_down";
        case ReasonCode::bad_authentication_method: return "bad_authentication_method";
        case ReasonCode::keep_alive_timeout: return "keep_alive_timeout";
        case ReasonCode::session_taken_over: return "session_taken_over";
        case ReasonCode::topic_filter_invalid: return "topic_filter_invalid";
        case ReasonCode::topic_name_invalid: return "topic_name_invalid";
        case ReasonCode::packet_identifier_in_use: return "packet_identifier_in_use";
        case ReasonCode::packet_identifier_not_found: return "packet_identifier_not_found";
        case ReasonCode::receive_maximum_exceeded: return "receive_maximum_exceeded";
        case ReasonCode::topic_alias_invalid: return "topic_alias_invalid";
        case ReasonCode::packet_too_large: return "packet_too_large";
        case ReasonCode::message_rate_too_high: return "message_rate_too_high";
        case ReasonCode::quota_exceeded: return "quota_exceeded";
        case ReasonCode::administrative_action: return "administrative_action";
        case ReasonCode::payload_format_invalid: return "payload_format_invalid";
        case ReasonCode::retain_not_supported: return "retain_not_supported";
        case ReasonCode::qos_not_supported: return "qos_not_supported";
        case ReasonCode::use_another_server: return "use_another_server";
        case ReasonCode::server_moved: return "server_moved";
        case ReasonCode::shared_subscriptions_not_supported: return "shared_subscriptions_not_supported";
        case ReasonCode::connection_rate_exceeded: return "connection_rate_exceeded";
        case ReasonCode::maximum_connect_time: return "maximum_connect_time";
        case ReasonCode::subscription_identifiers_not_supported: return "subscription_identifiers_not_supported";
        case ReasonCode::wildcard_subscriptions_not_supported: return "wildcard_subscriptions_not_supported";
    }
    return "unknown_reason_code";
}

std::string_view to_string(OutcomeStatus status) noexcept {
    switch (status) {
        case OutcomeStatus::success: return "success";
        case OutcomeStatus::refused: return "refused";
        case OutcomeStatus::connection_lost: return "connection_lost";
        case OutcomeStatus::timeout: return "timeout";
        case OutcomeStatus::buffer_full: return "buffer_full";
        case OutcomeStatus::session_closed: return "session_closed";
        case OutcomeStatus::failed: return "failed";
    }
    return "unknown";
}

bool Completion::State::complete(Outcome result) noexcept {
    std::vector<std::function<void(const Outcome&)>> run;
    const Outcome* final_outcome = nullptr;
    {
        std::lock_guard<std::mutex> lock(mutex);
        if (outcome) return false;
        outcome = std::move(result);
        run.swap(callbacks);
        running = true;
        runner = std::this_thread::get_id();
        final_outcome = &*outcome;  // never changes again
    }
    cv.notify_all();
    // Callbacks added meanwhile (then() from another thread) run after these, here.
    for (;;) {
        for (auto& callback : run) {
            try {
                callback(*final_outcome);
            } catch (...) {  // documented: ignored
            }
        }
        run.clear();
        std::lock_guard<std::mutex> lock(mutex);
        if (callbacks.empty()) {
            running = false;
            return true;
        }
        run.swap(callbacks);
    }
}

Completion::Completion() : Completion(detail::CompletionAccess::finished(Outcome{})) {}
Completion::Completion(std::shared_ptr<State> state) noexcept : state_(std::move(state)) {}

// A moved-from Completion has no state: it reads as the default one, a success.
bool Completion::done() const noexcept {
    if (!state_) return true;
    std::lock_guard<std::mutex> lock(state_->mutex);
    return state_->outcome.has_value();
}

Outcome Completion::wait() const {
    if (!state_) return Outcome{};
    std::unique_lock<std::mutex> lock(state_->mutex);
    state_->cv.wait(lock, [&] { return state_->outcome.has_value(); });
    return *state_->outcome;
}

std::optional<Outcome> Completion::wait_for(std::chrono::milliseconds timeout) const {
    if (!state_) return Outcome{};
    std::unique_lock<std::mutex> lock(state_->mutex);
    // Through a deadline that saturates: wait_for(milliseconds::max()) would overflow into none.
    detail::wait_until_bounded(state_->cv, lock, detail::deadline_after(timeout),
                               [&] { return state_->outcome.has_value(); });
    return state_->outcome;
}

void Completion::then(std::function<void(const Outcome&)> callback) const {
    if (!callback) return;
    if (!state_) {
        try {
            callback(Outcome{});
        } catch (...) {  // documented: ignored
        }
        return;
    }
    {
        // Queued while pending, and when added by a callback of this completion (it runs after
        // the ones before it, on the completing thread). Known to any other thread: at once, there.
        std::lock_guard<std::mutex> lock(state_->mutex);
        if (!state_->outcome || (state_->running && state_->runner == std::this_thread::get_id())) {
            state_->callbacks.push_back(std::move(callback));
            return;
        }
    }
    try {
        callback(*state_->outcome);
    } catch (...) {  // documented: ignored
    }
}

namespace detail {

std::pair<Completion, std::shared_ptr<Completion::State>> CompletionAccess::make() {
    auto state = std::make_shared<Completion::State>();
    return {Completion(state), state};
}

Completion CompletionAccess::finished(Outcome outcome) {
    auto state = std::make_shared<Completion::State>();
    state->outcome = std::move(outcome);
    return Completion(std::move(state));
}

}  // namespace detail
}  // namespace securemqtt
