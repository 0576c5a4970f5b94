// SPDX-License-Identifier: Apache-2.0
#include "support/catch.hpp"
#include "support/test_util.hpp"

#include <securemqtt/securemqtt.hpp>

#include <memory>
#include <random>
#include <string>

using namespace securemqtt;

namespace {

constexpr std::int64_t now_ms = 1767225600000;

struct Fixture {
    Fixture() {
        keyring->add_key("k1", testutil::test_key(1));
        keyring->set_signing_key("k1");
    }
    Verifier make_verifier(std::size_t max_size = default_max_envelope_size) const {
        VerifierOptions options;
        options.clock = [] { return now_ms; };
        options.max_envelope_size = max_size;
        return Verifier(keyring, nullptr, options);
    }
    std::shared_ptr<Keyring> keyring = std::make_shared<Keyring>();
    Signer signer{keyring, SignerOptions{[] { return now_ms; }, std::nullopt, 1}};
};

}  // namespace

TEST_CASE("an envelope decodes to the fields it was signed with", "[envelope]") {
    Fixture f;
    const auto env = f.signer.sign("a/b", std::string("hello"), true);
    REQUIRE(env.size() == envelope_size(2, 5));
    const DecodeResult d = decode_envelope(env);
    REQUIRE(d.ok());
    CHECK(d.envelope().header.key_id == "k1");
    CHECK(d.envelope().header.stream_id == f.signer.stream_id());
    CHECK(d.envelope().header.counter == 1);
    CHECK(d.envelope().header.timestamp_ms == now_ms);
    CHECK(d.envelope().header.flags == envelope_flag_retain);
    CHECK(d.envelope().payload.as_string_view() == "hello");
    CHECK(d.envelope().header_bytes.size() == envelope_header_size(2));
    CHECK(d.envelope().tag.size() == envelope_tag_size);
}

TEST_CASE("random payloads of many sizes round-trip through sign and verify", "[envelope]") {
    Fixture f;
    const Verifier verifier = f.make_verifier();
    std::mt19937_64 rng(20261122);
    for (std::size_t size : {0u, 1u, 31u, 32u, 63u, 64u, 65u, 255u, 256u, 1000u, 4096u, 65536u}) {
        std::vector<std::uint8_t> payload(size);
        for (auto& b : payload) b = static_cast<std::uint8_t>(rng());
        const auto env = f.signer.sign("sensors/x", payload);
        const VerifyResult r = verifier.verify("sensors/x", env);
        INFO("size " << size);
        REQUIRE(r.ok());
        CHECK(r.message().payload.to_vector() == payload);
    }
}

TEST_CASE("flipping any single bit of an envelope gets it rejected", "[envelope]") {
    Fixture f;
    const auto env = f.signer.sign("plant/line-1/temp", std::string("21.5"));
    for (std::size_t byte = 0; byte < env.size(); ++byte) {
        for (int bit = 0; bit < 8; ++bit) {
            auto tampered = env;
            tampered[byte] = static_cast<std::uint8_t>(tampered[byte] ^ (1u << bit));
            // A fresh verifier each time: the rejection must come from the tampering, not replay.
            const VerifyResult r = f.make_verifier().verify("plant/line-1/temp", tampered);
            INFO("byte " << byte << " bit " << bit);
            REQUIRE_FALSE(r.ok());
        }
    }
    CHECK(f.make_verifier().verify("plant/line-1/temp", env).ok());
}

TEST_CASE("a message moved to another topic is rejected as bad_mac", "[envelope]") {
    Fixture f;
    const auto env = f.signer.sign("plant/line-1/temp", std::string("21.5"));
    for (const char* other : {"plant/line-1/temp/", "plant/line-2/temp", "Plant/line-1/temp", "plant/line-1/tem"}) {
        const VerifyResult r = f.make_verifier().verify(other, env);
        INFO(other);
        REQUIRE_FALSE(r.ok());
        CHECK(r.reason() == RejectReason::bad_mac);
    }
}

TEST_CASE("every truncation of an envelope is rejected as malformed without reading past it", "[envelope]") {
    Fixture f;
    const auto env = f.signer.sign("t", std::string("payload"));
    for (std::size_t n = 0; n < env.size(); ++n) {
        // A heap copy of exactly n bytes so ASan catches any read beyond it.
        const std::vector<std::uint8_t> prefix(env.begin(), env.begin() + static_cast<std::ptrdiff_t>(n));
        const DecodeResult d = decode_envelope(prefix);
        INFO("length " << n);
        REQUIRE_FALSE(d.ok());
        CHECK(d.reason() == RejectReason::malformed);
    }
}

