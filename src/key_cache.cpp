// SPDX-License-Identifier: Apache-2.0
#include "key_cache.hpp"

namespace securemqtt::detail {

template <typename Matches, typename Lookup>
std::shared_ptr<const KeyEntry> KeyCache::get(const Keyring::Impl& keyring, Matches matches, Lookup lookup) {
    if (busy_.test_and_set(std::memory_order_acquire)) return lookup();  // another thread has it
    struct Release {
        std::atomic_flag& flag;
        ~Release() { flag.clear(std::memory_order_release); }
    } release{busy_};

    // Read before the lookup: a change racing with it leaves the cache stale, never wrong.
    const std::uint64_t generation = keyring.generation.load(std::memory_order_acquire);
    if (generation == generation_) {
        std::shared_ptr<const KeyEntry> key = entry_.lock();
        if (key && matches(*key)) return key;
    }
    std::shared_ptr<const KeyEntry> key = lookup();
    entry_ = key;
    generation_ = generation;
    return key;
}

std::shared_ptr<const KeyEntry> KeyCache::find(const Keyring& keyring, std::string_view key_id) {
    return get(
        *keyring.impl_, [key_id](const KeyEntry& key) { return key.id == key_id; },
        [&keyring, key_id] { return keyring.impl_->find(key_id); });
}

std::shared_ptr<const KeyEntry> KeyCache::signing_key(const Keyring& keyring) {
    return get(
        *keyring.impl_, [](const KeyEntry&) { return true; }, [&keyring] { return keyring.impl_->signing_key(); });
}

}  // namespace securemqtt::detail
