// SPDX-License-Identifier: Apache-2.0
#include <securemqtt/securemqtt.hpp>

#include <iostream>
#include <memory>
#include <string>

int main(int argc, char**) {
    // Reaches the parts built on Paho, SQLite and hiredis too (never run), so that linking a
    // static libsecuremqtt needs every dependency the package names.
    if (argc > 99) {
        securemqtt::SecureSession session(securemqtt::SessionOptions{});
        return securemqtt::open_replay_store("x.db") != nullptr ? 3 : 2;
    }
    auto keyring = std::make_shared<securemqtt::Keyring>();
    keyring->add_key_hex("demo", "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
    keyring->set_signing_key("demo");
    securemqtt::Signer signer(keyring);
    securemqtt::Verifier verifier(keyring);
    const auto envelope = signer.sign("consumer/test", std::string("hello from a consumer"));
    const auto result = verifier.verify("consumer/test", envelope);
    if (!result || securemqtt::version() != SECUREMQTT_VERSION_STRING) return 1;
    std::cout << "securemqtt " << securemqtt::version() << " verified '"
              << result.message().payload.as_string_view() << "'\n";
    return 0;
}