TEST_CASE("an envelope over the configured maximum is rejected as too_large before parsing", "[envelope]") {
    Fixture f;
    const auto env = f.signer.sign("t", std::string(100, 'x'));
    CHECK(decode_envelope(env, env.size()).ok());
    const DecodeResult d = decode_envelope(env, env.size() - 1);
    REQUIRE_FALSE(d.ok());
    CHECK(d.reason() == RejectReason::too_large);
    const VerifyResult r = f.make_verifier(env.size() - 1).verify("t", env);
    CHECK(r.reason() == RejectReason::too_large);
    CHECK_THROWS_AS(f.make_verifier(0), ConfigError);
    CHECK_THROWS_AS(f.make_verifier(max_envelope_size_limit + 1), ConfigError);
}

TEST_CASE("the MAC input is label, header, topic and payload, each length-prefixed", "[envelope]") {
    const std::vector<std::uint8_t> header{1, 2, 3};
    const auto input = envelope_mac_input(header, "t/x", std::string("pq"));
    std::string expected;
    expected += std::string("\0\0\0\x16", 4) + "securemqtt envelope v1";
    expected += std::string("\0\0\0\x03", 4) + "\x01\x02\x03";
    expected += std::string("\0\0\0\x03", 4) + "t/x";
    expected += std::string("\0\0\0\x02", 4) + "pq";
    CHECK(ByteView(input).as_string_view() == expected);
}

TEST_CASE("encoding refuses fields that v1 cannot carry", "[envelope]") {
    std::vector<std::uint8_t> out(envelope_header_size(max_key_id_size + 1));
    EnvelopeHeader h;
    h.key_id = "k";
    h.counter = 1;
    CHECK_NOTHROW(encode_envelope_header(h, 0, out.data()));
    h.counter = 0;
    CHECK_THROWS_AS(encode_envelope_header(h, 0, out.data()), std::invalid_argument);
    h.counter = 1;
    h.flags = 0x08;  // bits 0-2 are defined (retain, properties, UTF-8); 3-7 are not
    CHECK_THROWS_AS(encode_envelope_header(h, 0, out.data()), std::invalid_argument);
    h.flags = 0;
    h.timestamp_ms = -1;
    CHECK_THROWS_AS(encode_envelope_header(h, 0, out.data()), std::invalid_argument);
    h.timestamp_ms = 0;
    const std::string long_id(max_key_id_size + 1, 'k');
    h.key_id = long_id;
    CHECK_THROWS_AS(encode_envelope_header(h, 0, out.data()), std::invalid_argument);
    h.key_id = "has space";
    CHECK_THROWS_AS(encode_envelope_header(h, 0, out.data()), std::invalid_argument);
}

TEST_CASE("key ids are 1 to 64 printable ASCII characters", "[envelope]") {
    CHECK(is_valid_key_id("a"));
    CHECK(is_valid_key_id(std::string(64, '~')));
    CHECK_FALSE(is_valid_key_id(""));
    CHECK_FALSE(is_valid_key_id(std::string(65, 'a')));
    CHECK_FALSE(is_valid_key_id("a b"));
    CHECK_FALSE(is_valid_key_id(std::string("a\0b", 3)));
    CHECK_FALSE(is_valid_key_id("caf\xc3\xa9"));
}

TEST_CASE("reject reasons have stable names", "[envelope]") {
    CHECK(to_string(RejectReason::malformed) == "malformed");
    CHECK(to_string(RejectReason::bad_mac) == "bad_mac");
    CHECK(to_string(RejectReason::key_not_allowed_for_topic) == "key_not_allowed_for_topic");
    CHECK(to_string(RejectReason::too_large) == "too_large");
    for (std::size_t i = 0; i < reject_reason_count; ++i) {
        CHECK(to_string(static_cast<RejectReason>(i)) != "unknown");
    }
}

TEST_CASE("a string literal is a payload of its characters, without the terminating NUL", "[envelope]") {
    const ByteView literal("21.5");
    CHECK(literal.size() == 4);
    CHECK(literal.as_string_view() == "21.5");
    const char* none = nullptr;
    CHECK(ByteView(none).empty());
    CHECK(ByteView(std::string_view("a\0b", 3)).size() == 3);  // views keep their length
}
