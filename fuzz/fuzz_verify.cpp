// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: decode + verify of arbitrary bytes, plus sign/verify round-trip properties.
//
//   scripts/fuzz            (a bounded campaign, corpus in fuzz/corpus/verify)
//
// Any accepted forgery, crash, leak or sanitizer report is a finding.
#include <securemqtt/securemqtt.hpp>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string_view>

using namespace securemqtt;

namespace {

constexpr std::int64_t now_ms = 1767225600000;  // the vectors' clock

struct Setup {
    Setup() {
        // The keys of tests/vectors/envelope-v1.json, so the seed corpus reaches the MAC check.
        keyring->add_key_hex("device-a", "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
        KeyOptions scoped;
        scoped.topic_scope = {"plant/sensor-7/#", "plant/+/status"};
        keyring->add_key_hex("sensor-7", "404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f", scoped);
        keyring->set_signing_key("device-a");
    }
    std::shared_ptr<Keyring> keyring = std::make_shared<Keyring>();
};

[[noreturn]] void finding(const char* what) {
    std::fprintf(stderr, "securemqtt fuzz finding: %s\n", what);
    std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static Setup setup;
    VerifierOptions options;
    options.clock = [] { return now_ms; };
    Verifier verifier(setup.keyring, nullptr, options);
    const ByteView input(data, size);

    // 1. Arbitrary bytes as an envelope on a few topics: judged without crashing, and the
    //    decoder's view must stay inside the input.
    for (const char* topic : {"plant/line-1/temperature", "plant/sensor-7/humidity"}) {
        const VerifyResult r = verifier.verify(topic, input, size % 2 == 1);
        const DecodeResult d = decode_envelope(input);
        if (r.ok() && !d.ok()) finding("accepted an envelope that does not decode");
        if (d.ok() && d.envelope().header_bytes.size() + d.envelope().payload.size() + envelope_tag_size != size) {
            finding("decoded lengths do not add up");
        }
    }

    // 2. The bytes as a payload: sign, verify, tamper.
    Signer signer(setup.keyring, SignerOptions{[] { return now_ms; }, std::nullopt, 1});
    std::vector<std::uint8_t> envelope;
    signer.sign_into("fuzz/topic", input, envelope);
    const VerifyResult ok = verifier.verify("fuzz/topic", envelope);
    if (!ok.ok()) finding("a freshly signed envelope was rejected");
    if (ok.message().payload.size() != size ||
        (size != 0 && std::memcmp(ok.message().payload.data(), data, size) != 0)) {
        finding("payload changed in the round trip");
    }
    if (verifier.verify("fuzz/topic", envelope).ok()) finding("a replay was accepted");
    if (!envelope.empty()) {
        auto tampered = envelope;
        const std::size_t at = size == 0 ? 0 : data[0] % tampered.size();
        tampered[at] ^= static_cast<std::uint8_t>(1u << (size == 0 ? 0 : data[size - 1] % 8));
        if (verifier.verify("fuzz/topic", tampered).ok()) finding("a tampered envelope was accepted");
    }

    // 3. The bytes as MQTT 5 properties: arbitrary covered properties next to an envelope must
    //    never verify unless signed with exactly them.
    const std::size_t cut = size / 2;
    MessageProperties props;
    props.correlation_data = std::string(reinterpret_cast<const char*>(data), cut);
    props.user_properties.push_back({std::string(reinterpret_cast<const char*>(data) + cut, size - cut), "v"});
    const auto covered = encode_covered_properties(props);
    if (verifier.verify("plant/line-1/temperature", input, false, covered).ok() && !(size > 4 && (data[4] & 0x02))) {
        finding("an envelope without the properties flag verified with covered properties");
    }
    signer.sign_into("fuzz/props", ByteView(data, cut), envelope, false, props);
    if (!verifier.verify("fuzz/props", envelope, false, covered).ok()) finding("signed properties were rejected");
    props.user_properties.back().value = "w";
    signer.sign_into("fuzz/props", ByteView(data, cut), envelope, false, props);
    if (verifier.verify("fuzz/props", envelope, false, covered).ok()) finding("changed properties were accepted");
    return 0;
}
