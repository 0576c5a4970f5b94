// SPDX-License-Identifier: Apache-2.0
// KeyCache: the key a Signer or Verifier used last, so that a run of messages under one key
// skips the keyring's mutex and map lookup, and threads verifying under different Verifiers
// do not meet on that mutex.
#pragma once

#include "keyring_impl.hpp"

#include <atomic>
#include <cstdint>
#include <memory>
#include <string_view>

namespace securemqtt::detail {

/// Remembers one key by weak reference, stamped with the keyring's generation. A hit needs the
/// generation unchanged (no key added, removed or made the signing key since) and, for lookups
/// by id, the same id. Weak, so that Keyring::remove_key() still frees and wipes the key at
/// once instead of when the cache next moves on.
///
/// One thread at a time uses the cache (a try-lock, never a wait); a thread that finds it busy
/// takes the keyring's locked path, as does any miss.
class KeyCache {
public:
    /// The key with this id, or null. Throws only what the keyring's mutex throws.
    std::shared_ptr<const KeyEntry> find(const Keyring& keyring, std::string_view key_id);
    /// The signing key, or null. Throws as find().
    std::shared_ptr<const KeyEntry> signing_key(const Keyring& keyring);

private:
    template <typename Matches, typename Lookup>
    std::shared_ptr<const KeyEntry> get(const Keyring::Impl& keyring, Matches matches, Lookup lookup);

    std::atomic_flag busy_ = ATOMIC_FLAG_INIT;
    std::uint64_t generation_ = 0;  // the keyring's generations start at 1: 0 never hits
    std::weak_ptr<const KeyEntry> entry_;
};

}  // namespace securemqtt::detail
