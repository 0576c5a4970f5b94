// SPDX-License-Identifier: Apache-2.0
// Shows what a SecureSession does to other TLS clients in its process: a handshake made the way
// Paho makes its SSL_CTX (TLS_client_method(), security level 1, then the cipher list it was
// given), once before a session exists and once after one was constructed.
//
//   tls_floor_probe PORT CIPHERS CAFILE CERT KEY
//
// Prints "before: <protocol>" or "before: refused (<reason>)", then the same for "after". The
// peer certificate is not verified: only the protocol version is under test.
#include <securemqtt/securemqtt.hpp>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <iostream>
#include <memory>
#include <string>

namespace {

template <typename T, void (*Free)(T*)>
struct Deleter {
    void operator()(T* p) const noexcept { Free(p); }
};
using CtxPtr = std::unique_ptr<SSL_CTX, Deleter<SSL_CTX, SSL_CTX_free>>;
using SslPtr = std::unique_ptr<SSL, Deleter<SSL, SSL_free>>;

std::string handshake(const std::string& port, const std::string& ciphers) {
    CtxPtr ctx(SSL_CTX_new(TLS_client_method()));
    if (!ctx) return "refused (no SSL_CTX)";
    SSL_CTX_set_security_level(ctx.get(), 1);  // as Paho C 1.3 does, before the cipher list
    if (SSL_CTX_set_cipher_list(ctx.get(), ciphers.c_str()) != 1) return "refused (cipher list)";
    SslPtr ssl(SSL_new(ctx.get()));
    BIO* bio = BIO_new_connect(("127.0.0.1:" + port).c_str());
    if (!ssl || bio == nullptr) return "refused (out of memory)";
    SSL_set_bio(ssl.get(), bio, bio);  // the SSL object owns the connection now
    std::string result;
    if (SSL_connect(ssl.get()) == 1) {
        result = SSL_get_version(ssl.get());
    } else {
        const unsigned long err = ERR_peek_error();
        const char* reason = err != 0 ? ERR_reason_error_string(err) : nullptr;
        result = std::string("refused (") + (reason != nullptr ? reason : "handshake failed") + ")";
    }
    ERR_clear_error();
    return result;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 6) {
        std::cerr << "usage: tls_floor_probe PORT CIPHERS CAFILE CERT KEY\n";
        return 2;
    }
    const std::string port = argv[1], ciphers = argv[2];
    std::cout << "before: " << handshake(port, ciphers) << std::endl;
    try {
        securemqtt::SessionOptions options;
        options.server_uri = "mqtts://localhost:" + port;
        options.tls.ca_file = argv[3];
        options.tls.cert_file = argv[4];
        options.tls.key_file = argv[5];
        options.keyring = std::make_shared<securemqtt::Keyring>();
        options.keyring->add_key_hex("probe", std::string(64, 'a'));
        options.keyring->set_signing_key("probe");
        securemqtt::SecureSession session(options);  // constructed, never connected
        std::cout << "after: " << handshake(port, ciphers) << std::endl;
    } catch (const securemqtt::Error& e) {
        std::cerr << "tls_floor_probe: " << e.what() << '\n';
        return 3;
    }
    return 0;
}
