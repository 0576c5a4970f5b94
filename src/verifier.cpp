// SPDX-License-Identifier: Apache-2.0
#include <securemqtt/verifier.hpp>

#include "envelope_mac.hpp"
#include "key_cache.hpp"
#include "keyring_impl.hpp"
#include "topic_match.hpp"

#include <securemqtt/replay_guard.hpp>
#include <securemqtt/topic.hpp>

#include <stdexcept>

namespace securemqtt {

Verifier::Verifier(std::shared_ptr<const Keyring> keyring, std::shared_ptr<ReplayGuard> guard,
                   VerifierOptions options)
    : keyring_(std::move(keyring)),
      guard_(std::move(guard)),
      key_cache_(std::make_unique<detail::KeyCache>()),
      options_(std::move(options)) {
    if (!keyring_) throw ConfigError("verifier: keyring is null");
    if (options_.max_envelope_size == 0 || options_.max_envelope_size > max_envelope_size_limit) {
        throw ConfigError("verifier: max_envelope_size must be from 1 to 268435455 bytes");
    }
    for (const AgeAllowance& a : options_.age_allowances) {
        if (!is_valid_topic_filter(a.filter)) throw ConfigError("verifier: invalid age allowance filter '" + a.filter + "'");
        if (a.max_age_ms < 0) throw ConfigError("verifier: age allowance for '" + a.filter + "' is negative");
    }
    if (!guard_) guard_ = std::make_shared<ReplayGuard>();
}

Verifier::~Verifier() = default;

VerifyResult Verifier::verify(std::string_view topic, ByteView envelope, bool retained,
                              ByteView covered_properties) const noexcept {
    const DecodeResult decoded = decode_envelope(envelope, options_.max_envelope_size);
    if (!decoded) return decoded.reason();
    const DecodedEnvelope& env = decoded.envelope();

    std::shared_ptr<const KeyEntry> key;
    try {
        key = key_cache_->find(*keyring_, env.header.key_id);
    } catch (...) {  // std::mutex::lock can throw in theory: fail closed
        return RejectReason::unknown_key;
    }
    if (!key) return RejectReason::unknown_key;

    std::int64_t now = 0;
    try {
        now = options_.clock ? options_.clock() : system_clock_ms();
    } catch (...) {  // a user clock that throws must not let a message through
        return RejectReason::too_old;
    }
    if (!key->valid_at(now)) return RejectReason::key_not_valid;
    if (!key->allows_topic(topic)) return RejectReason::key_not_allowed_for_topic;

    const bool properties_signed = (env.header.flags & envelope_flag_properties) != 0;
    // Without flag bit 1 the signed properties are "none": any that arrived were added on the way.
    if (!properties_signed && !covered_properties.empty()) return RejectReason::bad_mac;
    detail::MacTag expected;
    if (!detail::compute_envelope_mac(key->mac, env.header_bytes, topic, env.payload, expected,
                                      covered_properties) ||
        !detail::tags_equal(expected.data(), env.tag.data(), expected.size())) {
        return RejectReason::bad_mac;
    }

    StreamPosition position;
    position.key_id = env.header.key_id;
    position.stream_id = env.header.stream_id;
    position.counter = env.header.counter;
    position.timestamp_ms = env.header.timestamp_ms;
    position.retained = retained && (env.header.flags & envelope_flag_retain) != 0;
    position.signed_retained = (env.header.flags & envelope_flag_retain) != 0;
    position.topic = topic;
    for (const AgeAllowance& a : options_.age_allowances) {  // filters checked in the constructor
        if (detail::valid_filter_matches(a.filter, topic)) {
            position.max_age_ms = a.max_age_ms;
            break;
        }
    }
    if (const auto reason = guard_->admit(position, now)) return *reason;

    VerifiedMessage message;
    message.topic = topic;
    message.payload = env.payload;
    message.key_id = env.header.key_id;
    message.stream_id = env.header.stream_id;
    message.counter = env.header.counter;
    message.timestamp_ms = env.header.timestamp_ms;
    message.retained = position.retained;
    message.retain_flag = position.signed_retained;
    message.utf8 = (env.header.flags & envelope_flag_utf8) != 0;
    message.properties_signed = properties_signed;
    return message;
}

bool Verifier::confirm(const VerifiedMessage& message) const noexcept {
    if (guard_->store() == nullptr) return true;
    StreamPosition position;
    position.key_id = message.key_id;
    position.stream_id = message.stream_id;
    position.counter = message.counter;
    position.timestamp_ms = message.timestamp_ms;
    position.topic = message.topic;
    position.signed_retained = message.retain_flag;
    for (const AgeAllowance& a : options_.age_allowances) {  // a shared store's expiry needs it
        if (detail::valid_filter_matches(a.filter, message.topic)) {
            position.max_age_ms = a.max_age_ms;
            break;
        }
    }
    return guard_->confirm(position);
}

}  // namespace securemqtt
