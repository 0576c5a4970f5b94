// SPDX-License-Identifier: Apache-2.0
#include "mac.hpp"

#include <securemqtt/errors.hpp>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <cstring>
#include <memory>
#include <string>

namespace securemqtt::detail {
namespace {

struct MacDeleter {
    void operator()(EVP_MAC* mac) const noexcept { EVP_MAC_free(mac); }
};

std::string openssl_error() {
    const unsigned long code = ERR_get_error();
    ERR_clear_error();
    if (code == 0) return "unknown OpenSSL error";
    char buf[256];
    ERR_error_string_n(code, buf, sizeof buf);
    return buf;
}

}  // namespace

MacKey::MacKey(ByteView key) {
    std::unique_ptr<EVP_MAC, MacDeleter> mac(EVP_MAC_fetch(nullptr, OSSL_MAC_NAME_HMAC, nullptr));
    if (!mac) throw Error("HMAC-SHA256 unavailable: " + openssl_error());
    prototype_ = EVP_MAC_CTX_new(mac.get());  // holds its own reference to the EVP_MAC
    if (prototype_ == nullptr) throw Error("HMAC-SHA256 context: " + openssl_error());

    char digest[] = OSSL_DIGEST_NAME_SHA2_256;
    const OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
        OSSL_PARAM_construct_end(),
    };
    if (EVP_MAC_init(prototype_, key.data(), key.size(), params) != 1) {
        EVP_MAC_CTX_free(prototype_);
        throw Error("HMAC-SHA256 keying failed: " + openssl_error());
    }
    pool_.reserve(pool_capacity);
}

MacKey::~MacKey() {
    // EVP_MAC_CTX_free wipes the key and pad states.
    EVP_MAC_CTX_free(slot_.exchange(nullptr));
    for (EVP_MAC_CTX* ctx : pool_) EVP_MAC_CTX_free(ctx);
    EVP_MAC_CTX_free(prototype_);
}

EVP_MAC_CTX* MacKey::acquire() const noexcept {
    if (EVP_MAC_CTX* ctx = slot_.exchange(nullptr, std::memory_order_acquire)) return ctx;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        if (!pool_.empty()) {
            EVP_MAC_CTX* ctx = pool_.back();
            pool_.pop_back();
            return ctx;
        }
    }
    return EVP_MAC_CTX_dup(prototype_);
}

void MacKey::release(EVP_MAC_CTX* ctx) const noexcept {
    EVP_MAC_CTX* empty = nullptr;
    if (slot_.compare_exchange_strong(empty, ctx, std::memory_order_release, std::memory_order_relaxed)) return;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        if (pool_.size() < pool_capacity) {
            pool_.push_back(ctx);
            return;
        }
    }
    EVP_MAC_CTX_free(ctx);
}

bool MacKey::compute(const ByteView* parts, std::size_t count, MacTag& out) const noexcept {
    EVP_MAC_CTX* ctx = acquire();
    bool ok = ctx != nullptr && EVP_MAC_init(ctx, nullptr, 0, nullptr) == 1;
    for (std::size_t i = 0; ok && i < count; ++i) {
        ok = parts[i].empty() || EVP_MAC_update(ctx, parts[i].data(), parts[i].size()) == 1;
    }
    std::size_t len = 0;
    ok = ok && EVP_MAC_final(ctx, out.data(), &len, out.size()) == 1 && len == out.size();
    if (ctx != nullptr) {
        if (ok) {
            release(ctx);
        } else {
            EVP_MAC_CTX_free(ctx);  // its state is unknown after a failure
        }
    }
    if (!ok) {
        ERR_clear_error();
        OPENSSL_cleanse(out.data(), out.size());
    }
    return ok;
}

bool tags_equal(const std::uint8_t* a, const std::uint8_t* b, std::size_t size) noexcept {
#if defined(__GNUC__) || defined(__clang__)
    // Eight bytes at a time, no branch on the data. CRYPTO_memcmp goes byte by byte: 17 ns for
    // a 32-byte tag, 5% of verifying a 256-byte message. The empty asm hides `diff` from the
    // optimiser, so the OR-accumulation cannot become an early exit.
    std::uint64_t diff = 0;
    std::size_t i = 0;
    for (; i + 8 <= size; i += 8) {
        std::uint64_t x = 0;
        std::uint64_t y = 0;
        std::memcpy(&x, a + i, 8);
        std::memcpy(&y, b + i, 8);
        diff |= x ^ y;
        __asm__("" : "+r"(diff));
    }
    for (; i < size; ++i) {
        diff |= static_cast<std::uint64_t>(a[i] ^ b[i]);
        __asm__("" : "+r"(diff));
    }
    return diff == 0;
#else
    return CRYPTO_memcmp(a, b, size) == 0;
#endif
}

}  // namespace securemqtt::detail
