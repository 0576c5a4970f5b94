// SPDX-License-Identifier: Apache-2.0
// The inside of Keyring, shared with Signer and Verifier.
#pragma once

#include "mac.hpp"

#include <securemqtt/keyring.hpp>

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

namespace securemqtt {

/// One key: its id, its pre-keyed MAC state and its policy. Immutable once made; shared with
/// any Signer or Verifier using it, so removing it from the keyring never pulls it from under
/// a MAC in progress.
struct KeyEntry {
    KeyEntry(std::string key_id, ByteView key, KeyOptions key_options)
        : id(std::move(key_id)), mac(key), options(std::move(key_options)) {}

    bool valid_at(std::int64_t now_ms) const noexcept;
    /// For a received message: `topic` is a valid topic name and the scope allows it.
    bool allows_topic(std::string_view topic) const noexcept;
    /// The scope alone, for a topic already known to be a valid topic name (the Signer's).
    bool scope_allows(std::string_view topic) const noexcept;

    const std::string id;
    const detail::MacKey mac;
    const KeyOptions options;
};

struct Keyring::Impl {
    Logger logger;
    mutable std::mutex mutex;
    std::map<std::string, std::shared_ptr<const KeyEntry>, std::less<>> keys;
    std::shared_ptr<const KeyEntry> signing;
    /// Bumped under the mutex by every change to `keys` or `signing`; see KeyCache.
    std::atomic<std::uint64_t> generation{1};

    std::shared_ptr<const KeyEntry> find(std::string_view key_id) const;
    std::shared_ptr<const KeyEntry> signing_key() const;
    void log(LogLevel level, const std::string& message) const noexcept;
};

}  // namespace securemqtt
