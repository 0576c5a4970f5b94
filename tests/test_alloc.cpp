// SPDX-License-Identifier: Apache-2.0
// Verifying a message allocates nothing once its stream is known: counted with a replaced
// global operator new (this file is its own test program so the counting stays local).
#include "support/catch.hpp"
#include "support/test_util.hpp"

#include <securemqtt/securemqtt.hpp>

#include <atomic>
#include <cstdlib>
#include <new>

namespace {
std::atomic<long> allocations{0};
}

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
