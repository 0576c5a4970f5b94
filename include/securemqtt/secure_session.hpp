// SPDX-License-Identifier: Apache-2.0
// SecureSession: an MQTT client over mutual TLS that signs what it publishes and delivers only
// what it has verified.
#pragma once

#include <securemqtt/bytes.hpp>
#include <securemqtt/errors.hpp>
#include <securemqtt/export.hpp>
#include <securemqtt/keyring.hpp>
#include <securemqtt/log.hpp>
#include <securemqtt/mqtt_types.hpp>
#include <securemqtt/outcome.hpp>
#include <securemqtt/properties.hpp>
#include <securemqtt/replay_guard.hpp>
#include <securemqtt/tls_options.hpp>
#include <securemqtt/verifier.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

SECUREMQTT_DLL_INTERFACE_WARNINGS_PUSH  // MSVC C4251/C4275 on exported classes: see export.hpp

namespace securemqtt {

/// A message that passed verification, as a subscription handler receives it. The views are
/// valid only during the handler call: copy what you keep.
struct Message {
    std::string_view topic;
    ByteView payload;
    std::string_view key_id;   ///< the key that signed it
    std::int64_t timestamp_ms = 0;  ///< when it was signed (sender's clock)
    IntCompatible<QoS> qos = QoS::at_most_once;  ///< QoS of the delivery
    bool retained = false;     ///< delivered as a retained message
    /// The MQTT 5 properties it arrived with. Content type, response topic, correlation data,
    /// user properties and payload_format are exactly as the sender signed them (the message
    /// was rejected as bad_mac otherwise); message_expiry is the broker's time remaining, not
    /// signed. Empty under MQTT 3.1.1 (payload_format excepted: it is an envelope flag).
    MessageProperties properties;
};

/// How to publish one message.
struct PublishOptions {
    IntCompatible<QoS> qos = QoS::at_least_once;
    bool retain = false;
    /// MQTT 5 properties (docs/envelope-v1.md §2.1 says which are signed). Any but
    /// payload_format needs mqtt_version 5.
    MessageProperties properties;
};

/// The message the broker publishes if the session ends without disconnect().
///
/// It is signed as a stream of its own, afresh for every connection (automatic reconnections
/// included), so each will a subscriber receives is new to it. Its timestamp is the moment its
/// connection was made, and the broker publishes it when that connection dies, possibly much
/// later: give the will topic's subscribers an AgeAllowance (VerifierOptions::age_allowances)
/// as long as the longest connection, or they reject it as too_old.
struct LastWill {
    std::string topic;
    std::string payload;
    IntCompatible<QoS> qos = QoS::at_least_once;
    bool retain = false;
};

/// Which handlers a verified message reaches when its topic matches several subscriptions
/// (e.g. "devices/#" and "devices/d1/temp").
enum class Delivery {
    /// Default: once per session, to the handler of the earliest-made matching subscription.
    /// (The broker may still send one copy per matching subscription; the copies after the
    /// first are rejected as `replayed`, counted, and never delivered.)
    once,
    /// To the handler of every matching subscription, each once, in the order they were made.
    every_matching_subscription,
};

/// The mode's snake_case name, e.g. "every_matching_subscription".
SECUREMQTT_EXPORT std::string_view to_string(Delivery delivery) noexcept;

/// What happened to a session's connection, as SecureSession::on_event() reports it.
enum class SessionEventType : std::uint8_t {
    /// A connection was made: by connect() or reload() (reconnect false), or by the session's
    /// reconnection loop after a loss (reconnect true). session_present: the broker resumed a
    /// persistent session (its subscriptions and queued messages).
    connected,
    /// The connection broke (detail: the MQTT client's cause, often none). A reconnecting
    /// event follows while auto_reconnect is on and disconnect() was not called.
    connection_lost,
    /// The reconnection loop starts attempt number `attempt`, after waiting `delay`. detail:
    /// why the previous attempt failed, for attempts after the first.
    reconnecting,
    /// The connection ended on purpose: disconnect() (by_broker false), or the broker sent an
    /// MQTT 5 DISCONNECT with `reason` (by_broker true; a connection_lost event follows). A
    /// connection reload() replaces is not reported (the new one's connected is).
    disconnected,
};

/// The type's snake_case name, e.g. "connection_lost".
SECUREMQTT_EXPORT std::string_view to_string(SessionEventType type) noexcept;

/// One lifecycle event; which fields mean something depends on the type (see there).
struct SessionEvent {
    SessionEventType type = SessionEventType::connected;
    bool reconnect = false;
    bool session_present = false;
    int attempt = 0;
    std::chrono::milliseconds delay{0};
    bool by_broker = false;
    ReasonCode reason = ReasonCode::success;
    std::string detail;
};

/// Everything a SecureSession needs.
struct SessionOptions {
    /// "mqtts://host:port" or "ssl://host:port" (IPv6 as [::1]). Port 8883 if omitted.
    std::string server_uri;
    /// MQTT client id; must be unique per broker. Empty: a random one (clean sessions only).
    std::string client_id;
    TlsOptions tls;
    /// Keys to sign with (its signing key) and to verify with. Required.
    std::shared_ptr<Keyring> keyring;
    VerifierOptions verifier;
    /// Replay protection. With `replay.store` (open_replay_store()) what was delivered stays
    /// `replayed` across restarts, and delivery is at least once: a message is recorded in the
    /// store after its handlers returned (even by throwing) and before the MQTT client
    /// acknowledges it, so one whose handling a crash cut short is delivered again when the
    /// broker redelivers it (QoS >= 1, persistent session), and only then.
    ReplayGuardOptions replay;
    /// MqttVersion::v3_1_1 or MqttVersion::v5 (the old 4 and 5 still compile, deprecated).
    IntCompatible<MqttVersion> mqtt_version = MqttVersion::v3_1_1;
    std::chrono::seconds keep_alive{30};
    /// false: a persistent session (the broker keeps subscriptions and queued QoS >= 1
    /// messages across reconnects; needs a fixed client_id).
    bool clean_session = true;
    /// MQTT 5 only: how long the broker keeps the session after a disconnect (Session Expiry
    /// Interval). Unset: never expires for a persistent session (as mosquitto_sub -c), 0 for a
    /// clean one. (MQTT 3.1.1 has no such setting: a persistent session lasts until cleaned.)
    std::optional<std::chrono::seconds> session_expiry;
    std::optional<LastWill> will;
    /// Bounds each connect and each wait for a broker's answer (1 ms to 24 h).
    std::chrono::milliseconds connect_timeout{10000};
    /// Reconnect automatically after a loss, with exponential backoff between these bounds
    /// (the session's own loop, so each attempt carries a freshly signed will; stopped by
    /// disconnect()). reconnect_max is at most 24 h.
    bool auto_reconnect = true;
    std::chrono::seconds reconnect_min{1};
    std::chrono::seconds reconnect_max{30};
    /// Publishes held while disconnected (and queued beyond the in-flight window). When full,
    /// publish() throws PublishError (status() buffer_full) and counts the message: never a
    /// silent drop.
    int offline_buffer = 10000;
    /// QoS >= 1 messages in flight at once (awaiting PUBACK/PUBCOMP).
    int max_inflight = 1024;
    /// Receives the library's log messages (never key material or whole envelopes).
    Logger logger;
    /// Which handlers a message matching several subscriptions reaches.
    Delivery delivery = Delivery::once;
};

/// Counters since the session was made.
struct SessionStats {
    std::uint64_t published = 0;        ///< handed to the MQTT client after signing
    std::uint64_t publish_failures = 0; ///< refused: buffer full, or failed after hand-over (e.g. an MQTT 5 PUBACK with an error reason code)
    /// QoS >= 1 publishes the MQTT client failed when the connection broke under their write,
    /// while it may still send them after reconnecting: the session published each once more
    /// (counted in published once only). A receiver drops a second copy as `replayed`.
    std::uint64_t publishes_sent_again = 0;
    std::uint64_t verified = 0;         ///< passed verification (delivered, or counted in unrouted)
    /// Verified, but no subscription of this session matches its topic (e.g. one the broker kept
    /// for a persistent session from an earlier run): not delivered, and logged at warning level
    /// once per topic (the first 64 topics).
    std::uint64_t unrouted = 0;
    std::uint64_t rejected = 0;         ///< sum of rejected_by_reason
    std::array<std::uint64_t, reject_reason_count> rejected_by_reason{};  ///< indexed by RejectReason
    std::uint64_t reconnects = 0;       ///< successful reconnections after a loss
    std::uint64_t connection_losses = 0;
    std::uint64_t handler_errors = 0;   ///< exceptions thrown by handlers (caught and logged)
    /// Delivered messages the replay store (ReplayGuardOptions::store) could not record after
    /// their handlers returned; logged at error level once per outage. After a restart a copy
    /// of such a message may be delivered once more.
    std::uint64_t replay_store_failures = 0;
    /// Shared store only: messages another verifier of the group delivered too because this
    /// session's handling outlasted ReplayGuardOptions::store_lease_ms (delivered twice).
    std::uint64_t replay_lease_overruns = 0;

