// SPDX-License-Identifier: Apache-2.0
// Keyring: the HMAC keys a process signs and verifies with, by key id, with validity windows
// and topic scopes, so keys can rotate without downtime.
#pragma once

#include <securemqtt/bytes.hpp>
#include <securemqtt/export.hpp>
#include <securemqtt/log.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

SECUREMQTT_DLL_INTERFACE_WARNINGS_PUSH  // MSVC C4251/C4275 on exported classes: see export.hpp

namespace securemqtt {

/// Limits on a key's size (key ids: see is_valid_key_id() in envelope.hpp).
inline constexpr std::size_t min_key_size = 32;     ///< bytes; shorter keys are refused
inline constexpr std::size_t max_key_size = 1024;   ///< bytes

/// How a key may be used besides its bytes.
struct KeyOptions {
    /// The key is not used (to sign or to accept messages) before this time, in milliseconds
    /// since the Unix epoch by the local clock. Unset: no lower bound.
    std::optional<std::int64_t> not_before_ms;
    /// The key is not used at or after this time. Unset: no upper bound.
    std::optional<std::int64_t> not_after_ms;
    /// MQTT topic filters (`+` and `#` allowed) the key may sign for. A message whose arrival
    /// topic matches none of them is rejected as key_not_allowed_for_topic, so one device's key
    /// cannot speak for another device's topics. Empty: every topic name. Either way an arrival topic
    /// that is not a valid topic name (empty, over 65535 bytes, holding `+`, `#` or NUL) is
    /// rejected as key_not_allowed_for_topic.
    std::vector<std::string> topic_scope;
};

namespace detail {
class KeyCache;
}

/// The set of HMAC-SHA256 keys, each under a key id carried in every envelope.
///
/// One key at a time is the signing key; every key verifies. Rotation without downtime:
/// add the next key everywhere (it verifies only), then call set_signing_key() on the senders,
/// then remove_key() the old one once nothing signed with it is in flight.
///
/// Key bytes are kept only inside OpenSSL MAC contexts, are wiped (OPENSSL_cleanse) when freed,
/// and never appear in messages or logs. All member functions are thread-safe; a Signer or
/// Verifier using the keyring sees changes from its next message on.
class SECUREMQTT_EXPORT Keyring {
public:
    /// An empty keyring. `logger` receives warnings such as a key file readable by others.
    explicit Keyring(Logger logger = {});
    ~Keyring();
    Keyring(const Keyring&) = delete;
    Keyring& operator=(const Keyring&) = delete;

    /// Adds a key from raw bytes. Throws ConfigError when the id is invalid (1 to 64 printable
    /// ASCII characters, no space) or already present, the key is shorter than 32 or longer
    /// than 1024 bytes, a topic filter is invalid, or the window is empty.
    void add_key(std::string_view key_id, ByteView key, KeyOptions options = {});

    /// Adds a key written as hexadecimal text (whitespace ignored), as `openssl rand -hex 32`
    /// prints it. Throws ConfigError as add_key(), or when the text is not hex.
    void add_key_hex(std::string_view key_id, std::string_view hex, KeyOptions options = {});

    /// Adds a key from a file holding hex text. Throws ConfigError naming the file when it
    /// cannot be read, is empty or is not hex. On POSIX, logs a warning when the file is
    /// readable by group or others. The text read is wiped after use.
    void add_key_file(std::string_view key_id, const std::string& path, KeyOptions options = {});

    /// Makes `key_id` the key new messages are signed with; the previous signing key stays
    /// as a verify-only key. Throws ConfigError when no such key exists.
    void set_signing_key(std::string_view key_id);

    /// Removes a key (wiping it). Removing the signing key leaves no signing key. Returns false
    /// when there was no such key.
    bool remove_key(std::string_view key_id);

    /// True when a key with this id is present.
    bool contains(std::string_view key_id) const;
    /// The ids of all keys, sorted.
    std::vector<std::string> key_ids() const;
    /// The signing key's id, or an empty string when there is none.
    std::string signing_key_id() const;

private:
    struct Impl;
    friend class detail::KeyCache;  // how Signer and Verifier reach the keys
    std::unique_ptr<Impl> impl_;
};

}  // namespace securemqtt

SECUREMQTT_DLL_INTERFACE_WARNINGS_POP
