// SPDX-License-Identifier: Apache-2.0
// Verifying a message allocates nothing once its stream is known: counted with a replaced
// global operator new, and OpenSSL's allocations through CRYPTO_set_mem_functions (this file
// is its own test program so the counting stays local).
#include "support/catch.hpp"
#include "support/test_util.hpp"

#include <securemqtt/securemqtt.hpp>

#include <openssl/crypto.h>

#include <atomic>
#include <cstdlib>
#include <new>

namespace {
std::atomic<long> allocations{0};

// OpenSSL's live allocations. Installed before main(), as OpenSSL accepts it only before its
// first allocation.
std::atomic<long> openssl_live{0};
void* openssl_malloc(std::size_t size, const char*, int) {
    void* p = std::malloc(size);
    if (p != nullptr) openssl_live.fetch_add(1, std::memory_order_relaxed);
    return p;
}
void* openssl_realloc(void* old, std::size_t size, const char*, int) {
    void* p = std::realloc(old, size);
    if (old == nullptr && p != nullptr) openssl_live.fetch_add(1, std::memory_order_relaxed);
    if (old != nullptr && size == 0) openssl_live.fetch_sub(1, std::memory_order_relaxed);
    return p;
}
void openssl_free(void* p, const char*, int) {
    if (p != nullptr) openssl_live.fetch_sub(1, std::memory_order_relaxed);
    std::free(p);
}
const bool openssl_counted = CRYPTO_set_mem_functions(openssl_malloc, openssl_realloc, openssl_free) == 1;
}  // namespace

namespace {
void* counted_alloc(std::size_t size) {
    allocations.fetch_add(1, std::memory_order_relaxed);
    if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
    throw std::bad_alloc();
}
}  // namespace

// Every non-aligned form, so each new/delete pair goes through malloc/free alike (ASan checks
// that pairs match).
void* operator new(std::size_t size) { return counted_alloc(size); }
void* operator new[](std::size_t size) { return counted_alloc(size); }
void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
    allocations.fetch_add(1, std::memory_order_relaxed);
    return std::malloc(size == 0 ? 1 : size);
}
void* operator new[](std::size_t size, const std::nothrow_t& tag) noexcept { return operator new(size, tag); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }

using namespace securemqtt;

TEST_CASE("the verify path allocates nothing per message", "[verifier][alloc]") {
    auto keyring = std::make_shared<Keyring>();
    keyring->add_key("k1", testutil::test_key(1));
    keyring->set_signing_key("k1");
    Signer signer(keyring);
    Verifier verifier(keyring);
    std::vector<std::vector<std::uint8_t>> envelopes;
    for (int i = 0; i < 1000; ++i) envelopes.push_back(signer.sign("sensors/a/temp", std::string(256, 'x')));
    REQUIRE(verifier.verify("sensors/a/temp", envelopes[0]).ok());  // first sight of the stream

    const long before = allocations.load();
    int ok = 0;
    for (std::size_t i = 1; i < envelopes.size(); ++i) ok += verifier.verify("sensors/a/temp", envelopes[i]).ok() ? 1 : 0;
    const long used = allocations.load() - before;
    CHECK(ok == 999);
    CHECK(used == 0);
}

TEST_CASE("signing into a reused buffer allocates nothing per message", "[signer][alloc]") {
    auto keyring = std::make_shared<Keyring>();
    keyring->add_key("k1", testutil::test_key(1));
    keyring->set_signing_key("k1");
    Signer signer(keyring);
    std::vector<std::uint8_t> buffer;
    const std::string payload(256, 'x');
    signer.sign_into("sensors/a/temp", payload, buffer);
    const long before = allocations.load();
    for (int i = 0; i < 1000; ++i) signer.sign_into("sensors/a/temp", payload, buffer);
    CHECK(allocations.load() - before == 0);
}

TEST_CASE("verifying messages under alternating keys allocates nothing per message", "[verifier][alloc]") {
    // A gateway's senders each have their own key: every message changes the key looked up.
    auto senders = std::make_shared<Keyring>();
    senders->add_key("device-a", testutil::test_key(1));
    senders->add_key("device-b", testutil::test_key(2));
    auto receiver = std::make_shared<Keyring>();
    receiver->add_key("device-a", testutil::test_key(1));
    receiver->add_key("device-b", testutil::test_key(2));
    senders->set_signing_key("device-a");
    Signer a(senders);
    std::vector<std::vector<std::uint8_t>> from_a;
    for (int i = 0; i < 500; ++i) from_a.push_back(a.sign("sensors/a/temp", std::string(64, 'a')));
    senders->set_signing_key("device-b");
    Signer b(senders);
    std::vector<std::vector<std::uint8_t>> from_b;
    for (int i = 0; i < 500; ++i) from_b.push_back(b.sign("sensors/a/temp", std::string(64, 'b')));
    Verifier verifier(receiver);
    REQUIRE(verifier.verify("sensors/a/temp", from_a[0]).ok());  // first sight of both streams
    REQUIRE(verifier.verify("sensors/a/temp", from_b[0]).ok());

    const long before = allocations.load();
    int ok = 0;
    for (std::size_t i = 1; i < from_a.size(); ++i) {
        ok += verifier.verify("sensors/a/temp", from_a[i]).ok() ? 1 : 0;
        ok += verifier.verify("sensors/a/temp", from_b[i]).ok() ? 1 : 0;
    }
    CHECK(ok == 998);
    CHECK(allocations.load() - before == 0);
}

TEST_CASE("removing a key frees it at once, even after a signer and a verifier used it", "[keyring][alloc]") {
    REQUIRE(openssl_counted);
    auto keyring = std::make_shared<Keyring>();
    keyring->add_key("old", testutil::test_key(1));
    keyring->set_signing_key("old");
    Signer signer(keyring);
    Verifier verifier(keyring);
    REQUIRE(verifier.verify("sensors/a/temp", signer.sign("sensors/a/temp", std::string(64, 'x'))).ok());
    // Both now remember "old"; they must not keep it (and its key schedule) alive.
    const long before = openssl_live.load();
    REQUIRE(keyring->remove_key("old"));
    CHECK(openssl_live.load() < before);  // its MAC contexts are freed, which wipes them
    CHECK_THROWS_AS(signer.sign("sensors/a/temp", std::string(1, 'x')), SigningError);
}