    std::uint64_t rejected_for(RejectReason reason) const noexcept {
        return rejected_by_reason[static_cast<std::size_t>(reason)];
    }
};

/// An MQTT client session over mutual TLS with signed and verified messages.
///
/// Threads: handlers (subscription handlers, on_rejected) run on the MQTT client's callback
/// thread, one at a time, and must not block for long; an exception they throw is caught,
/// counted and logged. All member functions are thread-safe and may be called from handlers,
/// except connect(), disconnect() and the destructor, which wait for the network.
class SECUREMQTT_EXPORT SecureSession {
public:
    using Handler = std::function<void(const Message&)>;
    using RejectHandler = std::function<void(std::string_view topic, RejectReason reason)>;
    using EventHandler = std::function<void(const SessionEvent& event)>;

    /// Validates the options and runs the TLS preflight (no network I/O yet). Throws
    /// ConfigError or TlsError naming the file or option and the cause.
    explicit SecureSession(SessionOptions options);
    /// Disconnects if connected; removes any temporary credential files.
    ~SecureSession();
    SecureSession(const SecureSession&) = delete;
    SecureSession& operator=(const SecureSession&) = delete;

    /// Connects and waits up to the connect timeout; returns once the subscriptions made before
    /// it are acknowledged by the broker (so nothing published after connect() returns is
    /// missed). Throws
    /// ConnectionError with a ConnectFailure and OpenSSL's or the broker's words, e.g.
    /// "TLS handshake failed: certificate verify failed (hostname mismatch)".
    void connect();
    /// Takes up renewed TLS credentials without a restart: re-reads the certificate and key files
    /// (or uses `tls` when given), runs the preflight, and reconnects with them. Paho caches its
    /// TLS context, so the MQTT client underneath is rebuilt: subscriptions are restored, and
    /// publishes the broker has not acknowledged are sent again on the new connection (a receiver
    /// that already had one drops the copy as replayed). Throws like the constructor and
    /// connect(); if the new credentials fail the preflight, the current connection stays.
    void reload(std::optional<TlsOptions> tls = std::nullopt);
    /// Disconnects cleanly (the will is not published), waiting up to `timeout`.
    void disconnect(std::chrono::milliseconds timeout = std::chrono::milliseconds(5000));
    bool is_connected() const;

