// SPDX-License-Identifier: Apache-2.0
#include <securemqtt/secure_session.hpp>

#include <securemqtt/replay_store.hpp>

#include "bounded_wait.hpp"
#include "completion.hpp"
#include "connect_diagnosis.hpp"
#include "credential_file.hpp"
#include "event_queue.hpp"
#include "key_unlock.hpp"
#include "mqtt_properties.hpp"
#include "openssl_init.hpp"
#include "operation_tracker.hpp"
#include "subscription_registry.hpp"
#include "tls_protocol_floor.hpp"
#include "tls_revocation.hpp"
#include "topic_match.hpp"
#include "user_code.hpp"

#include <securemqtt/clock.hpp>
#include <securemqtt/envelope.hpp>
#include <securemqtt/replay_store.hpp>
#include <securemqtt/signer.hpp>
#include <securemqtt/topic.hpp>

#include <mqtt/async_client.h>

#include <openssl/rand.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <thread>
#include <utility>
#include <map>
#include <deque>
#include <mutex>
#include <set>
#include <unordered_map>
#include <vector>

namespace securemqtt {
namespace {

std::string random_client_id() {
    unsigned char bytes[8];
    if (RAND_bytes(bytes, sizeof bytes) != 1) throw ConfigError("session: cannot draw a random client id");
    static const char digits[] = "0123456789abcdef";
    std::string id = "securemqtt-";
    for (unsigned char b : bytes) {
        id += digits[b >> 4];
        id += digits[b & 15];
    }
    return id;
}

// Process-wide, because Paho forces it: MQTT clients whose memory Paho has already freed in
// part (see SecureSession::Impl::renew_client_if_broken) stay here, disconnected and silent,
// until the process ends. One per such failure, each with Paho's copies of what it held.
void park_broken_client(std::shared_ptr<mqtt::async_client> client) {
    static std::mutex mutex;
    static auto* parked = new std::vector<std::shared_ptr<mqtt::async_client>>();  // never freed, by design
    std::lock_guard<std::mutex> lock(mutex);
    parked->push_back(std::move(client));
}

}  // namespace

struct SecureSession::Impl {
    explicit Impl(SessionOptions o) : options(std::move(o)) {}
    ~Impl() { wipe_secrets(options.tls); }
    Impl(const Impl&) = delete;
    Impl& operator=(const Impl&) = delete;

    void log(LogLevel level, const std::string& message) const noexcept {
        if (!options.logger) return;
        try {
            options.logger(level, message);
        } catch (...) {  // a logger must not break the session
        }
    }

    void on_message(const mqtt::const_message_ptr& msg) noexcept;
    /// Hands a signed message to the client (or holds it while the client is replaced), with
    /// its outcome tracked. `properties` (MQTT 5) may be null.
    Completion publish_signed(std::string_view topic, std::string envelope, int qos, bool retain,
                              const mqtt::properties* properties);
    std::string store_name() const {
        const ReplayStore* store = verifier->replay_guard().store();
        return store ? store->location() : std::string();
    }
    void note_unrouted(const std::string& topic) noexcept;
    void on_connected(const std::string& cause) noexcept;
    void on_connection_lost(const std::string& cause) noexcept;
    std::vector<std::pair<std::string, mqtt::token_ptr>> restore_subscriptions(mqtt::async_client& client) noexcept;
    mqtt::connect_options make_connect_options();
    // The probe that finds out why gets what is left of the connect timeout, so that it does
    // not double a failed connect's time (its TCP and TLS steps are each bounded by that).
    [[noreturn]] void throw_connect_failure(const std::string& paho_message, int paho_code,
                                            std::chrono::milliseconds time_left);

    SessionOptions options;
    std::string host;
    int port = 8883;
    std::string paho_uri;
    PreflightReport report;  // guarded by `mutex`; written only under `lifecycle` too
    std::vector<std::unique_ptr<detail::CredentialFile>> credential_files;
    detail::RevocationSwitch revocation;  // process-wide CRL checking while crl_file is set
    detail::TlsSetup tls_setup;  // from options.tls by prepare_tls(): for Paho and the diagnosis probe

    std::unique_ptr<Signer> signer;
    // The will is a stream of its own, signed afresh for every connection attempt: one envelope
    // reused across connections would be `replayed` the second time, and one from the main
    // stream would fall behind its replay window as the session publishes.
    std::unique_ptr<Signer> will_signer;
    std::unique_ptr<Verifier> verifier;
    std::string client_id;

    // The Paho client can be replaced by reload(); everyone else takes a reference under this
    // lock and uses it outside.
    mutable std::mutex client_mutex;
    // Orders publishes around a replacement of the client (reload(), renew_client_if_broken()):
    // none may land on the old client after its messages were gathered, nor overtake them on
    // the new one, or a receiver would find them behind its replay window. While the gate is
    // closed, publish() parks messages in `held` instead of waiting: it may run in a handler
    // on Paho's thread, holding a lock of Paho's the replacement needs.
    mutable std::mutex gate_mutex;
    std::condition_variable gate_cv;
    int publishes_in_progress = 0;  // inside current()->publish()
    bool gate_closed = false;
    std::vector<mqtt::const_message_ptr> held;
    std::size_t in_transit = 0;  // gathered from the old client, not yet handed to the new one
    // Swaps in `fresh`, then publishes on it, oldest first: everything the old client holds
    // unacknowledged, what waits to go out again, and what publish() parked meanwhile.
    // Returns the old client and how many of its messages were carried over.
    std::pair<std::shared_ptr<mqtt::async_client>, std::size_t> replace_client(
        std::shared_ptr<mqtt::async_client> fresh) noexcept;
    std::shared_ptr<mqtt::async_client> client_;
    std::shared_ptr<mqtt::async_client> current() const {
        std::lock_guard<std::mutex> lock(client_mutex);
        return client_;
    }
    std::mutex lifecycle;  // serialises connect, disconnect, reload and reconnection attempts

    // Reconnection after a loss is ours, not Paho's: Paho's automatic reconnect would send the
    // will envelope of the first connection again. One thread, started at the first loss.
    void reconnect_loop() noexcept;
    void request_reconnect() noexcept;
    void stop_reconnecting() noexcept;
    bool still_wanted() noexcept;
    bool still_publishing() noexcept;  // connect() called, disconnect() and the destructor not since
    void set_wanted(bool wanted) noexcept;
    std::mutex reconnect_mutex;
    std::condition_variable reconnect_cv;
    bool session_wanted = false;    // connect() was called and disconnect() was not since
    bool reconnect_wanted = false;  // a loss happened while the session was wanted
    std::uint64_t losses_seen = 0;  // counts request_reconnect(): a loss during an attempt is not lost
    bool reconnect_stop = false;    // the session is being destroyed
    std::thread reconnector;

    void prepare_tls();
    // `carried`: room for that many more queued publishes than offline_buffer, for a client
    // that takes over another's unacknowledged ones (queued and in flight).
    std::shared_ptr<mqtt::async_client> make_client(std::size_t carried = 0);
    // `strict`: a subscription the broker refuses fails the connect (connect(); not reload()).
    void connect_client(mqtt::async_client& client, bool strict = false);

    mutable std::mutex mutex;
    detail::SubscriptionRegistry subscriptions;
    // Publishes whose outcome Paho left unknown: the client that replaces the broken one
    // publishes them (replace_client), or the session's end counts them as failures.
    std::vector<mqtt::const_message_ptr> send_again;
    void drop_queued_again() noexcept;
    // Publishes accepted but not (yet) handed to the current client: send_again and held.
    std::size_t queued_outside_client() const {
        std::size_t n = 0;
        {
            std::lock_guard<std::mutex> lock(mutex);
            n += send_again.size();
        }
        std::lock_guard<std::mutex> lock(gate_mutex);
        return n + held.size() + in_transit;
    }
    // Set when Paho failed a publish under a broken write: its copy of that message may be
    // corrupt (paho.mqtt.c #1621) and would be resent at every reconnect.
    std::atomic<bool> client_broken{false};
    void renew_client_if_broken() noexcept;
    RejectHandler reject_handler;
    EventHandler event_handler;
    // The reconnection attempt's connect token, for on_connected to read session-present from.
    // Paho may call on_connected before the loop has stored it: it waits for it (briefly).
    std::mutex reconnect_token_mutex;
    std::condition_variable reconnect_token_cv;
    mqtt::token_ptr reconnect_token;
    bool reconnect_token_expected = false;
    void emit(SessionEvent event) noexcept {
        try {
            {
                std::lock_guard<std::mutex> lock(mutex);
                if (!event_handler) return;
            }
            events.push(std::move(event));
        } catch (const std::exception&) {  // no memory, or no thread: the event is lost, said
            log(LogLevel::error, "a lifecycle event could not be queued");
        }
    }
    void deliver_event(const SessionEvent& event) noexcept {
        EventHandler handler;
        {
            std::lock_guard<std::mutex> guard(mutex);
            handler = event_handler;
        }
        if (!handler) return;
        detail::call_user_code([&] { handler(event); }, [] { return std::string("event handler"); }, handler_errors,
                               [this](const std::string& line) { log(LogLevel::error, line); });
    }
    std::set<std::string> unrouted_topics;  // those already logged
    // True from connect_client() starting a connection until Paho's connected callback for it.
    // Paho calls that callback after completing the connect token, so connect() may already be
    // past its wait: the callback, not connect(), clears the flag.
    bool connect_pending = false;

