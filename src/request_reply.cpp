// SPDX-License-Identifier: Apache-2.0
#include <securemqtt/request_reply.hpp>

#include <securemqtt/errors.hpp>
#include <securemqtt/topic.hpp>

#include "bounded_wait.hpp"

#include <openssl/rand.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>

namespace securemqtt {

struct Requester::State {
    explicit State(std::vector<std::string> keys) : responder_keys(std::move(keys)) {}
    std::mutex mutex;
    std::condition_variable cv;
    std::map<std::string, std::optional<Reply>> waiting;  // correlation id -> its reply, once come
    std::atomic<std::uint64_t> unmatched{0};
    std::string reply_topic;
    std::vector<std::string> responder_keys;  // empty: any key the keyring lets sign for the topic

    void deliver(const Message& m) {
        const std::optional<std::string>& correlation = m.properties.correlation_data;
        if (!responder_keys.empty() &&
            std::find(responder_keys.begin(), responder_keys.end(), m.key_id) == responder_keys.end()) {
            unmatched.fetch_add(1, std::memory_order_relaxed);  // verified, but not by a responder's key
            return;
        }
        std::lock_guard<std::mutex> lock(mutex);
        const auto it = correlation ? waiting.find(*correlation) : waiting.end();
        if (it == waiting.end() || it->second) {  // nobody waits for it, or it was answered already
            unmatched.fetch_add(1, std::memory_order_relaxed);
            return;
        }
        Reply reply;
        reply.topic = std::string(m.topic);
        reply.payload = std::string(m.payload.as_string_view());
        reply.key_id = std::string(m.key_id);
        reply.timestamp_ms = m.timestamp_ms;
        reply.properties = m.properties;
        it->second = std::move(reply);
        cv.notify_all();
    }
};

namespace {

std::string random_bytes(std::size_t n) {
    std::string raw(n, '\0');
    if (RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(n)) != 1) {
        throw SigningError("request: OpenSSL's random generator failed");
    }
    return raw;
}

std::string random_hex(std::size_t bytes) {
    static const char digits[] = "0123456789abcdef";
    std::string hex;
    for (char c : random_bytes(bytes)) {
        const auto byte = static_cast<unsigned char>(c);
        hex += digits[byte >> 4];
        hex += digits[byte & 15];
    }
    return hex;
}

}  // namespace

Requester::Requester(SecureSession& session, RequesterOptions options)
    : session_(session), options_(std::move(options)), state_(std::make_shared<State>(options_.responder_keys)) {
    if (options_.reply_prefix.empty()) throw ConfigError("requester: reply_prefix is empty");
    state_->reply_topic = options_.reply_prefix + "/" + random_hex(16);
    if (!is_valid_topic_name(state_->reply_topic)) {
        throw ConfigError("requester: reply_prefix '" + options_.reply_prefix + "' does not make a topic name");
    }
    // The handler holds the state, not the Requester: a delivery running while the Requester
    // is destroyed still has it.
    std::shared_ptr<State> state = state_;
    session_.subscribe(state_->reply_topic, options_.qos, [state](const Message& m) { state->deliver(m); });
}

Requester::~Requester() {
    try {
        session_.unsubscribe_async(state_->reply_topic);
    } catch (...) {  // the session counts and logs; a destructor must not throw
    }
}

const std::string& Requester::reply_topic() const noexcept { return state_->reply_topic; }

std::uint64_t Requester::unmatched_replies() const noexcept {
    return state_->unmatched.load(std::memory_order_relaxed);
}

std::optional<Reply> Requester::request(std::string_view topic, ByteView payload, std::chrono::milliseconds timeout,
                                        const MessageProperties& properties) {
    if (properties.response_topic || properties.correlation_data) {
        throw ConfigError("request: the response topic and correlation data are the Requester's to set");
    }
    PublishOptions options;
    options.qos = options_.qos;
    options.properties = properties;
    options.properties.response_topic = state_->reply_topic;
    const std::string correlation = random_bytes(16);
    options.properties.correlation_data = correlation;

    State& s = *state_;
    {
        std::lock_guard<std::mutex> lock(s.mutex);
        s.waiting.emplace(correlation, std::nullopt);
    }
    // A refusal or loss of the request ends the wait early, with its reason.
    auto failed = std::make_shared<std::optional<Outcome>>();
    std::shared_ptr<State> state = state_;
    try {
        session_.publish(topic, payload, options).then([state, failed](const Outcome& outcome) {
            if (outcome.ok()) return;
            std::lock_guard<std::mutex> lock(state->mutex);
            *failed = outcome;
            state->cv.notify_all();
        });
    } catch (...) {  // not sent: nothing to wait for
        std::lock_guard<std::mutex> lock(s.mutex);
        s.waiting.erase(correlation);
        throw;
    }

    std::unique_lock<std::mutex> lock(s.mutex);
    const auto it = s.waiting.find(correlation);
    detail::wait_until_bounded(s.cv, lock, detail::deadline_after(timeout),
                               [&] { return it->second.has_value() || failed->has_value(); });
    std::optional<Reply> reply = std::move(it->second);
    s.waiting.erase(it);  // under the same lock: a reply from now on is counted as unmatched
    if (reply) return reply;
    if (*failed) {
        const Outcome o = **failed;
        lock.unlock();
        throw PublishError("request to '" + std::string(topic) + "' failed (" + std::string(to_string(o.status)) +
                               ", " + std::string(to_string(o.reason)) + "): " + o.detail,
                           o.status);
    }
    return std::nullopt;
}

Completion reply_to(SecureSession& session, const Message& request, ByteView payload, const ReplyOptions& options) {
    if (options.allowed_response_topics.empty()) {
        throw ConfigError("reply: ReplyOptions::allowed_response_topics is empty (say which topics replies may go to)");
    }
    for (const std::string& filter : options.allowed_response_topics) {
        if (!is_valid_topic_filter(filter)) throw ConfigError("reply: '" + filter + "' is not a valid topic filter");
    }
    if (!request.properties.response_topic) {
        throw ConfigError("reply to '" + std::string(request.topic) + "': the request has no response topic");
    }
    const PublishOptions& publish = options.publish;
    if (publish.properties.response_topic || publish.properties.correlation_data) {
        throw ConfigError("reply: the response topic and correlation data come from the request");
    }
    // The requester chose the response topic: a key that may publish requests could otherwise
    // point our signed reply at any topic we may sign for (our own command topic, say).
    const std::string& to = *request.properties.response_topic;
    const bool allowed = std::any_of(options.allowed_response_topics.begin(), options.allowed_response_topics.end(),
                                     [&](const std::string& filter) { return topic_matches(filter, to); });
    if (!allowed) {
        throw SigningError("reply to the request on '" + std::string(request.topic) + "': response topic '" +
                           to.substr(0, 256) + "' is not among the allowed response topics");
    }
    PublishOptions reply = publish;
    reply.properties.correlation_data = request.properties.correlation_data;
    return session.publish(to, payload, reply);
}

}  // namespace securemqtt