    /// Signs `payload` for `topic` and publishes it. Returns once the MQTT client has it, with
    /// the publish's Completion: success when the broker acknowledged it (QoS 0: when written),
    /// else why not -- `refused` with the broker's MQTT 5 reason code (e.g. not_authorized for
    /// an ACL refusal), `connection_lost`, `session_closed`. A publish the connection broke
    /// under and that goes out again on a new connection completes once, with the outcome of
    /// that copy. Ignoring the Completion is fine: failures are also counted in stats() and
    /// logged. A publish also carried over while a replaced connection still delivers it
    /// completes with whichever copy the broker answers first. Throws SigningError (no key,
    /// topic out of scope) or PublishError (status() buffer_full: never handed over).
    Completion publish(std::string_view topic, ByteView payload, IntCompatible<QoS> qos = QoS::at_least_once,
                       bool retain = false);
    /// As above, with MQTT 5 properties. Throws ConfigError when a property other than
    /// payload_format is set under MQTT 3.1.1, or a value breaks MQTT's rules (a string that is
    /// not UTF-8, a response topic that is not a topic name, ...): sent, it would make the
    /// broker drop the connection. SigningError when payload_format is utf8 and the payload is
    /// not well-formed UTF-8.
    Completion publish(std::string_view topic, ByteView payload, const PublishOptions& options);
    /// Waits until every QoS >= 1 publish so far is acknowledged, including those waiting to
    /// be published again after a reconnect (stats().publishes_sent_again); false on timeout,
    /// or when a publish failed (the broker refused it: counted in stats().publish_failures and
    /// logged at error level with the broker's reason).
    bool flush(std::chrono::milliseconds timeout);
    /// QoS >= 1 publishes handed to the MQTT client and not yet acknowledged (or failed), and
    /// those waiting to be published again after a reconnect.
    std::size_t unacknowledged() const;