    detail::OperationTracker operations;  // outcomes not known yet
    // How an operation Paho failed with `code` ended: cut short by a loss (a clean session's
    // unanswered operations are discarded: MQTTASYNC_OPERATION_INCOMPLETE), or by the session's end.
    OutcomeStatus loss_status(int code) noexcept {
        if (code != MQTTASYNC_DISCONNECTED && code != MQTTASYNC_FAILURE && code != MQTTASYNC_OPERATION_INCOMPLETE) {
            return OutcomeStatus::failed;
        }
        return still_publishing() ? OutcomeStatus::connection_lost : OutcomeStatus::session_closed;
    }
    // A subscription the broker refused is no longer one: restoring it at every reconnection
    // would only be refused again (and fail connect()). Only that subscription (`id`): one of
    // the same filter made meanwhile stands.
    void drop_refused(const std::string& filter, std::uint64_t id, const std::string& why) noexcept {
        if (subscriptions.drop(filter, id)) {
            log(LogLevel::error, "subscribe '" + filter + "' " + why + "; the subscription is dropped");
        }
    }
    void close_outcomes() noexcept {
        const Outcome closed{OutcomeStatus::session_closed, ReasonCode::success, "the session ended first"};
        subscriptions.close_pending(closed);
        operations.complete_all(closed);
    }
    // Subscribes and unsubscribes: the outcome from the SUBACK's or UNSUBACK's reason codes.
    struct RequestListener : mqtt::iaction_listener {
        explicit RequestListener(Impl& s) : session(s) {}
        void on_success(const mqtt::token& tok) override;
        void on_failure(const mqtt::token& tok) override;
        Impl& session;
    } request_listener{*this};
    // Sends SUBSCRIBE for `sub` on `client`, its outcome to `state` (may be null).
    mqtt::token_ptr send_subscribe(mqtt::async_client& client, const std::string& filter, int qos,
                                   const std::shared_ptr<detail::CompletionState>& state, std::uint64_t subscription);

    // Counts and names publishes that end in failure (an MQTT 5 refusal, a lost connection the
    // message could not survive), and publishes again those whose outcome Paho left unknown;
    // runs on Paho's thread.
    struct PublishListener : mqtt::iaction_listener {
        explicit PublishListener(Impl& s) : session(s) {}
        void on_success(const mqtt::token& tok) override;
        void on_failure(const mqtt::token& tok) override;
        Impl& session;
    } publish_listener{*this};

