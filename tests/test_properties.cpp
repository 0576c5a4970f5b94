// SPDX-License-Identifier: Apache-2.0
// MQTT 5 properties under the MAC (docs/envelope-v1.md §2.1): the canonical encoding, the UTF-8
// flag, and what a receiver makes of properties changed on the way.
#include "support/catch.hpp"
#include "support/test_util.hpp"

#include <securemqtt/securemqtt.hpp>

#include <algorithm>

using namespace securemqtt;
using testutil::to_hex;

namespace {

constexpr std::int64_t t0 = 1767225600000;

struct Pair {
    std::shared_ptr<Keyring> keyring = std::make_shared<Keyring>();
    std::unique_ptr<Signer> signer;
    Pair() {
        keyring->add_key("k1", testutil::test_key(1));
        keyring->set_signing_key("k1");
        signer = std::make_unique<Signer>(keyring, SignerOptions{[] { return t0; }, std::nullopt, 1});
    }
    // A fresh receiver per check, so no verdict is "replayed" because of an earlier one.
    VerifyResult verify(const std::string& topic, const std::vector<std::uint8_t>& env,
                        const MessageProperties& received) {
        VerifierOptions o;
        o.clock = [] { return t0; };
        verifier = std::make_unique<Verifier>(keyring, nullptr, o);
        covered = encode_covered_properties(received);
        return verifier->verify(topic, env, false, covered);
    }
    std::unique_ptr<Verifier> verifier;
    std::vector<std::uint8_t> covered;
};

MessageProperties request_properties() {
    MessageProperties p;
    p.content_type = "application/json";
    p.response_topic = "replies/app-1/7f3a";
    p.correlation_data = std::string("\x00\x01\xfe\xff", 4);
    p.user_properties = {{"trace", "abc"}, {"unit", "C"}, {"trace", "def"}};
    return p;
}

std::string reason_of(const VerifyResult& r) { return r.ok() ? "accept" : std::string(to_string(r.reason())); }

}  // namespace

TEST_CASE("covered properties encode canonically: identifier, length, value, in a fixed order", "[properties]") {
    MessageProperties p;
    CHECK(encode_covered_properties(p).empty());
    CHECK_FALSE(p.has_covered());
    p.message_expiry = std::chrono::seconds(60);  // not covered
    p.payload_format = PayloadFormat::utf8;       // an envelope flag, not a property item
    CHECK(encode_covered_properties(p).empty());
    CHECK_FALSE(p.has_covered());

    p.user_properties = {{"a", "1"}};
    p.correlation_data = std::string("\x01", 1);
    p.content_type = "";  // present and empty: an item of length 0
    // content type first, then response topic (absent), correlation data, user properties.
    CHECK(to_hex(encode_covered_properties(p)) ==
          "03" "00000000"
          "09" "00000001" "01"
          "26" "00000001" "61" "00000001" "31");
    CHECK(p.has_covered());
}

TEST_CASE("a message signed with properties verifies with exactly them, and reports them signed", "[properties]") {
    Pair pair;
    const MessageProperties props = request_properties();
    const auto env = pair.signer->sign("devices/d1/cmd", std::string("{\"unlock\":1}"), false, props);
    CHECK((env[4] & envelope_flag_properties) != 0);
    const VerifyResult r = pair.verify("devices/d1/cmd", env, props);
    REQUIRE(r.ok());
    CHECK(r.message().properties_signed);
    CHECK_FALSE(r.message().utf8);

    SECTION("message expiry is not covered: the broker lowers it on the way") {
        MessageProperties received = props;
        received.message_expiry = std::chrono::seconds(17);
        CHECK(pair.verify("devices/d1/cmd", env, received).ok());
    }
}

TEST_CASE("a changed, added, removed or reordered covered property is bad_mac", "[properties][security]") {
    Pair pair;
    const MessageProperties props = request_properties();
    const auto env = pair.signer->sign("devices/d1/cmd", std::string("unlock-door"), false, props);

    MessageProperties redirected = props;  // the attack: the reply goes to the attacker
    redirected.response_topic = "attacker/inbox";
    CHECK(reason_of(pair.verify("devices/d1/cmd", env, redirected)) == "bad_mac");

    MessageProperties correlation = props;
    correlation.correlation_data = std::string("\x00\x01\xfe\xfe", 4);
    CHECK(reason_of(pair.verify("devices/d1/cmd", env, correlation)) == "bad_mac");

    MessageProperties no_response_topic = props;
    no_response_topic.response_topic.reset();
    CHECK(reason_of(pair.verify("devices/d1/cmd", env, no_response_topic)) == "bad_mac");

    MessageProperties empty_type = props;  // present-and-empty is not absent
    empty_type.content_type = "";
    CHECK(reason_of(pair.verify("devices/d1/cmd", env, empty_type)) == "bad_mac");

    MessageProperties reordered = props;
    std::swap(reordered.user_properties[0], reordered.user_properties[2]);
    CHECK(reason_of(pair.verify("devices/d1/cmd", env, reordered)) == "bad_mac");

    MessageProperties added = props;
    added.user_properties.push_back({"role", "admin"});
    CHECK(reason_of(pair.verify("devices/d1/cmd", env, added)) == "bad_mac");

    MessageProperties removed = props;
    removed.user_properties.pop_back();
    CHECK(reason_of(pair.verify("devices/d1/cmd", env, removed)) == "bad_mac");

    CHECK(reason_of(pair.verify("devices/d1/cmd", env, MessageProperties{})) == "bad_mac");
    // Name and value boundaries are length-prefixed: moving a byte across one changes the MAC.
    MessageProperties shifted = props;
    shifted.user_properties[1] = {"unitC", ""};
    CHECK(reason_of(pair.verify("devices/d1/cmd", env, shifted)) == "bad_mac");
    CHECK(pair.verify("devices/d1/cmd", env, props).ok());
}

