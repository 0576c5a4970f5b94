// SPDX-License-Identifier: Apache-2.0
// Outcomes of MQTT operations: what the broker (or the connection) made of a publish, a
// subscribe or an unsubscribe, to wait on or to be called back with.
#pragma once

#include <securemqtt/export.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

SECUREMQTT_DLL_INTERFACE_WARNINGS_PUSH  // MSVC C4251/C4275 on exported classes: see export.hpp

namespace securemqtt {

/// MQTT 5 reason codes (MQTT 5 §2.4), by name. Under MQTT 3.1.1 a broker gives only success
/// and, in a SUBACK, failure (0x80), which is unspecified_error here.
enum class ReasonCode : std::uint8_t {
    success = 0x00,  ///< also "granted QoS 0" and "normal disconnection"
    granted_qos_1 = 0x01,
    granted_qos_2 = 0x02,
    disconnect_with_will_message = 0x04,
    no_matching_subscribers = 0x10,  ///< a PUBACK's success: nobody subscribed
    no_subscription_existed = 0x11,  ///< an UNSUBACK's success: nothing to remove
    continue_authentication = 0x18,
    re_authenticate = 0x19,
    unspecified_error = 0x80,
    malformed_packet = 0x81,
    protocol_error = 0x82,
    implementation_specific_error = 0x83,
    unsupported_protocol_version = 0x84,
    client_identifier_not_valid = 0x85,
    bad_user_name_or_password = 0x86,
    not_authorized = 0x87,
    server_unavailable = 0x88,
    server_busy = 0x89,
    banned = 0x8A,
    server_shutting_down = 0x8B,
    bad_authentication_method = 0x8C,
    keep_alive_timeout = 0x8D,
    session_taken_over = 0x8E,
    topic_filter_invalid = 0x8F,
    topic_name_invalid = 0x90,
    packet_identifier_in_use = 0x91,
    packet_identifier_not_found = 0x92,
    receive_maximum_exceeded = 0x93,
    topic_alias_invalid = 0x94,
    packet_too_large = 0x95,
    message_rate_too_high = 0x96,
    quota_exceeded = 0x97,
    administrative_action = 0x98,
    payload_format_invalid = 0x99,
    retain_not_supported = 0x9A,
    qos_not_supported = 0x9B,
    use_another_server = 0x9C,
    server_moved = 0x9D,
    shared_subscriptions_not_supported = 0x9E,
    connection_rate_exceeded = 0x9F,
    maximum_connect_time = 0xA0,
    subscription_identifiers_not_supported = 0xA1,
    wildcard_subscriptions_not_supported = 0xA2,
};

/// The code's snake_case name, e.g. "not_authorized"; "unknown_reason_code" for a value MQTT 5
/// does not define.
SECUREMQTT_EXPORT std::string_view to_string(ReasonCode code) noexcept;

/// How an operation ended. A closed set: programs may switch on it.
enum class OutcomeStatus : std::uint8_t {
    /// The broker acknowledged it (QoS 0 publish: written to the connection). Outcome::reason
    /// may still say more (no_matching_subscribers, granted_qos_1, ...).
    success,
    /// The broker answered with a failure reason code: Outcome::reason (an MQTT 5 code, or
    /// unspecified_error for an MQTT 3.1.1 SUBACK failure).
    refused,
    /// The connection ended and took the operation with it: a QoS >= 1 publish of a clean
    /// session unanswered at the loss (the MQTT client discards those), a subscribe's or
    /// unsubscribe's request. (A subscription whose SUBACK a loss cut short is not completed
    /// then: the next connection subscribes again, and its SUBACK completes it.)
    connection_lost,
    /// A blocking form gave up waiting; the operation may still complete.
    timeout,
    /// The offline buffer was full: the publish was never handed over (also thrown by publish()).
    buffer_full,
    /// The session was disconnected or destroyed first.
    session_closed,
    /// The MQTT client failed it for another reason: Outcome::detail says which.
    failed,
};

/// The status's snake_case name, e.g. "connection_lost".
SECUREMQTT_EXPORT std::string_view to_string(OutcomeStatus status) noexcept;

/// What an operation came to.
struct Outcome {
    OutcomeStatus status = OutcomeStatus::success;
    ReasonCode reason = ReasonCode::success;  ///< the broker's code, when it gave one
    std::string detail;                       ///< one line for a log; never key material
    bool ok() const noexcept { return status == OutcomeStatus::success; }
    explicit operator bool() const noexcept { return ok(); }
};

namespace detail {
struct CompletionAccess;
}

/// The outcome of one operation, when it comes. Cheap to copy (copies share the outcome);
/// thread-safe; a moved-from one reads as a success. An operation completes exactly once, and
/// always: by the broker's answer, a connection loss it cannot survive, or the end of the
/// session.
class SECUREMQTT_EXPORT Completion {
public:
    /// An operation that already succeeded (nothing to wait for).
    Completion();

    /// True once the outcome is known.
    bool done() const noexcept;
    /// Waits for the outcome.
    Outcome wait() const;
    /// Waits at most `timeout` (milliseconds::max(): for ever); nothing if the outcome is not
    /// known by then.
    std::optional<Outcome> wait_for(std::chrono::milliseconds timeout) const;
    /// Calls `callback` once with the outcome, on the thread that completes the operation, or at
    /// once on this thread if it is already done. That is usually the MQTT client's thread,
    /// where message handlers run; but an operation the session's end, disconnect(), reload()
    /// or a reconnection completes is completed on that thread, with the session's locks held.
    /// So in a callback: do not block, do not wait on a Completion, and call neither connect(),
    /// disconnect(), reload(), flush() nor the blocking subscribe()/unsubscribe() (use the
    /// _async forms); publish() and stats() are fine. Callbacks added before the outcome run in
    /// the order added; one a callback adds runs after them, on the same thread; one another
    /// thread adds once the outcome is known runs at once on that thread, even while the earlier
    /// ones still run. An exception from a callback is caught and ignored.
    void then(std::function<void(const Outcome&)> callback) const;

private:
    friend struct detail::CompletionAccess;
    struct State;
    explicit Completion(std::shared_ptr<State> state) noexcept;
    std::shared_ptr<State> state_;
};

}  // namespace securemqtt

SECUREMQTT_DLL_INTERFACE_WARNINGS_POP