    std::atomic<std::uint64_t> published{0}, publish_failures{0}, publishes_sent_again{0}, verified{0}, unrouted{0}, reconnects{0},
        connection_losses{0}, handler_errors{0}, replay_store_failures{0};
    std::atomic<bool> store_outage{false};  // the last confirmation failed: logged once until one succeeds
    std::array<std::atomic<std::uint64_t>, reject_reason_count> rejected{};
    // Last: destroyed first, while what its deliveries use still exists.
    detail::EventQueue events{[this](const SessionEvent& event) { deliver_event(event); }};
};

void SecureSession::Impl::on_message(const mqtt::const_message_ptr& msg) noexcept {
    if (!msg) return;
    const std::string& topic = msg->get_topic();
    const std::string& payload = msg->get_payload();
    // The properties it arrived with: the covered ones go into the MAC check (a message signed
    // without them and arriving with some is bad_mac). Only MQTT 5 messages have any.
    MessageProperties properties;
    std::vector<std::uint8_t> covered;
    bool early_reject = false;
    if (msg->get_properties().size() != 0) {
        try {
            if (detail::from_paho(msg->get_properties(), properties)) {
                encode_covered_properties(properties, covered);
            } else {
                early_reject = true;  // a single-valued property twice: neither copy can be trusted
            }
        } catch (...) {  // out of memory: fail closed, counted like any rejection
            early_reject = true;
        }
    }
    const VerifyResult result =
        early_reject ? VerifyResult(RejectReason::malformed) : verifier->verify(topic, ByteView(payload), msg->is_retained(), covered);
    if (!result) {
        rejected[static_cast<std::size_t>(result.reason())].fetch_add(1, std::memory_order_relaxed);
        RejectHandler handler;
        {
            std::lock_guard<std::mutex> lock(mutex);
            handler = reject_handler;
        }
        if (handler) {
            detail::call_user_code([&] { handler(topic, result.reason()); },
                                   [] { return std::string("on_rejected handler"); }, handler_errors,
                                   [this](const std::string& line) { log(LogLevel::error, line); });
        }
        return;
    }
    const VerifiedMessage& v = result.message();
    Message m;
    m.topic = topic;
    m.payload = v.payload;
    m.key_id = v.key_id;
    m.timestamp_ms = v.timestamp_ms;
    m.qos = static_cast<QoS>(msg->get_qos());
    m.retained = msg->is_retained();
    if (v.utf8) properties.payload_format = PayloadFormat::utf8;
    m.properties = std::move(properties);
    verified.fetch_add(1, std::memory_order_relaxed);
    const auto list = subscriptions.snapshot();
    bool routed = false;
    for (const detail::Subscription& s : *list) {
        if (!detail::valid_filter_matches(s.match, topic)) continue;  // checked in subscribe()
        if (routed && options.delivery == Delivery::once) break;
        routed = true;
        detail::call_user_code([&] { s.handler(m); }, [&] { return "handler for '" + s.filter + "'"; },
                               handler_errors, [this](const std::string& line) { log(LogLevel::error, line); });
    }
    if (!routed) note_unrouted(topic);
    // The at-least-once boundary: the message becomes durable only now, after its handlers
    // returned (or threw), and before Paho acknowledges it to the broker, which it does when
    // this callback returns. A crash before this line gets the broker's redelivery admitted
    // after a restart; after it, a copy is `replayed`.
    if (verifier->confirm(v)) {
        if (store_outage.exchange(false, std::memory_order_relaxed)) {
            log(LogLevel::info, "replay store '" + store_name() + "': writing again");
        }
    } else {
        replay_store_failures.fetch_add(1, std::memory_order_relaxed);
        if (!store_outage.exchange(true, std::memory_order_relaxed)) {
            log(LogLevel::error, "replay store '" + store_name() +
                                     "': cannot record a delivered message; until it can, a restart may deliver "
                                     "such messages again (counted in stats().replay_store_failures, logged once "
                                     "per outage)");
        }
    }
}

void SecureSession::Impl::note_unrouted(const std::string& topic) noexcept {
    unrouted.fetch_add(1, std::memory_order_relaxed);
    constexpr std::size_t most_topics_logged = 64;
    std::string line;
    try {
        std::lock_guard<std::mutex> lock(mutex);
        if (unrouted_topics.size() > most_topics_logged) return;
        if (unrouted_topics.size() == most_topics_logged) {
            unrouted_topics.insert(std::string());  // past the cap: say so once
            line = "verified messages on further topics match no subscription either; no longer logged";
        } else if (unrouted_topics.insert(topic).second) {
            line = "verified message on '" + topic + "' matches no subscription of this session: not delivered, "
                   "counted in stats().unrouted (logged once per topic)";
        }
    } catch (...) {  // the count above is what matters
    }
    if (!line.empty()) log(LogLevel::warning, line);
}

namespace {

const mqtt::message* message_of(const mqtt::token& tok) {
    const auto* delivery = dynamic_cast<const mqtt::delivery_token*>(&tok);
    return delivery ? delivery->get_message().get() : nullptr;
}

// The broker's reason code as ours, where the protocol gives one (MQTT 5); else `otherwise`.
ReasonCode reason_of(const mqtt::token& tok, int mqtt_version, ReasonCode otherwise) {
    const int code = tok.get_reason_code();
    if (mqtt_version == 5 && code >= 0 && code <= 0xA2) return static_cast<ReasonCode>(code);
    return otherwise;
}

}  // namespace

void SecureSession::Impl::PublishListener::on_success(const mqtt::token& tok) {
    // From any client: a replaced one may still finish what it held (its copy then arrives
    // twice, and the receiver drops the second as replayed).
    if (const mqtt::message* msg = message_of(tok)) {
        const ReasonCode reason = reason_of(tok, session.options.mqtt_version.level(), ReasonCode::success);
        session.operations.complete_publish(msg, Outcome{OutcomeStatus::success, reason >= ReasonCode::unspecified_error
                                                                          ? ReasonCode::success
                                                                          : reason,
                                              {}});
    }
}

void SecureSession::Impl::PublishListener::on_failure(const mqtt::token& tok) {
    // A client replaced by reload() fails what it still held; reload() carried those over to
    // the new client, whose outcome counts. (Null while the session ends.)
    const auto client = session.current();
    if (!client || tok.get_client() != client.get()) return;
    std::string what = "a publish";
    mqtt::const_message_ptr msg;
    if (const auto* delivery = dynamic_cast<const mqtt::delivery_token*>(&tok)) {
        msg = delivery->get_message();
        if (msg) what = "publish to '" + msg->get_topic() + "'";
    }
    // Paho C fails a QoS >= 1 publish whose write met a connection the broker had already
    // reset (MQTTASYNC_FAILURE, no message id), yet keeps it and may send it after the
    // reconnect -- intact, or corrupted by its own use after free (paho.mqtt.c #1621). Its
    // outcome is unknown, so the same envelope goes out again, on the client that replaces
    // this one at the next connection (renew_client_if_broken; not from inside Paho's command
    // processing): a receiver drops a second copy as replayed. Paho completes the failed token
    // only after this returns, so flush() already counts the queued copy.
    if (msg && msg->get_qos() > 0 && tok.get_return_code() == MQTTASYNC_FAILURE && tok.get_message_id() == 0 &&
        session.still_publishing()) {
        session.client_broken.store(true);  // see renew_client_if_broken()
        bool queued = false;
        try {
            std::lock_guard<std::mutex> lock(session.mutex);
            session.send_again.push_back(msg);
            queued = true;
        } catch (const std::exception&) {  // no memory for the queue: a failure, below
        }
        if (queued) {
            session.publishes_sent_again.fetch_add(1, std::memory_order_relaxed);
            session.log(LogLevel::warning, what + ": the connection broke under it (Paho return code " +
                                               std::to_string(tok.get_return_code()) +
                                               "); publishing it again after the reconnect");
            return;
        }
    }
    session.publish_failures.fetch_add(1, std::memory_order_relaxed);
    const int reason = tok.get_reason_code();
    // A refusal is an MQTT 5 PUBACK reason (0x80-0xA2); Paho also fails publishes itself (e.g.
    // at a connection loss), with its own return code and no meaningful reason (seen: 255 under
    // MQTT 3.1.1): name both then.
    Outcome outcome;
    if (session.options.mqtt_version.level() == 5 && reason >= 0x80 && reason <= 0xA2) {
        outcome.status = OutcomeStatus::refused;
        outcome.reason = static_cast<ReasonCode>(reason);
        outcome.detail = what + " refused by the broker: " + mqtt::exception::reason_code_str(reason) +
                         " (MQTT 5 reason code " + std::to_string(reason) + ")";
    } else {
        const int code = tok.get_return_code();
        outcome.status = session.loss_status(code);
        outcome.reason = ReasonCode::success;
        outcome.detail = what + " failed: " + mqtt::exception::error_str(code) + " (Paho return code " +
                         std::to_string(code) + ", reason code " + std::to_string(reason) + ")";
    }
    session.log(LogLevel::error, outcome.detail);
    if (msg) session.operations.complete_publish(msg.get(), std::move(outcome));
}

void SecureSession::Impl::RequestListener::on_success(const mqtt::token& tok) {
    std::optional<detail::TrackedRequest> request = session.operations.take_request(reinterpret_cast<std::uintptr_t>(tok.get_user_context()));
    if (!request) return;
    Outcome outcome;
    try {
        // A SUBACK's codes: the granted QoS, or a failure (0x80 under MQTT 3.1.1, an MQTT 5
        // reason). An UNSUBACK's (MQTT 5): success, no_subscription_existed, or a failure.
        std::vector<mqtt::ReasonCode> codes;
        if (tok.get_type() == mqtt::token::Type::SUBSCRIBE) {
            codes = tok.get_subscribe_response().get_reason_codes();
        } else if (session.options.mqtt_version.level() == 5) {
            codes = tok.get_unsubscribe_response().get_reason_codes();
        }
        for (const auto code : codes) {
            const int c = static_cast<int>(code);
            if (c >= 0x80) {
                outcome.status = OutcomeStatus::refused;
                outcome.reason = c <= 0xA2 ? static_cast<ReasonCode>(c) : ReasonCode::unspecified_error;
                outcome.detail = "refused by the broker: " + std::string(to_string(outcome.reason)) +
                                 (session.options.mqtt_version.level() == 5 ? " (MQTT 5 reason code " : " (SUBACK code ") +
                                 std::to_string(c) + ")";
                break;
            }
            if (c <= 0xA2) outcome.reason = static_cast<ReasonCode>(c);
        }
    } catch (const std::exception& e) {
        outcome = Outcome{OutcomeStatus::failed, ReasonCode::success, e.what()};
    }
    if (outcome.status == OutcomeStatus::refused && request->subscription != 0) {
        session.drop_refused(request->filter, request->subscription, outcome.detail);
    }
    request->state->complete(std::move(outcome));
}

void SecureSession::Impl::RequestListener::on_failure(const mqtt::token& tok) {
    std::optional<detail::TrackedRequest> request = session.operations.take_request(reinterpret_cast<std::uintptr_t>(tok.get_user_context()));
    if (!request) return;
    const int reason = tok.get_reason_code();
    const int code = tok.get_return_code();
    Outcome outcome;
    if (session.options.mqtt_version.level() == 5 && reason >= 0x80 && reason <= 0xA2) {
        outcome = Outcome{OutcomeStatus::refused, static_cast<ReasonCode>(reason),
                          "refused by the broker: " + std::string(to_string(static_cast<ReasonCode>(reason))) +
                              " (MQTT 5 reason code " + std::to_string(reason) + ")"};
    } else if (code == MQTT_BAD_SUBSCRIBE) {  // MQTT 3.1.1's SUBACK failure (0x80)
        outcome = Outcome{OutcomeStatus::refused, ReasonCode::unspecified_error,
                          "refused by the broker: SUBACK failure (MQTT 3.1.1 code 128)"};
    }
    if (outcome.status == OutcomeStatus::refused) {
        if (request->subscription != 0) session.drop_refused(request->filter, request->subscription, outcome.detail);
    } else {
        const OutcomeStatus status = session.loss_status(code);
        if (status == OutcomeStatus::connection_lost && request->subscription != 0 && session.options.auto_reconnect) {
            // Cut short by a loss: the subscription stays, the session reconnects, and that
            // connection's SUBACK completes it (restore_subscriptions; or the subscription's
            // replacement or removal, or the session's end, does).
            return;
        }
        outcome = Outcome{status, ReasonCode::success,
                          "failed: " + mqtt::exception::error_str(code) + " (Paho return code " + std::to_string(code) + ")"};
    }
    request->state->complete(std::move(outcome));
}

mqtt::token_ptr SecureSession::Impl::send_subscribe(mqtt::async_client& client, const std::string& filter, int qos,
                                                    const std::shared_ptr<detail::CompletionState>& state,
                                                    std::uint64_t subscription) {
    // Always through the listener, which drops a refused filter from the subscriptions.
    const std::uintptr_t id = operations.track_request(state ? state : detail::CompletionAccess::make().second, subscription, filter);
    try {
        return client.subscribe(filter, qos, reinterpret_cast<void*>(id), request_listener);
    } catch (...) {
        (void)operations.take_request(id);
        throw;
    }
}

// Subscribes every tracked filter on `client` without waiting; the caller may wait on the
// returned tokens (connect() does; Paho callbacks must not).
std::vector<std::pair<std::string, mqtt::token_ptr>> SecureSession::Impl::restore_subscriptions(
    mqtt::async_client& client) noexcept {
    std::vector<std::pair<std::string, mqtt::token_ptr>> acks;
    const auto list = subscriptions.snapshot();
    for (const detail::Subscription& s : *list) {
        // A subscribe_async() made while disconnected learns its outcome from this SUBACK.
        const auto pending = s.pending && !s.pending->finished() ? s.pending : nullptr;
        try {
            acks.emplace_back(s.filter, send_subscribe(client, s.filter, s.qos, pending, s.id));
        } catch (const std::exception& e) {
            log(LogLevel::error, "subscribing '" + s.filter + "' failed: " + e.what());
            if (pending) pending->complete(Outcome{OutcomeStatus::failed, ReasonCode::success,
                                                   "subscribe '" + s.filter + "' failed: " + e.what()});
        }
    }
    return acks;
}

// The session ends with publishes still queued to go out again: each is a failure.
void SecureSession::Impl::drop_queued_again() noexcept {
    std::vector<mqtt::const_message_ptr> dropped;
    {
        std::lock_guard<std::mutex> lock(mutex);
        dropped.swap(send_again);
    }
    if (dropped.empty()) return;
    publish_failures.fetch_add(dropped.size(), std::memory_order_relaxed);
    for (const auto& msg : dropped) {
        operations.complete_publish(msg.get(), Outcome{OutcomeStatus::session_closed, ReasonCode::success,
                                            "publish to '" + msg->get_topic() +
                                                "': the connection broke under it and the session ended first"});
    }
    log(LogLevel::error, std::to_string(dropped.size()) +
                             " publish(es) the connection broke under were not sent again: the session ended first");
}

std::pair<std::shared_ptr<mqtt::async_client>, std::size_t> SecureSession::Impl::replace_client(
    std::shared_ptr<mqtt::async_client> fresh) noexcept {
    {
        std::unique_lock<std::mutex> lock(gate_mutex);
        gate_closed = true;
        gate_cv.wait(lock, [this] { return publishes_in_progress == 0; });
    }
    // Gathered while the old client is still current(), and counted as in transit before it
    // stops being: flush() and unacknowledged() always find them somewhere.
    std::shared_ptr<mqtt::async_client> old = current();
    std::vector<mqtt::const_message_ptr> messages;
    try {
        for (const auto& token : old->get_pending_delivery_tokens()) {
            if (auto msg = token->get_message()) messages.push_back(std::move(msg));
        }
        {
            std::lock_guard<std::mutex> lock(mutex);
            messages.insert(messages.end(), send_again.begin(), send_again.end());
            send_again.clear();
        }
    } catch (const std::exception& e) {
        log(LogLevel::error, std::string("carrying publishes over to the new MQTT client: ") + e.what());
    }
    {
        std::lock_guard<std::mutex> lock(gate_mutex);
        in_transit = messages.size();
    }
    {
        std::lock_guard<std::mutex> lock(client_mutex);
        client_ = fresh;
    }
    try {
        // In signing order (the envelope's counter; one stream per session): a receiver rejects
        // a message that arrives more than its replay window behind the newest of its stream.
        const auto counter = [](const mqtt::const_message_ptr& m) {
            const auto& bytes = m->get_payload_ref();
            // Our own envelopes, of any size the signer makes (not the receiving default limit).
            const DecodeResult d = decode_envelope(ByteView(bytes.data(), bytes.size()), max_envelope_size_limit);
            return d ? d.envelope().header.counter : UINT64_MAX;
        };
        std::stable_sort(messages.begin(), messages.end(),
                         [&](const auto& a, const auto& b) { return counter(a) < counter(b); });
    } catch (const std::exception& e) {  // out of memory: what was gathered goes out unsorted
        log(LogLevel::error, std::string("carrying publishes over to the new MQTT client: ") + e.what());
    }
    const auto publish_all = [&](const std::vector<mqtt::const_message_ptr>& list) {
        std::size_t n = 0;
        for (const auto& msg : list) {
            try {
                fresh->publish(msg, nullptr, publish_listener);
                ++n;
            } catch (const std::exception& e) {  // e.g. the new client's buffer is full: counted, said
                publish_failures.fetch_add(1, std::memory_order_relaxed);
                const std::string line = "publish to '" + msg->get_topic() + "' could not be carried over: " + e.what();
                log(LogLevel::error, line);
                const auto* paho = dynamic_cast<const mqtt::exception*>(&e);
                operations.complete_publish(msg.get(), Outcome{paho && paho->get_return_code() == MQTTASYNC_MAX_BUFFERED_MESSAGES
                                                        ? OutcomeStatus::buffer_full
                                                        : OutcomeStatus::failed,
                                                    ReasonCode::success, line});
            }
        }
        return n;
    };
    const std::size_t carried = publish_all(messages);
    {
        std::lock_guard<std::mutex> lock(gate_mutex);
        in_transit = 0;
    }
    // Then what publish() parked meanwhile, in its order, until none is left to open the gate.
    for (;;) {
        std::vector<mqtt::const_message_ptr> parked;
        {
            std::lock_guard<std::mutex> lock(gate_mutex);
            in_transit = 0;
            if (held.empty()) {
                gate_closed = false;
                break;
            }
            parked.swap(held);
            in_transit = parked.size();
        }
        publish_all(parked);
    }
    return {std::move(old), carried};
}

// Paho keeps a publish it failed under a broken write in its resend list, but frees the topic
// and payload that list points to (paho.mqtt.c #1621, Paho C 1.3.12): after each reconnect it
// resends whatever the memory then holds, the broker drops the connection for a malformed
// packet, and the client never gets through (seen in integration.faults). So the client that
// failed such a publish is not connected again: a new one with the same client id and
// credentials takes its place, and everything the old one had not had acknowledged is
// published on the new one (intact copies: Paho C++ keeps its own), as reload() does. A
// receiver drops any copy it already had as replayed. The old client is parked, never
// destroyed: destroying it would free that memory a second time. Called under `lifecycle`.
void SecureSession::Impl::renew_client_if_broken() noexcept {
    if (!client_broken.load()) return;
    std::shared_ptr<mqtt::async_client> fresh;
    try {
        fresh = make_client(current()->get_pending_delivery_tokens().size() + queued_outside_client());
    } catch (const std::exception& e) {  // no new client: try again at the next attempt
        log(LogLevel::error, std::string("could not make a new MQTT client: ") + e.what());
        return;
    }
    client_broken.store(false);
    auto [old, carried] = replace_client(std::move(fresh));
    try {
        old->disable_callbacks();
    } catch (const std::exception&) {  // it is parked either way; its callbacks check current()
    }
    park_broken_client(std::move(old));
    log(LogLevel::warning, "a publish failed under a broken connection: reconnecting with a new MQTT client (the old "
                           "one's copy of it may be corrupt), " + std::to_string(carried) +
                               " unacknowledged publish(es) carried over");
}

void SecureSession::Impl::on_connected(const std::string& cause) noexcept {
    {
        std::lock_guard<std::mutex> lock(mutex);
        if (connect_pending) {  // made by connect(), which restores the subscriptions itself
            connect_pending = false;
            return;
        }
    }
    reconnects.fetch_add(1, std::memory_order_relaxed);
    log(LogLevel::info, "reconnected to " + options.server_uri + (cause.empty() ? "" : " (" + cause + ")"));
    // Reported from here, Paho's thread, which also reports the next loss: in that order.
    SessionEvent event;
    event.type = SessionEventType::connected;
    event.reconnect = true;
    try {
        mqtt::token_ptr token;
        {
            std::unique_lock<std::mutex> lock(reconnect_token_mutex);
            reconnect_token_cv.wait_for(lock, std::chrono::seconds(1),
                                        [this] { return reconnect_token || !reconnect_token_expected; });
            token.swap(reconnect_token);
            reconnect_token_expected = false;
        }
        if (token) event.session_present = token->get_connect_response().is_session_present();
    } catch (const std::exception&) {
    }
    emit(std::move(event));
    // A broker that kept our session also kept the subscriptions; subscribing again is
    // harmless, and needed when it did not (Paho does not restore them).
    if (const auto client = current()) (void)restore_subscriptions(*client);  // null while the session ends
}

void SecureSession::Impl::on_connection_lost(const std::string& cause) noexcept {
    connection_losses.fetch_add(1, std::memory_order_relaxed);
    log(LogLevel::warning, "connection to " + options.server_uri + " lost" + (cause.empty() ? "" : ": " + cause) +
                               (options.auto_reconnect ? "; reconnecting" : ""));
    SessionEvent event;
    event.type = SessionEventType::connection_lost;
    try {
        event.detail = cause;
    } catch (const std::bad_alloc&) {
    }
    emit(event);
    if (options.auto_reconnect) request_reconnect();
}

void SecureSession::Impl::request_reconnect() noexcept {
    try {
        std::lock_guard<std::mutex> lock(reconnect_mutex);
        // A loss reported after disconnect() (Paho's thread may be late) starts nothing.
        if (reconnect_stop || !session_wanted) return;
        reconnect_wanted = true;
        ++losses_seen;
        if (!reconnector.joinable()) reconnector = std::thread([this] { reconnect_loop(); });
    } catch (const std::exception& e) {  // no thread to be had: say so, the session stays down
        log(LogLevel::error, std::string("cannot start reconnecting: ") + e.what());
        return;
    }
    reconnect_cv.notify_all();
}

void SecureSession::Impl::set_wanted(bool wanted) noexcept {
    std::lock_guard<std::mutex> lock(reconnect_mutex);
    session_wanted = wanted;
}

bool SecureSession::Impl::still_publishing() noexcept {
    std::lock_guard<std::mutex> lock(reconnect_mutex);
    return session_wanted && !reconnect_stop;
}

bool SecureSession::Impl::still_wanted() noexcept {
    std::lock_guard<std::mutex> lock(reconnect_mutex);
    return reconnect_wanted && !reconnect_stop;
}

void SecureSession::Impl::stop_reconnecting() noexcept {
    {
        std::lock_guard<std::mutex> lock(reconnect_mutex);
        reconnect_stop = true;
        reconnect_wanted = false;
    }
    reconnect_cv.notify_all();
    if (reconnector.joinable()) reconnector.join();
}

// Tries to reconnect with exponential backoff from reconnect_min to reconnect_max, each attempt
// with a freshly signed will, until connected, disconnect() is called, or the session ends.
void SecureSession::Impl::reconnect_loop() noexcept {
    std::unique_lock<std::mutex> lock(reconnect_mutex);
    for (;;) {
        reconnect_cv.wait(lock, [this] { return reconnect_wanted || reconnect_stop; });
        std::chrono::seconds delay = options.reconnect_min;
        std::string last_failure;  // of the previous attempt, for the next reconnecting event
        for (int attempt = 1; reconnect_wanted && !reconnect_stop; ++attempt) {
            if (reconnect_cv.wait_for(lock, delay, [this] { return !reconnect_wanted || reconnect_stop; })) break;
            const std::uint64_t losses_before = losses_seen;
            lock.unlock();
            const std::chrono::seconds next = std::min(delay * 2, options.reconnect_max);
            bool done = false;
            try {
                // Under `lifecycle`: not while reload() swaps clients, and disconnect() (which
                // clears reconnect_wanted under it too) is either wholly before or after.
                std::lock_guard<std::mutex> serial(lifecycle);
                if (!current()->is_connected()) renew_client_if_broken();
                const auto client = current();
                done = client->is_connected() || !still_wanted();
                if (!done) {
                    log(LogLevel::debug, "reconnecting to " + options.server_uri + " (attempt " + std::to_string(attempt) + ")");
                    SessionEvent starting;
                    starting.type = SessionEventType::reconnecting;
                    starting.attempt = attempt;
                    starting.delay = delay;
                    starting.detail = last_failure;
                    emit(starting);
                    {
                        std::lock_guard<std::mutex> guard(reconnect_token_mutex);
                        reconnect_token.reset();
                        reconnect_token_expected = true;
                    }
                    const mqtt::token_ptr token = client->connect(make_connect_options());
                    {
                        std::lock_guard<std::mutex> guard(reconnect_token_mutex);
                        if (reconnect_token_expected) reconnect_token = token;  // for on_connected
                    }
                    reconnect_token_cv.notify_all();
                    done = token->wait_for(options.connect_timeout);
                    if (!done) {
                        client->disconnect()->wait_for(std::chrono::milliseconds(500));
                        last_failure = "no answer within " + std::to_string(options.connect_timeout.count()) + " ms";
                        log(LogLevel::warning, "reconnection attempt " + std::to_string(attempt) + " to " + options.server_uri +
                                                   " got no answer; next in " + std::to_string(next.count()) + " s");
                    } else {
                        last_failure.clear();
                    }
                }
            } catch (const std::exception& e) {
                try {
                    last_failure = e.what();
                } catch (const std::bad_alloc&) {
                }
                log(LogLevel::warning, "reconnection attempt " + std::to_string(attempt) + " to " + options.server_uri +
                                           " failed: " + e.what() + "; next in " + std::to_string(next.count()) + " s");
            }
            lock.lock();
            // Done, unless the new connection was lost again meanwhile (then that loss's request
            // stands, and the next attempt starts from reconnect_min).
            if (done && losses_seen == losses_before) reconnect_wanted = false;
            if (done && losses_seen != losses_before) {
                delay = options.reconnect_min;
                attempt = 0;  // a new loss: its attempts count from 1
                continue;
            }
            delay = next;
        }
        if (reconnect_stop) return;
    }
}

mqtt::connect_options SecureSession::Impl::make_connect_options() {
    const detail::TlsSetup& tls = tls_setup;
    mqtt::ssl_options ssl;
    // Neither a CA file nor a directory (use_os_trust_store): Paho loads OpenSSL's defaults.
    if (!tls.ca_file.empty()) ssl.set_trust_store(tls.ca_file);
    if (!tls.ca_path.empty()) ssl.ca_path(tls.ca_path);
    ssl.set_key_store(tls.cert_file);
    ssl.set_private_key(tls.key_file);
    if (tls.key_passphrase) ssl.set_private_key_password(*tls.key_passphrase);
    ssl.set_enabled_cipher_suites(tls.cipher_list);
    ssl.set_enable_server_cert_auth(true);
    ssl.set_verify(tls.verify_hostname);  // Paho's name for the post-handshake host name check
    if (!tls.alpn.empty()) ssl.set_alpn_protos(tls.alpn);
    // The TLS floor is process-wide (enforce_tls_protocol_floor) and CRL checking too
    // (RevocationSwitch): Paho on OpenSSL 3 takes neither per client.
    // No ssl.set_error_handler(): Paho C++ 1.2 hands the C library a pointer to the
    // ssl_options object the handler was set on, which does not survive the copies into the
    // client (ASan: stack-use-after-scope). The diagnosis probe reports TLS failures instead.

    mqtt::connect_options c;
    c.set_mqtt_version(options.mqtt_version.level() == 5 ? MQTTVERSION_5 : MQTTVERSION_3_1_1);
    if (options.mqtt_version.level() == 5) {
        c.set_clean_start(options.clean_session);
        // Without a Session Expiry Interval an MQTT 5 session ends with its connection, and the
        // broker drops what it queued for a "persistent" subscriber.
        constexpr std::uint32_t never = 0xFFFFFFFF;
        const std::uint32_t expiry =
            options.session_expiry ? static_cast<std::uint32_t>(options.session_expiry->count())
                                   : (options.clean_session ? 0 : never);
        if (expiry != 0) {
            std::int32_t wire;  // Paho takes 4-byte properties as int32_t; the bits are what count
            std::memcpy(&wire, &expiry, sizeof wire);
            c.set_properties(mqtt::properties{{mqtt::property::SESSION_EXPIRY_INTERVAL, wire}});
        }
    } else {
        c.set_clean_session(options.clean_session);
    }
    c.set_keep_alive_interval(options.keep_alive);
    c.set_connect_timeout(std::chrono::duration_cast<std::chrono::seconds>(options.connect_timeout) +
                          std::chrono::seconds(1));
    c.set_max_inflight(options.max_inflight);
    c.set_ssl(std::move(ssl));
    if (options.will) {
        std::string envelope;
        will_signer->sign_into(options.will->topic, options.will->payload, envelope, options.will->retain);
        c.set_will(mqtt::will_options(options.will->topic, envelope.data(), envelope.size(), options.will->qos.level(),
                                      options.will->retain));
    }
    return c;
}

void SecureSession::Impl::throw_connect_failure(const std::string& paho_message, int paho_code,
                                               std::chrono::milliseconds time_left) {
    const detail::Diagnosis d = detail::diagnose_connect_failure(host, port, tls_setup, options.mqtt_version.level(), paho_message,
                                                                paho_code, time_left);
    throw ConnectionError("connect to " + options.server_uri + " failed: " + d.detail, d.reason, paho_code);
}

SecureSession::SecureSession(SessionOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {
    detail::keep_openssl_until_exit();  // before Paho's threads exist
    Impl& s = *impl_;
    const SessionOptions& o = s.options;
    if (!o.keyring) throw ConfigError("session: no keyring given");
    if (o.mqtt_version.level() != 4 && o.mqtt_version.level() != 5) {
        throw ConfigError("session: mqtt_version must be 4 (MQTT 3.1.1) or 5, got " + std::to_string(o.mqtt_version.level()));
    }
    const detail::ServerAddress address = detail::parse_server_uri(o.server_uri);
    s.host = address.host;
    s.port = address.port;
    s.paho_uri = "ssl://" + address.host_for_uri + ":" + std::to_string(address.port);
    if (o.session_expiry && (o.session_expiry->count() < 0 || o.session_expiry->count() > 0xFFFFFFFFLL)) {
        throw ConfigError("session: session_expiry must be from 0 to 4294967295 s");
    }
    if (o.client_id.empty() && !o.clean_session) {
        throw ConfigError("session: a persistent session (clean_session = false) needs a fixed client_id");
    }
    if (o.offline_buffer < 1 || o.max_inflight < 1) throw ConfigError("session: offline_buffer and max_inflight must be positive");

    s.prepare_tls();
    s.signer = std::make_unique<Signer>(o.keyring, SignerOptions{o.verifier.clock, std::nullopt, 1});
    if (o.will) {
        if (!is_valid_topic_name(o.will->topic)) throw ConfigError("session: invalid will topic '" + o.will->topic + "'");
        if (o.will->qos.level() < 0 || o.will->qos.level() > 2) throw ConfigError("session: will QoS must be 0, 1 or 2");
        s.will_signer = std::make_unique<Signer>(o.keyring, SignerOptions{o.verifier.clock, std::nullopt, 1});
    }
    if (o.auto_reconnect && (o.reconnect_min.count() < 1 || o.reconnect_max < o.reconnect_min)) {
        throw ConfigError("session: reconnect_min must be at least 1 s and reconnect_max at least reconnect_min");
    }
    // Bounded so every wait on them stays a plain one: Paho takes whole seconds in an int, and a
    // 32-bit time_t wraps deadlines decades ahead.
    constexpr std::chrono::hours a_day{24};
    if (o.connect_timeout.count() < 1 || o.connect_timeout > a_day) {
        throw ConfigError("session: connect_timeout must be 1 ms to 24 h, got " + std::to_string(o.connect_timeout.count()) +
                          " ms");
    }
    if (o.auto_reconnect && o.reconnect_max > a_day) {
        throw ConfigError("session: reconnect_max must be at most 24 h, got " + std::to_string(o.reconnect_max.count()) +
                          " s");
    }
    ReplayGuardOptions replay = o.replay;
    if (replay.store && replay.store->shared()) {
        // Waiting for the store holds up Paho's thread; past the keep-alive the broker could
        // drop the connection, and with it (clean session) the messages it was keeping.
        if (o.keep_alive.count() > 0 && replay.store_hold_ms >= o.keep_alive.count() * 1000) {
            throw ConfigError("session: replay.store_hold_ms (" + std::to_string(replay.store_hold_ms) +
                              " ms) must be shorter than keep_alive (" + std::to_string(o.keep_alive.count()) + " s)");
        }
        // Logged once per outage; the application's own callback, if any, still runs.
        replay.on_store_availability = [&s, location = replay.store->location(),
                                        chained = o.replay.on_store_availability](bool available, std::string_view detail) {
            if (available) {
                s.log(LogLevel::info, "replay store '" + location + "': " + std::string(detail) + "; delivering again");
            } else {
                s.log(LogLevel::error,
                      "replay store '" + location + "': " + std::string(detail) +
                          "; holding each message up to " + std::to_string(s.options.replay.store_hold_ms) +
                          " ms, then rejecting it as replay_state_unavailable (logged once per outage)");
            }
            if (chained) chained(available, detail);
        };
    }
    s.verifier = std::make_unique<Verifier>(o.keyring, std::make_shared<ReplayGuard>(std::move(replay)), o.verifier);
    s.client_id = o.client_id.empty() ? random_client_id() : o.client_id;
    s.client_ = s.make_client();
}

void SecureSession::Impl::prepare_tls() {
    using Content = detail::CredentialFile::Content;
    // Refused where a key in memory cannot be handed over safely (Windows), before anything is
    // decrypted or written.
    if (!options.tls.key_pem.empty()) detail::CredentialFile::require_supported("client key", Content::secret);
    PreflightReport checked = preflight_tls(options.tls, system_clock_ms(), options.logger);
    detail::enforce_tls_protocol_floor();  // process-wide, before Paho makes its SSL_CTX
    revocation.join(!options.tls.crl_file.empty());
    std::vector<std::unique_ptr<detail::CredentialFile>> files;
    const auto path_for = [&files](const char* what, const std::string& file, const std::string& pem, Content content) {
        if (pem.empty()) return file;
        files.push_back(std::make_unique<detail::CredentialFile>(what, pem, content));
        return files.back()->path();
    };
    // Everything is made before any member changes: a failure half-way leaves the paths the
    // current client uses (and their files) as they were.
    std::string ca = path_for("CA file", options.tls.ca_file, detail::trust_store_pem(options.tls),  // CRLs after the CAs
                              Content::public_material);
    std::string cert = path_for("client certificate", options.tls.cert_file, options.tls.cert_pem, Content::public_material);
    // Paho would keep unwiped copies of a passphrase: give it the key decrypted, in memory.
    std::string key;
    bool unlocked = false;
    if (!options.tls.key_passphrase.empty()) {
        const detail::SecureBuffer pem =
            detail::unencrypted_key_pem(options.tls.key_file, options.tls.key_pem, options.tls.key_passphrase);
        const std::string_view text(reinterpret_cast<const char*>(pem.data()), pem.size());
        if (auto file = detail::CredentialFile::in_memory("client key", text)) {
            files.push_back(std::move(file));
            key = files.back()->path();
            unlocked = true;
        }
    }
    if (!unlocked) key = path_for("client key", options.tls.key_file, options.tls.key_pem, Content::secret);
    const TlsOptions& tls = options.tls;
    detail::TlsSetup setup;
    setup.ca_file = std::move(ca);
    setup.ca_path = tls.ca_path;
    setup.os_trust_store = tls.use_os_trust_store;
    setup.cert_file = std::move(cert);
    setup.key_file = std::move(key);
    // Paho would keep unwiped copies of a passphrase: with the key decrypted it gets none.
    if (!tls.key_passphrase.empty() && !unlocked) setup.key_passphrase = &tls.key_passphrase;
    setup.cipher_list = detail::tls_cipher_string(tls);
    setup.min_version = tls.min_version;
    setup.check_crl = !tls.crl_file.empty();
    setup.verify_hostname = tls.verify_hostname;
    setup.alpn = tls.alpn;
    tls_setup = std::move(setup);
    credential_files = std::move(files);
    std::lock_guard<std::mutex> lock(mutex);  // preflight() reads it from any thread
    report = std::move(checked);
}

std::shared_ptr<mqtt::async_client> SecureSession::Impl::make_client(std::size_t carried) {
    const auto buffer = static_cast<int>(std::min<std::size_t>(
        static_cast<std::size_t>(options.offline_buffer) + carried, static_cast<std::size_t>(INT32_MAX)));
    mqtt::create_options create(options.mqtt_version.level() == 5 ? MQTTVERSION_5 : MQTTVERSION_3_1_1, buffer);
    create.set_send_while_disconnected(true, true);
    create.set_delete_oldest_messages(false);  // a full buffer refuses new publishes, loudly
    auto c = std::make_shared<mqtt::async_client>(paho_uri, client_id, create, nullptr);
    c->set_message_callback([this](mqtt::const_message_ptr msg) { on_message(msg); });
    c->set_connected_handler([this](const std::string& cause) { on_connected(cause); });
    // A client replaced on purpose (reload(), a broken one) may still lose its connection or be
    // told to go: not the session's loss.
    mqtt::async_client* const raw = c.get();
    c->set_connection_lost_handler([this, raw](const std::string& cause) {
        if (current().get() == raw) on_connection_lost(cause);
    });
    c->set_disconnected_handler([this, raw](const mqtt::properties&, mqtt::ReasonCode code) {
        if (current().get() != raw) return;
        // An MQTT 5 DISCONNECT from the broker, with its reason.
        SessionEvent event;
        event.type = SessionEventType::disconnected;
        event.by_broker = true;
        const int value = static_cast<int>(code);
        event.reason = value >= 0 && value <= 0xA2 ? static_cast<ReasonCode>(value) : ReasonCode::unspecified_error;
        const std::string why = std::string(to_string(event.reason)) + " (MQTT 5 reason code " + std::to_string(value) + ")";
        event.detail = why;
        emit(event);
        // Paho ends the connection without reporting it lost: it is a loss all the same, and
        // the session reconnects as after any other.
        on_connection_lost("the broker sent DISCONNECT: " + why);
    });
    return c;
}

SecureSession::~SecureSession() {
    impl_->events.stop();  // what happened before is delivered; nothing after
    impl_->stop_reconnecting();
    impl_->drop_queued_again();
    try {
        if (impl_->client_ && impl_->client_->is_connected()) disconnect(std::chrono::milliseconds(2000));
    } catch (...) {  // destructors do not throw; the broker will notice the socket closing
    }
    // The Paho client goes first: its threads call back into members declared after it. One
    // whose memory Paho may have freed in part is parked instead (see renew_client_if_broken).
    std::shared_ptr<mqtt::async_client> client;
    {
        std::lock_guard<std::mutex> lock(impl_->client_mutex);
        client = std::move(impl_->client_);
    }
    if (impl_->client_broken.load()) {
        try {
            client->disable_callbacks();
        } catch (const std::exception&) {
        }
        park_broken_client(std::move(client));
    }
    client.reset();
    impl_->close_outcomes();
}

void SecureSession::Impl::connect_client(mqtt::async_client& client, bool strict) {
    const auto set_pending = [this](bool pending) {
        std::lock_guard<std::mutex> lock(mutex);
        connect_pending = pending;
    };
    set_pending(true);
    mqtt::token_ptr token;
    const auto started = std::chrono::steady_clock::now();
    try {
        token = client.connect(make_connect_options());
        if (!token->wait_for(options.connect_timeout)) {
            try {
                client.disconnect()->wait_for(std::chrono::milliseconds(500));
            } catch (...) {
            }
            throw ConnectionError("connect to " + options.server_uri + " failed: no answer within " +
                                      std::to_string(options.connect_timeout.count()) + " ms",
                                  ConnectFailure::timeout);
        }
    } catch (const mqtt::exception& e) {
        set_pending(false);
        const auto spent =
            std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
        throw_connect_failure(e.get_message().empty() ? e.get_error_str() : e.get_message(), e.get_return_code(),
                              std::max(options.connect_timeout - spent, std::chrono::milliseconds(0)));
    } catch (...) {  // the timeout above, or bad options: no connected callback will come
        set_pending(false);
        throw;
    }
    // Subscriptions made before connecting are active when connect() returns: wait for SUBACKs.
    std::string refused;  // the first refusal, for connect()'s error
    for (const auto& [filter, ack] : restore_subscriptions(client)) {
        std::string why;
        try {
            if (!ack->wait_for(options.connect_timeout)) {
                log(LogLevel::warning, "subscribe '" + filter + "': no SUBACK within the connect timeout");
                continue;
            }
            const mqtt::subscribe_response response = ack->get_subscribe_response();
            for (const auto code : response.get_reason_codes()) {
                const int c = static_cast<int>(code);
                if (c >= 0x80) {
                    why = std::string(to_string(c <= 0xA2 ? static_cast<ReasonCode>(c) : ReasonCode::unspecified_error)) +
                          (options.mqtt_version.level() == 5 ? " (MQTT 5 reason code " : " (SUBACK code ") + std::to_string(c) + ")";
                }
            }
        } catch (const mqtt::exception& e) {
            const int reason = e.get_reason_code();
            if (e.get_return_code() == MQTT_BAD_SUBSCRIBE) {
                why = "SUBACK failure (MQTT 3.1.1 code 128)";
            } else if (options.mqtt_version.level() == 5 && reason >= 0x80 && reason <= 0xA2) {
                why = std::string(to_string(static_cast<ReasonCode>(reason))) + " (MQTT 5 reason code " +
                      std::to_string(reason) + ")";
            } else {  // not a refusal (e.g. the connection went): restored at the next one
                log(LogLevel::warning, "subscribe '" + filter + "': " + e.what());
                continue;
            }
        }
        if (why.empty()) continue;
        // The request listener has dropped it already, by its id (one made since stands), and said so.
        if (refused.empty()) refused = "subscribe '" + filter + "' refused by the broker: " + why;
    }
    if (strict && !refused.empty()) {
        try {
            client.disconnect()->wait_for(std::chrono::milliseconds(2000));
        } catch (...) {
        }
        throw ConnectionError("connect to " + options.server_uri + ": " + refused, ConnectFailure::not_authorized);
    }
    // Lost while subscribing: connect() did not get what it promises (reconnection, if on, is
    // under way already).
    if (!client.is_connected()) {
        throw ConnectionError("connect to " + options.server_uri + ": the connection was lost while subscribing",
                              ConnectFailure::other);
    }
    SessionEvent event;
    event.type = SessionEventType::connected;
    event.reconnect = false;
    try {
        event.session_present = token->get_connect_response().is_session_present();
    } catch (const std::exception&) {
    }
    emit(std::move(event));
    log(LogLevel::info, "connected to " + options.server_uri + " as " + report.client_subject);
}

void SecureSession::connect() {
    Impl& s = *impl_;
    std::lock_guard<std::mutex> lifecycle(s.lifecycle);
    if (!s.current()->is_connected()) s.renew_client_if_broken();
    const auto client = s.current();
    if (client->is_connected()) return;
    s.set_wanted(true);
    try {
        s.connect_client(*client, true);
    } catch (...) {
        s.set_wanted(false);
        throw;
    }
}

void SecureSession::reload(std::optional<TlsOptions> tls) {
    Impl& s = *impl_;
    std::lock_guard<std::mutex> lifecycle(s.lifecycle);
    // Check the new credentials first: if they are bad, the current connection stays. Every
    // copy of the secrets made here is wiped before it is freed.
    TlsOptions previous;
    if (tls) {
        previous = std::move(s.options.tls);
        s.options.tls = std::move(*tls);
        wipe_secrets(*tls);
    }
    try {
        s.prepare_tls();
    } catch (...) {
        if (tls) {
            wipe_secrets(s.options.tls);
            s.options.tls = std::move(previous);
            wipe_secrets(previous);
        }
        throw;
    }
    wipe_secrets(previous);
    // New publishes go to the new client's buffer from here on, after everything the old one
    // holds unacknowledged, in signing order. The old connection then finishes what it can:
    // a copy the receiver already has is dropped there as replayed.
    auto fresh = s.make_client(unacknowledged());
    const bool broken = s.client_broken.exchange(false);  // then the old one is parked, not destroyed
    auto [old, carried] = s.replace_client(fresh);
    const bool was_connected = old->is_connected();
    if (broken) park_broken_client(old);
    try {
        if (was_connected) old->disconnect(std::chrono::milliseconds(2000))->wait_for(std::chrono::milliseconds(3000));
    } catch (const mqtt::exception& e) {
        s.log(LogLevel::warning, std::string("reload: closing the old connection: ") + e.what());
    }
    s.log(LogLevel::info, "reload: new TLS credentials for " + s.report.client_subject +
                              (carried ? ", " + std::to_string(carried) + " unacknowledged message(s) carried over" : ""));
    if (!was_connected) return;
    try {
        s.connect_client(*fresh);
    } catch (...) {
        // The broker was reachable a moment ago: keep trying with the new credentials, as after
        // any loss, and tell the caller this attempt failed.
        if (s.options.auto_reconnect) s.request_reconnect();
        throw;
    }
}

void SecureSession::disconnect(std::chrono::milliseconds timeout) {
    Impl& s = *impl_;
    std::lock_guard<std::mutex> lifecycle(s.lifecycle);
    {
        std::lock_guard<std::mutex> lock(s.reconnect_mutex);
        s.session_wanted = false;
        s.reconnect_wanted = false;  // the reconnection loop, if any, goes back to waiting
    }
    s.reconnect_cv.notify_all();
    s.drop_queued_again();
    bool was_connected = false;
    try {
        const auto client = s.current();
        was_connected = client->is_connected();
        if (was_connected) detail::wait_token(*client->disconnect(), timeout);  // bounded steps (bounded_wait.hpp)
    } catch (const mqtt::exception& e) {
        throw ConnectionError("disconnect from " + s.options.server_uri + " failed: " + e.what(), ConnectFailure::other,
                              e.get_return_code());
    }
    if (was_connected) {
        SessionEvent event;
        event.type = SessionEventType::disconnected;
        s.emit(event);
    }
}

std::size_t SecureSession::unacknowledged() const {
    return impl_->current()->get_pending_delivery_tokens().size() + impl_->queued_outside_client();
}

bool SecureSession::is_connected() const { return impl_->current()->is_connected(); }

Completion SecureSession::publish(std::string_view topic, ByteView payload, IntCompatible<QoS> qos_setting, bool retain) {
    const int qos = qos_setting.level();
    if (qos < 0 || qos > 2) throw ConfigError("publish: QoS must be 0, 1 or 2");
    std::string envelope;
    impl_->signer->sign_into(topic, payload, envelope, retain);
    return impl_->publish_signed(topic, std::move(envelope), qos, retain, nullptr);
}

Completion SecureSession::publish(std::string_view topic, ByteView payload, const PublishOptions& options) {
    Impl& s = *impl_;
    if (options.qos.level() < 0 || options.qos.level() > 2) throw ConfigError("publish: QoS must be 0, 1 or 2");
    const MessageProperties& p = options.properties;
    const bool wire_properties = p.has_covered() || p.message_expiry.has_value();
    if (wire_properties && s.options.mqtt_version.level() != 5) {
        throw ConfigError("publish to '" + std::string(topic) +
                          "': MQTT 5 properties need mqtt_version 5 (only payload_format works under 3.1.1)");
    }
    const std::string problem = detail::property_problem(p);
    if (!problem.empty()) throw ConfigError("publish to '" + std::string(topic) + "': " + problem);
    std::string envelope;
    s.signer->sign_into(topic, payload, envelope, options.retain, p);
    if (!wire_properties) return s.publish_signed(topic, std::move(envelope), options.qos.level(), options.retain, nullptr);
    const mqtt::properties wire = detail::to_paho(p);
    return s.publish_signed(topic, std::move(envelope), options.qos.level(), options.retain, &wire);
}

Completion SecureSession::Impl::publish_signed(std::string_view topic, std::string envelope, int qos, bool retain,
                                               const mqtt::properties* properties) {
    Impl& s = *this;
    auto msg = mqtt::make_message(std::string(topic), std::move(envelope), qos, retain);
    if (properties != nullptr) msg->set_properties(*properties);
    // Tracked before Paho has it: its answer may come before publish() returns.
    auto [completion, state] = detail::CompletionAccess::make();
    {
        s.operations.track_publish(msg.get(), std::move(state));
    }
    {
        std::lock_guard<std::mutex> lock(s.gate_mutex);
        if (s.gate_closed) {  // the client is being replaced: it goes out after what it carries over
            try {
                s.held.push_back(msg);
            } catch (...) {
                s.operations.forget_publish(msg.get());
                throw;
            }
            s.published.fetch_add(1, std::memory_order_relaxed);
            return completion;
        }
        ++s.publishes_in_progress;
    }
    struct Leave {
        Impl& s;
        ~Leave() {
            std::lock_guard<std::mutex> lock(s.gate_mutex);
            if (--s.publishes_in_progress == 0) s.gate_cv.notify_all();
        }
    } leave{s};
    try {
        s.current()->publish(msg, nullptr, s.publish_listener);
        s.published.fetch_add(1, std::memory_order_relaxed);
        return completion;
    } catch (const mqtt::exception& e) {
        s.operations.forget_publish(msg.get());
        s.publish_failures.fetch_add(1, std::memory_order_relaxed);
        const int code = e.get_return_code();
        if (code == MQTTASYNC_MAX_BUFFERED_MESSAGES) {
            throw PublishError("publish to '" + std::string(topic) + "': offline buffer full (" +
                                   std::to_string(s.options.offline_buffer) + " messages)",
                               OutcomeStatus::buffer_full, code);
        }
        throw PublishError("publish to '" + std::string(topic) + "' failed: " + e.what(), OutcomeStatus::failed, code);
    }
}

bool SecureSession::flush(std::chrono::milliseconds timeout) {
    Impl& s = *impl_;
    using clock = std::chrono::steady_clock;
    const auto deadline = detail::deadline_after(timeout);  // saturates: flush(milliseconds::max()) waits
    const std::uint64_t failures_before = s.publish_failures.load();
    for (;;) {
        // Waits in slices and starts over when a token does not complete in one: the client may
        // be replaced meanwhile (its tokens then never complete; their messages live on in the
        // new client's), and some messages wait outside any client for a while.
        const auto client = s.current();
        bool all_in = true;
        for (const auto& token : client->get_pending_delivery_tokens()) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
            if (left.count() <= 0) return false;
            try {
                if (!token->wait_for(std::min(left, std::chrono::milliseconds(100)))) {
                    all_in = false;
                    break;
                }
            } catch (const mqtt::exception&) {
                // Failed: refused or lost (counted: the answer is false), or to be published
                // again (not counted: wait for that).
                if (s.publish_failures.load() != failures_before) return false;
                all_in = false;
                break;
            }
        }
        if (all_in && s.queued_outside_client() == 0 && s.current() == client) return true;
        if (clock::now() >= deadline) return false;
        if (all_in) {
            std::this_thread::sleep_for(
                std::min<clock::duration>(std::chrono::milliseconds(10), deadline - clock::now()));
        }
    }
}

Completion SecureSession::subscribe_async(const std::string& filter, IntCompatible<QoS> qos_setting, Handler handler) {
    const int qos = qos_setting.level();
    Impl& s = *impl_;
    if (!is_valid_topic_filter(filter)) throw ConfigError("subscribe: invalid topic filter '" + filter + "'");
    if (qos < 0 || qos > 2) throw ConfigError("subscribe: QoS must be 0, 1 or 2");
    if (!handler) throw ConfigError("subscribe: no handler for '" + filter + "'");
    auto [completion, state] = detail::CompletionAccess::make();
    const std::uint64_t id = s.subscriptions.add(filter, qos, std::move(handler), state);
    const auto client = s.current();
    if (!client->is_connected()) return completion;  // the SUBACK at the next connection completes it
    try {
        s.send_subscribe(*client, filter, qos, state, id);
    } catch (const mqtt::exception& e) {
        state->complete(Outcome{OutcomeStatus::failed, ReasonCode::success,
                                "subscribe '" + filter + "' failed: " + e.what()});
    }
    return completion;
}

void SecureSession::subscribe(const std::string& filter, IntCompatible<QoS> qos, Handler handler) {
    const Completion completion = subscribe_async(filter, qos, std::move(handler));
    if (!is_connected() && !completion.done()) return;  // subscribed when connect() connects
    const std::optional<Outcome> outcome = completion.wait_for(impl_->options.connect_timeout);
    if (!outcome) {
        throw ConnectionError("subscribe '" + filter + "': no SUBACK within the timeout", ConnectFailure::timeout);
    }
    if (outcome->status == OutcomeStatus::refused) {
        throw ConnectionError("subscribe '" + filter + "': " + outcome->detail, ConnectFailure::not_authorized);
    }
    if (!outcome->ok()) throw ConnectionError("subscribe '" + filter + "': " + outcome->detail, ConnectFailure::other);
}

Completion SecureSession::unsubscribe_async(const std::string& filter) {
    Impl& s = *impl_;
    s.subscriptions.remove(filter);
    const auto client = s.current();
    if (!client->is_connected()) return Completion();  // nothing at the broker to remove now
    auto [completion, state] = detail::CompletionAccess::make();
    const std::uintptr_t id = s.operations.track_request(state);
    try {
        client->unsubscribe(filter, reinterpret_cast<void*>(id), s.request_listener);
    } catch (const mqtt::exception& e) {
        s.operations.complete_request(id, Outcome{OutcomeStatus::failed, ReasonCode::success,
                                       "unsubscribe '" + filter + "' failed: " + e.what()});
    }
    return completion;
}

void SecureSession::unsubscribe(const std::string& filter) {
    const Completion completion = unsubscribe_async(filter);
    const std::optional<Outcome> outcome = completion.wait_for(impl_->options.connect_timeout);
    if (!outcome) {
        throw ConnectionError("unsubscribe '" + filter + "': no UNSUBACK within the timeout", ConnectFailure::timeout);
    }
    if (!outcome->ok()) throw ConnectionError("unsubscribe '" + filter + "': " + outcome->detail, ConnectFailure::other);
}

void SecureSession::on_event(EventHandler handler) {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    impl_->event_handler = std::move(handler);
}

void SecureSession::on_rejected(RejectHandler handler) {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    impl_->reject_handler = std::move(handler);
}

SessionStats SecureSession::stats() const {
    const Impl& s = *impl_;
    SessionStats st;
    st.published = s.published.load();
    st.publish_failures = s.publish_failures.load();
    st.publishes_sent_again = s.publishes_sent_again.load();
    st.verified = s.verified.load();
    st.unrouted = s.unrouted.load();
    for (std::size_t i = 0; i < reject_reason_count; ++i) {
        st.rejected_by_reason[i] = s.rejected[i].load();
        st.rejected += st.rejected_by_reason[i];
    }
    st.reconnects = s.reconnects.load();
    st.connection_losses = s.connection_losses.load();
    st.handler_errors = s.handler_errors.load();
    st.replay_store_failures = s.replay_store_failures.load();
    st.replay_lease_overruns = s.verifier->replay_guard().store_lease_overruns();
    return st;
}

PreflightReport SecureSession::preflight() const {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    return impl_->report;
}

}  // namespace securemqtt
