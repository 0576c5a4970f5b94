// SPDX-License-Identifier: Apache-2.0
// MacKey: one HMAC-SHA256 key, keyed once, computing MACs from many threads.
#pragma once

#include <securemqtt/bytes.hpp>

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <vector>

typedef struct evp_mac_ctx_st EVP_MAC_CTX;

namespace securemqtt::detail {

using MacTag = std::array<std::uint8_t, 32>;

/// Keying HMAC derives the inner and outer pad states; doing it once per key and re-initialising
/// a keyed EVP_MAC_CTX per message (EVP_MAC_init with no key) is about four times faster than
/// the one-shot HMAC() at 256 bytes. A context serves one thread at a time, so idle contexts wait
/// in a lock-free slot (the common, single-threaded case: one atomic exchange each way) backed
/// by a small pool; a thread that finds both empty duplicates the keyed prototype.
class MacKey {
public:
    /// Keys a prototype context. Throws Error with OpenSSL's reason on failure.
    explicit MacKey(ByteView key);
    ~MacKey();
    MacKey(const MacKey&) = delete;
    MacKey& operator=(const MacKey&) = delete;

    /// MAC of the concatenation of `parts`. Returns false only when OpenSSL fails (out of
    /// memory), in which case `out` is zeroed.
    bool compute(const ByteView* parts, std::size_t count, MacTag& out) const noexcept;

private:
    EVP_MAC_CTX* acquire() const noexcept;
    void release(EVP_MAC_CTX* ctx) const noexcept;

    static constexpr std::size_t pool_capacity = 8;
    EVP_MAC_CTX* prototype_ = nullptr;
    mutable std::atomic<EVP_MAC_CTX*> slot_{nullptr};
    mutable std::mutex mutex_;
    mutable std::vector<EVP_MAC_CTX*> pool_;  // capacity reserved up front: no allocation later
};

/// Equality of two tags in time independent of their contents.
bool tags_equal(const std::uint8_t* a, const std::uint8_t* b, std::size_t size) noexcept;

}  // namespace securemqtt::detail