TEST_CASE("covered properties added to a message signed without them are bad_mac", "[properties][security]") {
    Pair pair;
    const auto env = pair.signer->sign("devices/d1/cmd", std::string("unlock-door"));
    CHECK((env[4] & envelope_flag_properties) == 0);
    MessageProperties added;
    added.response_topic = "attacker/inbox";
    CHECK(reason_of(pair.verify("devices/d1/cmd", env, added)) == "bad_mac");
    MessageProperties only_expiry;  // not covered: no item, so not an addition
    only_expiry.message_expiry = std::chrono::seconds(5);
    CHECK(pair.verify("devices/d1/cmd", env, only_expiry).ok());
}

TEST_CASE("a UTF-8 payload is flagged under the MAC and checked on both sides", "[properties]") {
    Pair pair;
    MessageProperties text;
    text.payload_format = PayloadFormat::utf8;
    const std::string celsius = "21.5 \xc2\xb0" "C \xe2\x9c\x93 \xf0\x9f\x8c\xa1";  // °, ✓, 🌡
    const auto env = pair.signer->sign("plant/t", celsius, false, text);
    CHECK(env[4] == envelope_flag_utf8);  // no covered property: bit 1 stays clear
    const VerifyResult r = pair.verify("plant/t", env, MessageProperties{});
    REQUIRE(r.ok());
    CHECK(r.message().utf8);
    CHECK_FALSE(r.message().properties_signed);

    for (const std::string& bad : {std::string("\xc0\xaf"), std::string("\xed\xa0\x80"),
                                  std::string("\xf4\x90\x80\x80"), std::string("\xe2\x9c"),
                                  std::string("\x80"), std::string("\xff")}) {
        INFO(to_hex(ByteView(bad)));
        CHECK_FALSE(is_well_formed_utf8(bad));
        CHECK_THROWS_AS(pair.signer->sign("plant/t", bad, false, text), SigningError);
    }
    CHECK(is_well_formed_utf8(std::string("\xf4\x8f\xbf\xbf")));  // U+10FFFF
    CHECK(is_well_formed_utf8(std::string("\xee\x80\x80")));      // U+E000, after the surrogates
    CHECK(is_well_formed_utf8(""));
}

TEST_CASE("an envelope flagged UTF-8 whose payload is not is malformed, before any key lookup", "[properties]") {
    Pair pair;
    auto env = pair.signer->sign("plant/t", std::string("ok"));
    env[4] = envelope_flag_utf8;  // re-flagged: the MAC would fail, but decoding already does
    const std::size_t payload_at = envelope_header_size(2);
    env[payload_at] = 0xc0;
    env[payload_at + 1] = 0xaf;
    CHECK(decode_envelope(env).reason() == RejectReason::malformed);
    env[5] = 2;  // and an unknown key id changes nothing: malformed comes first
    env[6] = 'z';
    CHECK(reason_of(pair.verify("plant/t", env, MessageProperties{})) == "malformed");
}

TEST_CASE("the MAC input with properties is the classic one plus a fifth part", "[properties]") {
    Pair pair;
    const MessageProperties props = request_properties();
    const auto env = pair.signer->sign("devices/d1/cmd", std::string("x"), true, props);
    const DecodeResult d = decode_envelope(env);
    REQUIRE(d.ok());
    const auto covered = encode_covered_properties(props);
    const auto with = envelope_mac_input(d.envelope().header_bytes, "devices/d1/cmd", d.envelope().payload, covered);
    auto classic_header = d.envelope().header_bytes.to_vector();
    classic_header[4] = envelope_flag_retain;
    const auto without = envelope_mac_input(classic_header, "devices/d1/cmd", d.envelope().payload, covered);
    REQUIRE(with.size() == without.size() + 4 + covered.size());
    // Label (26 bytes), the header's length (4) and its bytes, the flags byte (offset 34) aside,
    // then topic and payload: all the same; then the fifth part.
    constexpr std::ptrdiff_t flags_at = 26 + 4 + 4;
    CHECK(std::equal(without.begin(), without.begin() + flags_at, with.begin()));
    CHECK(without[flags_at] == envelope_flag_retain);
    CHECK(with[flags_at] == (envelope_flag_retain | envelope_flag_properties));
    CHECK(std::equal(without.begin() + flags_at + 1, without.end(), with.begin() + flags_at + 1));
    REQUIRE(covered.size() < 256);
    CHECK(to_hex(ByteView(with.data() + without.size(), 4)) ==
          "000000" + to_hex(std::vector<std::uint8_t>{static_cast<std::uint8_t>(covered.size())}));
    CHECK(std::equal(covered.begin(), covered.end(), with.end() - static_cast<std::ptrdiff_t>(covered.size())));
}
