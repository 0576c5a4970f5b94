// SPDX-License-Identifier: Apache-2.0
// A line-oriented signer/verifier for the cross-language tests: the Python tests drive the
// C++ library through it.
//
//   envelope_tool sign   --key-hex HEX --key-id ID --topic TOPIC [--retain]   < payload hex lines
//   envelope_tool verify --key-hex HEX --key-id ID --topic TOPIC [--retained] < envelope hex lines
//
// sign prints one envelope (hex) per payload; verify prints "accept <payload hex>" or
// "reject <reason>" per envelope, with one Verifier for the whole run (so replays show).
#include <securemqtt/securemqtt.hpp>

#include <iostream>
#include <memory>
#include <string>
#include <vector>

using namespace securemqtt;

namespace {

std::vector<std::uint8_t> from_hex(const std::string& hex) {
    std::vector<std::uint8_t> out;
    if (hex.size() % 2 != 0) throw std::runtime_error("odd hex length");
    for (std::size_t i = 0; i < hex.size(); i += 2) {
        out.push_back(static_cast<std::uint8_t>(std::stoul(hex.substr(i, 2), nullptr, 16)));
    }
    return out;
}

std::string to_hex(ByteView bytes) {
    static const char digits[] = "0123456789abcdef";
    std::string out;
    for (std::uint8_t b : bytes) {
        out += digits[b >> 4];
        out += digits[b & 15];
    }
    return out;
}

int usage() {
    std::cerr << "usage: envelope_tool sign|verify --key-hex HEX --key-id ID --topic TOPIC [--retain|--retained]\n";
    return 2;
}

}  // namespace

int main(int argc, char** argv) try {
    if (argc < 2) return usage();
    const std::string mode = argv[1];
    std::string key_hex;
    std::string key_id;
    std::string topic;
    bool flag = false;
    for (int i = 2; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--retain" || a == "--retained") {
            flag = true;
        } else if (i + 1 < argc && a == "--key-hex") {
            key_hex = argv[++i];
        } else if (i + 1 < argc && a == "--key-id") {
            key_id = argv[++i];
        } else if (i + 1 < argc && a == "--topic") {
            topic = argv[++i];
        } else {
            return usage();
        }
    }
    auto keyring = std::make_shared<Keyring>();
    keyring->add_key_hex(key_id, key_hex);
    keyring->set_signing_key(key_id);
    std::string line;
    if (mode == "sign") {
        Signer signer(keyring);
        std::vector<std::uint8_t> out;
        while (std::getline(std::cin, line)) {
            signer.sign_into(topic, from_hex(line), out, flag);
            std::cout << to_hex(out) << '\n';
        }
    } else if (mode == "verify") {
        Verifier verifier(keyring);
        while (std::getline(std::cin, line)) {
            const auto envelope = from_hex(line);
            const VerifyResult r = verifier.verify(topic, envelope, flag);
            if (r.ok()) {
                std::cout << "accept " << to_hex(r.message().payload) << '\n';
            } else {
                std::cout << "reject " << to_string(r.reason()) << '\n';
            }
        }
    } else {
        return usage();
    }
    return 0;
} catch (const std::exception& e) {
    std::cerr << "envelope_tool: " << e.what() << '\n';
    return 1;
}