    /// Subscribes `filter` and calls `handler` with each verified message whose topic matches
    /// (see SessionOptions::delivery when several do). A shared subscription
    /// "$share/GROUP/FILTER" goes to the broker as it is and matches topics by FILTER.
    /// The subscription is remembered and restored after reconnects. Throws ConfigError for an
    /// invalid filter, ConnectionError when the broker refuses it (when connected).
    /// Blocks for the SUBACK when connected (at most connect_timeout); otherwise returns and
    /// connect() subscribes, failing when the broker refuses the filter. A refused filter is
    /// dropped (not restored at reconnections). Not from a handler or a Completion callback:
    /// they run on the thread that would deliver the SUBACK (use subscribe_async there).
    void subscribe(const std::string& filter, IntCompatible<QoS> qos, Handler handler);
    /// As subscribe(), without blocking: the Completion says what the broker answered (when
    /// not connected: at the next connection) -- success with the granted QoS as the reason
    /// (success, granted_qos_1, granted_qos_2), or `refused` with the reason (MQTT 3.1.1's
    /// SUBACK failure is unspecified_error). The handler is in place from now on either way.
    Completion subscribe_async(const std::string& filter, IntCompatible<QoS> qos, Handler handler);
    /// Removes the subscription and, when connected, waits for the broker's UNSUBACK (at most
    /// connect_timeout; ConnectionError when it does not come or refuses).
    void unsubscribe(const std::string& filter);
    /// As unsubscribe(), without blocking. Not connected: done at once, as far as this session
    /// goes; a broker keeping a persistent session (clean_session false) still has the
    /// subscription and sends its messages after the next connect, counted as unrouted.
    Completion unsubscribe_async(const std::string& filter);
    /// Called with each message that failed verification (never delivered to handlers).
    void on_rejected(RejectHandler handler);
    /// Called with each lifecycle event (set it before connect() to see the first connected).
    /// Events are queued where they happen and delivered one at a time, in that order, on a
    /// thread of the session's own (started at the first event): never with a lock of the
    /// session held and never on the MQTT client's thread, so the handler may call any member
    /// function, connect(), disconnect() and reload() included, and may block (later events
    /// wait). It must not destroy the session. Events queued before the destructor starts are
    /// delivered before it returns; none after (so none for the destructor's own disconnect).
    /// An exception it throws is counted in stats().handler_errors and logged.
    void on_event(EventHandler handler);

    SessionStats stats() const;
    /// What the TLS preflight found (client subject, expiry, warnings), as a copy: reload()
    /// may replace the session's report from another thread at any time.
    PreflightReport preflight() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace securemqtt

SECUREMQTT_DLL_INTERFACE_WARNINGS_POP
