// SPDX-License-Identifier: Apache-2.0
#include "keyring_impl.hpp"

#include "openssl_init.hpp"

#include "file_access.hpp"
#include "hex.hpp"
#include "topic_match.hpp"

#include <securemqtt/envelope.hpp>
#include <securemqtt/errors.hpp>
#include <securemqtt/topic.hpp>

namespace securemqtt {

bool KeyEntry::valid_at(std::int64_t now_ms) const noexcept {
    if (options.not_before_ms && now_ms < *options.not_before_ms) return false;
    if (options.not_after_ms && now_ms >= *options.not_after_ms) return false;
    return true;
}

bool KeyEntry::allows_topic(std::string_view topic) const noexcept {
    // No key, scoped or not, is allowed for what is not a topic name: a Signer refuses to sign
    // for one, and an unscoped key must not accept more than the scope "#" plus $-topics would.
    if (options.topic_scope.empty()) return is_valid_topic_name(topic);
    return scope_allows(topic);  // valid_filter_matches() refuses what is not a topic name
}

bool KeyEntry::scope_allows(std::string_view topic) const noexcept {
    if (options.topic_scope.empty()) return true;
    for (const std::string& filter : options.topic_scope) {
        if (detail::valid_filter_matches(filter, topic)) return true;  // checked in add_key()
    }
    return false;
}

std::shared_ptr<const KeyEntry> Keyring::Impl::find(std::string_view key_id) const {
    std::lock_guard<std::mutex> lock(mutex);
    const auto it = keys.find(key_id);
    return it == keys.end() ? nullptr : it->second;
}

std::shared_ptr<const KeyEntry> Keyring::Impl::signing_key() const {
    std::lock_guard<std::mutex> lock(mutex);
    return signing;
}

void Keyring::Impl::log(LogLevel level, const std::string& message) const noexcept {
    if (!logger) return;
    try {
        logger(level, message);
    } catch (...) {  // a logger must not break key loading
    }
}

Keyring::Keyring(Logger logger) : impl_(std::make_unique<Impl>()) {
    detail::keep_openssl_until_exit();
    impl_->logger = std::move(logger);
}

Keyring::~Keyring() = default;

namespace {

std::string describe(std::string_view key_id) {
    // Only valid ids are echoed; anything else could be a secret pasted in the wrong place.
    return is_valid_key_id(key_id) ? "key '" + std::string(key_id) + "'" : std::string("key");
}

void check_new_key(std::string_view key_id, ByteView key, const KeyOptions& options) {
    if (!is_valid_key_id(key_id)) {
        throw ConfigError("key id must be 1 to 64 printable ASCII characters without spaces (got " +
                          std::to_string(key_id.size()) + " bytes)");
    }
    if (key.size() < min_key_size) {
        throw ConfigError(describe(key_id) + ": key is " + std::to_string(key.size()) +
                          " bytes, at least 32 are required (openssl rand -hex 32)");
    }
    if (key.size() > max_key_size) {
        throw ConfigError(describe(key_id) + ": key is longer than 1024 bytes");
    }
    for (const std::string& filter : options.topic_scope) {
        if (!is_valid_topic_filter(filter)) {
            throw ConfigError(describe(key_id) + ": invalid topic scope filter '" + filter + "'");
        }
    }
    if (options.not_before_ms && options.not_after_ms && *options.not_after_ms <= *options.not_before_ms) {
        throw ConfigError(describe(key_id) + ": not_after must be later than not_before");
    }
}

}  // namespace

void Keyring::add_key(std::string_view key_id, ByteView key, KeyOptions options) {
    check_new_key(key_id, key, options);
    auto entry = std::make_shared<const KeyEntry>(std::string(key_id), key, std::move(options));
    std::lock_guard<std::mutex> lock(impl_->mutex);
    if (impl_->keys.count(key_id) != 0) throw ConfigError(describe(key_id) + ": already in the keyring");
    impl_->keys.emplace(std::string(key_id), std::move(entry));
    impl_->generation.fetch_add(1, std::memory_order_release);
}

void Keyring::add_key_hex(std::string_view key_id, std::string_view hex, KeyOptions options) {
    const auto key = detail::decode_hex_secret(hex);
    if (!key) throw ConfigError(describe(key_id) + ": key text is not hexadecimal");
    add_key(key_id, ByteView(key->data(), key->size()), std::move(options));
}

void Keyring::add_key_file(std::string_view key_id, const std::string& path, KeyOptions options) {
    const detail::SecureBuffer text = detail::read_secret_file(path, "HMAC key file");
    const auto key = detail::decode_hex_secret(
        std::string_view(reinterpret_cast<const char*>(text.data()), text.size()));
    if (!key) throw ConfigError("HMAC key file '" + path + "': not hexadecimal text (expected e.g. openssl rand -hex 32)");
    if (key->size() < min_key_size) {
        throw ConfigError("HMAC key file '" + path + "': key is " + std::to_string(key->size()) +
                          " bytes, at least 32 are required (openssl rand -hex 32)");
    }
    add_key(key_id, ByteView(key->data(), key->size()), std::move(options));
    if (detail::readable_by_others(path)) {
        impl_->log(LogLevel::warning, "HMAC key file '" + path +
                                          "' is readable by group or others; restrict it with chmod 600");
    }
}

void Keyring::set_signing_key(std::string_view key_id) {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    const auto it = impl_->keys.find(key_id);
    if (it == impl_->keys.end()) throw ConfigError(describe(key_id) + ": not in the keyring, cannot sign with it");
    impl_->signing = it->second;
    impl_->generation.fetch_add(1, std::memory_order_release);
}

bool Keyring::remove_key(std::string_view key_id) {
    std::shared_ptr<const KeyEntry> removed;  // freed (and wiped) outside the lock
    std::lock_guard<std::mutex> lock(impl_->mutex);
    const auto it = impl_->keys.find(key_id);
    if (it == impl_->keys.end()) return false;
    removed = std::move(it->second);
    impl_->keys.erase(it);
    if (impl_->signing == removed) impl_->signing.reset();
    impl_->generation.fetch_add(1, std::memory_order_release);
    return true;
}

bool Keyring::contains(std::string_view key_id) const { return impl_->find(key_id) != nullptr; }

std::vector<std::string> Keyring::key_ids() const {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    std::vector<std::string> ids;
    ids.reserve(impl_->keys.size());
    for (const auto& entry : impl_->keys) ids.push_back(entry.first);
    return ids;
}

std::string Keyring::signing_key_id() const {
    const auto key = impl_->signing_key();
    return key ? key->id : std::string();
}

}  // namespace securemqtt
