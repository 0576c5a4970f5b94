// SPDX-License-Identifier: Apache-2.0
// The pooled, pre-keyed HMAC-SHA256 (src/mac.hpp) against RFC 4231's test cases.
#include "support/catch.hpp"
#include "support/test_util.hpp"

#include "mac.hpp"

#include <string>
#include <thread>
#include <vector>

using securemqtt::ByteView;
using securemqtt::detail::MacKey;
using securemqtt::detail::MacTag;

namespace {

struct Rfc4231Case {
    const char* name;
    std::vector<std::uint8_t> key;
    std::string data;
    const char* sha256;
};

std::vector<Rfc4231Case> cases() {
    return {
        {"1", std::vector<std::uint8_t>(20, 0x0b), "Hi There",
         "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
        {"2", {'J', 'e', 'f', 'e'}, "what do ya want for nothing?",
         "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
        {"3", std::vector<std::uint8_t>(20, 0xaa), std::string(50, '\xdd'),
         "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"},
        {"4", testutil::from_hex("0102030405060708090a0b0c0d0e0f10111213141516171819"), std::string(50, '\xcd'),
         "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"},
        {"6", std::vector<std::uint8_t>(131, 0xaa), "Test Using Larger Than Block-Size Key - Hash Key First",
         "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"},
        {"7", std::vector<std::uint8_t>(131, 0xaa),
         "This is a test using a larger than block-size key and a larger than block-size data. The key needs to "
         "be hashed before being used by the HMAC algorithm.",
         "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"},
    };
}

}  // namespace

TEST_CASE("HMAC-SHA256 matches RFC 4231 test cases, repeatedly and in parts", "[hmac]") {
    for (const auto& c : cases()) {
        DYNAMIC_SECTION("RFC 4231 case " << c.name) {
            const MacKey key{ByteView(c.key)};
            for (int repeat = 0; repeat < 3; ++repeat) {  // re-initialising a keyed context
                MacTag tag{};
                const ByteView whole(c.data);
                REQUIRE(key.compute(&whole, 1, tag));
                CHECK(testutil::to_hex(ByteView(tag.data(), tag.size())) == c.sha256);
            }
            // The same bytes split into parts give the same tag.
            const ByteView parts[] = {ByteView(c.data).subview(0, 3), ByteView(),
                                      ByteView(c.data).subview(3, c.data.size() - 3)};
            MacTag tag{};
            REQUIRE(key.compute(parts, 3, tag));
            CHECK(testutil::to_hex(ByteView(tag.data(), tag.size())) == c.sha256);
        }
    }
}

TEST_CASE("one key computes correct MACs from many threads at once", "[hmac][threads]") {
    const auto c = cases()[1];
    const MacKey key{ByteView(c.key)};
    std::vector<std::thread> threads;
    std::vector<int> wrong(4, 0);
    for (std::size_t t = 0; t < wrong.size(); ++t) {
        threads.emplace_back([&, t] {
            const ByteView whole(c.data);
            for (int i = 0; i < 2000; ++i) {
                MacTag tag{};
                if (!key.compute(&whole, 1, tag) || testutil::to_hex(ByteView(tag.data(), tag.size())) != c.sha256) {
                    ++wrong[t];
                }
            }
        });
    }
    for (auto& th : threads) th.join();
    CHECK(wrong == std::vector<int>(4, 0));
}

TEST_CASE("tags compare equal only when every bit matches", "[hmac]") {
    // 32 bytes (the tag) takes the word-wise path; 21 bytes also the byte-wise tail.
    for (const std::size_t size : {std::size_t{32}, std::size_t{21}}) {
        std::uint8_t a[32];
        std::uint8_t b[32];
        for (std::size_t i = 0; i < sizeof a; ++i) a[i] = b[i] = static_cast<std::uint8_t>(i * 37 + 11);
        CHECK(securemqtt::detail::tags_equal(a, b, size));
        int unequal = 0;
        for (std::size_t byte = 0; byte < size; ++byte) {
            for (int bit = 0; bit < 8; ++bit) {
                b[byte] = static_cast<std::uint8_t>(b[byte] ^ (1u << bit));
                unequal += securemqtt::detail::tags_equal(a, b, size) ? 0 : 1;
                b[byte] = a[byte];
            }
        }
        CHECK(unequal == static_cast<int>(size * 8));
        if (size < sizeof b) {
            b[size] ^= 0xff;  // past the end: not compared
            CHECK(securemqtt::detail::tags_equal(a, b, size));
        }
    }
}
