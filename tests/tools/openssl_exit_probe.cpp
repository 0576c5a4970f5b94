// SPDX-License-Identifier: Apache-2.0
// Does OpenSSL still clean itself up at exit once the library is in use? It must not: Paho's
// threads are detached, and one still ending when exit() runs OPENSSL_cleanup() frees its
// thread-local OpenSSL state through locks that cleanup has already freed (a crash at exit, or
// under AddressSanitizer a hang).
//
//   openssl_exit_probe
//
// Exit status 0: OpenSSL was still usable after every other exit handler had run; 1: it had
// cleaned itself up; 2: the library failed.
#include <securemqtt/securemqtt.hpp>

#include <openssl/crypto.h>

#include <cstdlib>
#include <iostream>
#include <memory>

namespace {

// Registered before OpenSSL initialises, so it runs after any exit handler OpenSSL registers.
// OPENSSL_init_crypto answers 0 once OPENSSL_cleanup() has run (and initialises nothing then).
extern "C" void check_openssl_after_exit_handlers() {
    const bool cleaned_up = OPENSSL_init_crypto(0, nullptr) != 1;
    if (cleaned_up) std::cerr << "openssl_exit_probe: OpenSSL cleaned itself up at exit\n";
    std::_Exit(cleaned_up ? 1 : 0);
}

}  // namespace

int main() {
    std::atexit(check_openssl_after_exit_handlers);
    try {
        auto keyring = std::make_shared<securemqtt::Keyring>();
        keyring->add_key_hex("device-1", "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
        keyring->set_signing_key("device-1");
        securemqtt::Signer signer(keyring);
        const std::uint8_t payload[] = {'h', 'i'};
        if (signer.sign("devices/device-1/probe", securemqtt::ByteView(payload, sizeof payload)).empty()) return 2;
    } catch (const std::exception& e) {
        std::cerr << "openssl_exit_probe: " << e.what() << "\n";
        return 2;
    }
    return 0;
}
