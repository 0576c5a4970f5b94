// SPDX-License-Identifier: Apache-2.0
// Signed request/response (MQTT 5) on top of SecureSession: a request carries a fresh,
// unguessable correlation id and a private response topic, both under the envelope's MAC, and
// only a verified reply on that topic with that correlation id answers it.
//
// What this protects (docs/security.md, "Request/response"): a request re-published with another
// response topic or correlation data is rejected as bad_mac, so nobody without a key can send a
// device's reply elsewhere or match it to another request; a replayed request or reply is
// `replayed`; a reply from a key not allowed to sign for the response topic is rejected by the
// key's topic scope. What keys do is up to the deployment: a holder of a key that may publish
// requests chooses their response topic (reply_to() answers only to allowed ones), and any key
// that may sign for the reply topic can answer (RequesterOptions::responder_keys narrows it).
// The broker's ACL decides who may read requests and replies: they are signed, not encrypted.
#pragma once

#include <securemqtt/bytes.hpp>
#include <securemqtt/export.hpp>
#include <securemqtt/outcome.hpp>
#include <securemqtt/properties.hpp>
#include <securemqtt/secure_session.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

SECUREMQTT_DLL_INTERFACE_WARNINGS_PUSH  // MSVC C4251/C4275 on exported classes: see export.hpp

namespace securemqtt {

/// A verified reply, copied out of the delivery (it outlives the handler call).
struct Reply {
    std::string topic;
    std::string payload;
    std::string key_id;  ///< the key that signed the reply
    std::int64_t timestamp_ms = 0;
    MessageProperties properties;
};

/// Settings of a Requester.
struct RequesterOptions {
    /// Replies come to "<reply_prefix>/<32 random hex digits>", one topic per Requester. Choose
    /// a prefix this session may subscribe to (broker ACL) and the responders' keys may sign for
    /// (key topic scopes), e.g. "devices/app-1/replies". Required.
    std::string reply_prefix;
    IntCompatible<QoS> qos = QoS::at_least_once;  ///< of the requests and of the reply subscription
    /// Key ids whose replies are taken; empty: any key the keyring lets sign for the reply
    /// topic. The correlation id travels in clear (signed, not secret): whoever may read the
    /// request and holds a key allowed on the reply topic can answer it. Name the responders'
    /// keys here, or check Reply::key_id.
    std::vector<std::string> responder_keys;
};

/// Sends requests and waits for their verified replies. Needs a session with mqtt_version 5.
///
/// Under SessionOptions::delivery == once, a reply reaches only the earliest-made subscription
/// matching the reply topic: do not cover the reply prefix with a subscription made before the
/// Requester (e.g. "#"), or replies go there instead.
class SECUREMQTT_EXPORT Requester {
public:
    /// Subscribes the private reply topic (blocking for the SUBACK when connected, as
    /// SecureSession::subscribe). Throws ConfigError for an empty or invalid prefix, and what
    /// subscribe() throws.
    Requester(SecureSession& session, RequesterOptions options);
    /// Unsubscribes (errors are logged by the session, not thrown). Replies still on their way
    /// are counted by the session as unrouted.
    ~Requester();
    Requester(const Requester&) = delete;
    Requester& operator=(const Requester&) = delete;

    /// Publishes `payload` to `topic` with `properties` plus this Requester's response topic and
    /// a fresh 16-byte correlation id (both signed), and waits up to `timeout` for the verified
    /// reply carrying that correlation id. Nothing when none came in time (a late reply is then
    /// counted in unmatched_replies()); a timeout of milliseconds::max() waits for ever. Throws ConfigError when `properties` already has a
    /// response topic or correlation data, or the session is not MQTT 5; PublishError with the
    /// outcome's status when the broker refused the request or the connection lost it;
    /// SigningError as publish(). Blocks: not from a handler, an event handler or a Completion
    /// callback (the reply would be delivered on the thread that waits).
    std::optional<Reply> request(std::string_view topic, ByteView payload, std::chrono::milliseconds timeout,
                                 const MessageProperties& properties = {});

    /// The private topic replies come to.
    const std::string& reply_topic() const noexcept;
    /// Verified messages on the reply topic that answered no waiting request: late replies,
    /// a second reply to one request, a reply without correlation data, or one signed with a
    /// key not among responder_keys.
    std::uint64_t unmatched_replies() const noexcept;

    struct State;

private:
    SecureSession& session_;
    RequesterOptions options_;
    std::shared_ptr<State> state_;
};

/// How a responder answers.
struct ReplyOptions {
    /// Topic filters a response topic must match, e.g. {"devices/+/replies/#"}. Required: the
    /// requester chose the response topic, and without this a key that may publish requests
    /// could point the responder's signed reply at any topic the responder may sign for -- its
    /// own command topic, say. Keep them apart from the topics the responder subscribes to.
    std::vector<std::string> allowed_response_topics;
    /// QoS, retain and further properties of the reply (not its response topic or correlation
    /// data).
    PublishOptions publish;
};

/// Publishes `payload` as the reply to `request` (a Message delivered to a handler): to its
/// response topic, with its correlation data, both of which the requester signed. Throws
/// ConfigError when `options` allow no topic or set those two properties, or the request has no
/// response topic; SigningError when the response topic matches none of
/// `options.allowed_response_topics` (nothing is sent) or this session's key may not sign for
/// it; and what publish() throws. From a handler, an exception is counted in
/// stats().handler_errors and logged by the session.
SECUREMQTT_EXPORT Completion reply_to(SecureSession& session, const Message& request, ByteView payload,
                                      const ReplyOptions& options);

}  // namespace securemqtt

SECUREMQTT_DLL_INTERFACE_WARNINGS_POP
