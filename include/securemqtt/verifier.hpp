// SPDX-License-Identifier: Apache-2.0
// Verifier: checks a received envelope and yields either the verified message or the reason
// it was rejected. Values, not exceptions: rejection is an expected outcome on the hot path.
#pragma once

#include <securemqtt/bytes.hpp>
#include <securemqtt/clock.hpp>
#include <securemqtt/envelope.hpp>
#include <securemqtt/errors.hpp>
#include <securemqtt/export.hpp>

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

SECUREMQTT_DLL_INTERFACE_WARNINGS_PUSH  // MSVC C4251/C4275 on exported classes: see export.hpp

namespace securemqtt {

class Keyring;
class ReplayGuard;
namespace detail {
class KeyCache;
}

/// Lets messages on topics matching `filter` be older than the replay guard's max_age_ms.
///
/// For Last Will topics: a will is signed when its connection is made and published by the
/// broker when that connection dies, which may be hours later. Give such topics an allowance
/// as long as the longest connection you expect. Replay protection is unchanged (counters are
/// checked as usual), but a receiver that starts afresh accepts a captured will of that age
/// once, as it does a retained message.
///
/// The allowance applies to every message on a matching topic, not only to wills (the
/// envelope does not mark a will as such): someone who can hold back a message on such a topic
/// may deliver it that late. Give wills topics of their own (e.g. "devices/+/will"), never the
/// topics live readings or commands use.
struct AgeAllowance {
    std::string filter;         ///< a valid topic filter
    std::int64_t max_age_ms = 0;  ///< oldest acceptable timestamp, in ms before now
};

/// Settings of a Verifier.
struct VerifierOptions {
    /// Envelopes larger than this are rejected as too_large before any parsing. At most
    /// max_envelope_size_limit.
    std::size_t max_envelope_size = default_max_envelope_size;
    /// Time source for freshness and key validity; empty means system_clock_ms().
    Clock clock;
    /// Topics whose messages may be older than the replay guard allows; the first matching
    /// entry applies. Empty by default.
    std::vector<AgeAllowance> age_allowances;
};

/// A message whose MAC, key, topic scope, freshness and counter all checked out.
///
/// Views point into the envelope buffer and topic passed to Verifier::verify(): copy what you
/// keep beyond their lifetime.
struct VerifiedMessage {
    std::string_view topic;
    ByteView payload;
    std::string_view key_id;
    std::uint64_t stream_id = 0;
    std::uint64_t counter = 0;
    std::int64_t timestamp_ms = 0;
    bool retained = false;  ///< delivered as retained and signed with the retain flag
    bool retain_flag = false;  ///< signed with the retain flag, however it was delivered
    /// Signed with the UTF-8 flag (the application's Payload Format Indicator): the payload is
    /// well-formed UTF-8.
    bool utf8 = false;
    /// Signed with MQTT 5 properties covered (envelope flag bit 1): the properties passed to
    /// verify() are exactly those the sender signed. False: the message arrived with none.
    bool properties_signed = false;
};

/// The outcome of Verifier::verify(): a VerifiedMessage, or a RejectReason.
class [[nodiscard]] VerifyResult {
public:
    VerifyResult(const VerifiedMessage& message) noexcept : message_(message), ok_(true) {}
    VerifyResult(RejectReason reason) noexcept : reason_(reason) {}
    bool ok() const noexcept { return ok_; }
    explicit operator bool() const noexcept { return ok_; }
    /// Why the message was rejected; meaningful only when !ok().
    RejectReason reason() const noexcept { return reason_; }
    /// The verified message; throws std::logic_error when !ok(), so a rejected payload cannot
    /// be read by mistake.
    const VerifiedMessage& message() const {
        if (!ok_) throw std::logic_error("securemqtt: message() called on a rejected VerifyResult");
        return message_;
    }

private:
    VerifiedMessage message_{};
    RejectReason reason_ = RejectReason::malformed;
    bool ok_ = false;
};

/// Verifies envelopes against a keyring and a replay guard.
///
/// Order: size, decode, key lookup, key validity and topic scope, MAC (constant-time
/// comparison), freshness, replay. Thread-safe; allocates nothing per message (a new sender
/// stream costs one entry in the replay guard).
class SECUREMQTT_EXPORT Verifier {
public:
    /// `guard` may be shared by several verifiers that must not accept the same message twice;
    /// null creates a private guard with default options. Throws ConfigError when `keyring` is
    /// null, max_envelope_size is 0 or above the limit, or an age allowance has an invalid
    /// filter or a negative age.
    Verifier(std::shared_ptr<const Keyring> keyring, std::shared_ptr<ReplayGuard> guard = nullptr,
             VerifierOptions options = {});
    ~Verifier();
    Verifier(const Verifier&) = delete;
    Verifier& operator=(const Verifier&) = delete;

    /// Verifies `envelope` as received on `topic`. `retained` is the MQTT retain flag of the
    /// delivery. `covered_properties` is encode_covered_properties() of the MQTT 5 properties
    /// it arrived with (topic alias resolved; empty when it has none): an envelope signed with
    /// properties verifies only with exactly those, and one signed without verifies only
    /// without (else bad_mac). With an MQTT 5 client of your own, always pass what the message
    /// arrived with: left empty, properties added on the way to a message signed without any
    /// go unnoticed -- and must then not be used. SecureSession does this. Never throws.
    ///
    /// With a durable replay store (ReplayGuardOptions::store) an accepted message is only
    /// *reserved*: a copy is rejected as replayed from now on, but the store does not have it
    /// until confirm(). Without a store it is recorded for the guard's life at once.
    VerifyResult verify(std::string_view topic, ByteView envelope, bool retained = false,
                        ByteView covered_properties = {}) const noexcept;

    /// Makes the acceptance of `message` (from verify(), with its views still valid) durable in
    /// the replay store, once the application has handled it.
    ///
    /// The at-least-once boundary: a message whose handling ends before confirm() returned is
    /// admitted again after a restart (the broker redelivers a QoS >= 1 message it had no
    /// acknowledgement for), one confirmed is `replayed` after it. So call it after the message
    /// was handled and before the broker is acknowledged; SecureSession does both. Without a
    /// store it does nothing and returns true. False when the store write failed (the message
    /// is delivered already; after a restart a copy could be admitted once more). Never throws.
    [[nodiscard]] bool confirm(const VerifiedMessage& message) const noexcept;

    /// The replay guard in use.
    ReplayGuard& replay_guard() const noexcept { return *guard_; }

private:
    std::shared_ptr<const Keyring> keyring_;
    std::shared_ptr<ReplayGuard> guard_;
    std::unique_ptr<detail::KeyCache> key_cache_;
    VerifierOptions options_;
};

}  // namespace securemqtt

SECUREMQTT_DLL_INTERFACE_WARNINGS_POP
