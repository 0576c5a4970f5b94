// SPDX-License-Identifier: Apache-2.0
// Signer: turns (topic, payload) into a v1 envelope with the keyring's signing key.
#pragma once

#include <securemqtt/bytes.hpp>
#include <securemqtt/clock.hpp>
#include <securemqtt/export.hpp>

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

SECUREMQTT_DLL_INTERFACE_WARNINGS_PUSH  // MSVC C4251/C4275 on exported classes: see export.hpp

namespace securemqtt {

class Keyring;
struct MessageProperties;
namespace detail {
class KeyCache;
}

/// Settings of a Signer.
struct SignerOptions {
    /// Time source for envelope timestamps; empty means system_clock_ms().
    Clock clock;
    /// The stream id. Leave unset: each Signer draws a fresh random one from OpenSSL's CSPRNG,
    /// which is what keeps counters unique across restarts without stored state. Setting it is
    /// for test vectors; reusing a stream id across restarts gets the new messages rejected as
    /// replayed.
    std::optional<std::uint64_t> stream_id;
    /// The first counter value (at least 1). For tests of counter exhaustion.
    std::uint64_t first_counter = 1;
};

/// Signs messages as one sender stream: a random 64-bit stream id and a counter that starts
/// at 1 and increases by one per message.
///
/// A new Signer (for example after a restart) is a new stream, so receivers never see a counter
/// go backwards within a stream. When the counter would wrap after 2^64 - 1 messages, signing
/// is refused instead. Thread-safe: several threads may sign through one Signer; the counter
/// order then follows the order in which threads obtain counters.
class SECUREMQTT_EXPORT Signer {
public:
    /// Throws SigningError when no random stream id can be drawn, ConfigError when
    /// `first_counter` is 0 or `keyring` is null.
    explicit Signer(std::shared_ptr<const Keyring> keyring, SignerOptions options = {});
    ~Signer();
    Signer(const Signer&) = delete;
    Signer& operator=(const Signer&) = delete;

    /// Signs `payload` for `topic` into `out`, replacing its contents and reusing its capacity
    /// (no allocation once it is large enough). `retain` sets the envelope's retain flag; pass
    /// the same value as the MQTT publish. Throws SigningError when the keyring has no signing
    /// key, the key is outside its validity window or topic scope, the topic is not a valid
    /// topic name, or the counter is exhausted.
    void sign_into(std::string_view topic, ByteView payload, std::vector<std::uint8_t>& out,
                   bool retain = false);
    /// As above, into a std::string (which MQTT clients can take over without a copy).
    void sign_into(std::string_view topic, ByteView payload, std::string& out, bool retain = false);

    /// As sign_into(), returning a new buffer.
    [[nodiscard]] std::vector<std::uint8_t> sign(std::string_view topic, ByteView payload,
                                                 bool retain = false);

    /// As above, for a message published with MQTT 5 `properties` (docs/envelope-v1.md §2.1):
    /// the covered ones (content type, response topic, correlation data, user properties) go
    /// under the MAC -- publish the message with exactly these -- and PayloadFormat::utf8 sets
    /// the envelope's UTF-8 flag (SigningError when the payload is not well-formed UTF-8).
    /// message_expiry is not signed.
    void sign_into(std::string_view topic, ByteView payload, std::vector<std::uint8_t>& out, bool retain,
                   const MessageProperties& properties);
    void sign_into(std::string_view topic, ByteView payload, std::string& out, bool retain,
                   const MessageProperties& properties);
    [[nodiscard]] std::vector<std::uint8_t> sign(std::string_view topic, ByteView payload, bool retain,
                                                 const MessageProperties& properties);

    /// This signer's stream id.
    std::uint64_t stream_id() const noexcept { return stream_id_; }
    /// The counter the next message will carry (0 once exhausted).
    std::uint64_t next_counter() const noexcept { return next_counter_.load(std::memory_order_relaxed); }

private:
    std::uint64_t take_counter();
    template <typename Buffer>
    void sign_to(std::string_view topic, ByteView payload, Buffer& out, bool retain,
                 const MessageProperties* properties);

    std::shared_ptr<const Keyring> keyring_;
    std::unique_ptr<detail::KeyCache> key_cache_;
    Clock clock_;
    std::uint64_t stream_id_ = 0;
    std::atomic<std::uint64_t> next_counter_;
};

}  // namespace securemqtt

SECUREMQTT_DLL_INTERFACE_WARNINGS_POP
