// SPDX-License-Identifier: Apache-2.0
// Shows the envelope core without a broker: a keyring, a signer, a verifier, and what happens
// to a genuine message, a replay, a tampered copy and a message moved to another topic.
//
//   ./build/ci/examples/sign_and_verify
#include <securemqtt/securemqtt.hpp>

#include <iostream>
#include <memory>
#include <string>

int main() {
    using namespace securemqtt;

    // Both sides hold the same key under the same id; in practice: Keyring::add_key_file().
    auto keyring = std::make_shared<Keyring>();
    keyring->add_key_hex("sensor-1", "8f3c2a9d0e7b4f61a5c3d2e1f0b9a8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1");
    keyring->set_signing_key("sensor-1");

    Signer signer(keyring);      // a random stream id; counters from 1
    Verifier verifier(keyring);  // with its own replay guard

    const std::string topic = "plant/line-1/temperature";
    const auto envelope = signer.sign(topic, "21.5");
    std::cout << "signed " << envelope.size() << "-byte envelope for '" << topic << "'\n";

    const auto report = [](const char* what, const VerifyResult& r) {
        if (r.ok()) {
            std::cout << what << ": verified payload '" << r.message().payload.as_string_view() << "' (key "
                      << r.message().key_id << ", counter " << r.message().counter << ")\n";
        } else {
            std::cout << what << ": rejected, " << to_string(r.reason()) << '\n';
        }
    };

    report("genuine       ", verifier.verify(topic, envelope));
    report("replayed      ", verifier.verify(topic, envelope));
    auto tampered = signer.sign(topic, "21.5");
    tampered[tampered.size() - envelope_tag_size - 1] ^= 0x01;  // last payload byte: "21.4"
    report("tampered      ", verifier.verify(topic, tampered));
    report("other topic   ", verifier.verify("plant/line-2/temperature", signer.sign(topic, "21.5")));
    return 0;
}
