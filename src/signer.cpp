// SPDX-License-Identifier: Apache-2.0
#include <securemqtt/signer.hpp>

#include "envelope_mac.hpp"
#include "key_cache.hpp"
#include "keyring_impl.hpp"

#include <securemqtt/envelope.hpp>
#include <securemqtt/errors.hpp>
#include <securemqtt/properties.hpp>
#include <securemqtt/topic.hpp>

#include <openssl/rand.h>

#include <cstring>
#include <limits>

namespace securemqtt {
namespace {

std::uint64_t random_stream_id() {
    std::uint64_t id = 0;
    if (RAND_bytes(reinterpret_cast<unsigned char*>(&id), sizeof id) != 1) {
        throw SigningError("signer: OpenSSL's random generator failed; cannot draw a stream id");
    }
    return id;
}

}  // namespace

Signer::Signer(std::shared_ptr<const Keyring> keyring, SignerOptions options)
    : keyring_(std::move(keyring)),
      key_cache_(std::make_unique<detail::KeyCache>()),
      clock_(std::move(options.clock)),
      next_counter_(options.first_counter) {
    if (!keyring_) throw ConfigError("signer: keyring is null");
    if (options.first_counter == 0) throw ConfigError("signer: first_counter must be at least 1");
    stream_id_ = options.stream_id ? *options.stream_id : random_stream_id();
}

Signer::~Signer() = default;

std::uint64_t Signer::take_counter() {
    // 0 marks exhaustion: after 2^64 - 1 the counter refuses rather than wraps.
    std::uint64_t current = next_counter_.load(std::memory_order_relaxed);
    do {
        if (current == 0) {
            throw SigningError("signer: the stream's 64-bit counter is exhausted; create a new Signer");
        }
    } while (!next_counter_.compare_exchange_weak(current, current + 1, std::memory_order_relaxed));
    return current;
}

template <typename Buffer>
void Signer::sign_to(std::string_view topic, ByteView payload, Buffer& out, bool retain,
                     const MessageProperties* properties) {
    if (!is_valid_topic_name(topic)) {
        throw SigningError("signer: '" + std::string(topic.substr(0, 256)) + "' is not a valid topic name");
    }
    const std::shared_ptr<const KeyEntry> key = key_cache_->signing_key(*keyring_);
    if (!key) throw SigningError("signer: the keyring has no signing key (Keyring::set_signing_key)");
    const std::int64_t now = clock_ ? clock_() : system_clock_ms();
    if (!key->valid_at(now)) {
        throw SigningError("signer: signing key '" + key->id + "' is outside its validity window");
    }
    if (!key->scope_allows(topic)) {  // a valid topic name, checked above
        throw SigningError("signer: signing key '" + key->id + "' is not allowed to sign for topic '" +
                           std::string(topic) + "'");
    }
    if (payload.size() > std::numeric_limits<std::uint32_t>::max() - envelope_size(max_key_id_size, 0)) {
        throw SigningError("signer: payload too large for an envelope");
    }

    std::uint8_t flags = retain ? envelope_flag_retain : 0;
    std::vector<std::uint8_t> props;
    if (properties != nullptr) {
        if (properties->payload_format == PayloadFormat::utf8) {
            if (!is_well_formed_utf8(payload)) {
                throw SigningError("signer: the payload is marked UTF-8 but is not well-formed UTF-8");
            }
            flags |= envelope_flag_utf8;
        }
        if (properties->has_covered()) {
            flags |= envelope_flag_properties;
            try {
                encode_covered_properties(*properties, props);
            } catch (const std::length_error& e) {
                throw SigningError(std::string("signer: ") + e.what());
            }
        }
    }

    EnvelopeHeader header;
    header.key_id = key->id;
    header.stream_id = stream_id_;
    header.counter = take_counter();
    header.timestamp_ms = now < 0 ? 0 : now;
    header.flags = flags;

    const std::size_t header_size = envelope_header_size(key->id.size());
    out.resize(envelope_size(key->id.size(), payload.size()));
    auto* bytes = reinterpret_cast<std::uint8_t*>(&out[0]);
    encode_envelope_header(header, payload.size(), bytes);
    if (!payload.empty()) std::memcpy(bytes + header_size, payload.data(), payload.size());

    detail::MacTag tag;
    if (!detail::compute_envelope_mac(key->mac, ByteView(bytes, header_size), topic, payload, tag, props)) {
        out.clear();
        throw SigningError("signer: HMAC-SHA256 computation failed in OpenSSL");
    }
    std::memcpy(bytes + header_size + payload.size(), tag.data(), tag.size());
}

void Signer::sign_into(std::string_view topic, ByteView payload, std::vector<std::uint8_t>& out, bool retain) {
    sign_to(topic, payload, out, retain, nullptr);
}

void Signer::sign_into(std::string_view topic, ByteView payload, std::string& out, bool retain) {
    sign_to(topic, payload, out, retain, nullptr);
}

void Signer::sign_into(std::string_view topic, ByteView payload, std::vector<std::uint8_t>& out, bool retain,
                       const MessageProperties& properties) {
    sign_to(topic, payload, out, retain, &properties);
}

void Signer::sign_into(std::string_view topic, ByteView payload, std::string& out, bool retain,
                       const MessageProperties& properties) {
    sign_to(topic, payload, out, retain, &properties);
}

std::vector<std::uint8_t> Signer::sign(std::string_view topic, ByteView payload, bool retain) {
    std::vector<std::uint8_t> out;
    sign_into(topic, payload, out, retain);
    return out;
}

std::vector<std::uint8_t> Signer::sign(std::string_view topic, ByteView payload, bool retain,
                                       const MessageProperties& properties) {
    std::vector<std::uint8_t> out;
    sign_into(topic, payload, out, retain, properties);
    return out;
}

}  // namespace securemqtt
