// SPDX-License-Identifier: Apache-2.0
// Runs one operation N times, for instruction counting under callgrind: a figure that does not
// move with the machine's load, unlike the timings. scripts/bench_report.py runs it with N and
// 2N and takes the difference, so set-up cancels out. Verifying needs N envelopes signed first;
// mode `prepare` does only that, so verify's own count is verify minus prepare.
//
//   valgrind --tool=callgrind securemqtt_bench_count raw|sign|prepare|verify SIZE N
#include <securemqtt/securemqtt.hpp>

#include <openssl/core_names.h>
#include <openssl/evp.h>

#include <iostream>
#include <memory>
#include <string>
#include <vector>

using namespace securemqtt;

int main(int argc, char** argv) {
    if (argc != 4) {
        std::cerr << "usage: securemqtt_bench_count raw|sign|prepare|verify SIZE N\n";
        return 2;
    }
    const std::string mode = argv[1];
    const std::string payload(std::stoul(argv[2]), 'p');
    const int n = std::stoi(argv[3]);
    const std::string topic = "plant/line-1/temperature";
    const std::vector<std::uint8_t> key(32, 0x5a);
    auto keyring = std::make_shared<Keyring>();
    keyring->add_key("bench", key);
    keyring->set_signing_key("bench");
    Signer signer(keyring);
    // Envelopes for verify are made up front for both runs alike; only the loop differs.
    const bool prepare = mode == "prepare" || mode == "verify";
    std::vector<std::vector<std::uint8_t>> envelopes(prepare ? static_cast<std::size_t>(n) : 0);
    for (auto& e : envelopes) signer.sign_into(topic, payload, e);
    std::size_t ok = 0;
    if (mode == "raw") {
        EVP_MAC* mac = EVP_MAC_fetch(nullptr, OSSL_MAC_NAME_HMAC, nullptr);
        EVP_MAC_CTX* ctx = EVP_MAC_CTX_new(mac);
        char digest[] = OSSL_DIGEST_NAME_SHA2_256;
        const OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                                     OSSL_PARAM_construct_end()};
        EVP_MAC_init(ctx, key.data(), key.size(), params);
        unsigned char out[32];
        for (int i = 0; i < n; ++i) {
            std::size_t len = 0;
            EVP_MAC_init(ctx, nullptr, 0, nullptr);
            EVP_MAC_update(ctx, reinterpret_cast<const unsigned char*>(payload.data()), payload.size());
            ok += EVP_MAC_final(ctx, out, &len, sizeof out) == 1 ? 1u : 0u;
        }
        EVP_MAC_CTX_free(ctx);
        EVP_MAC_free(mac);
    } else if (mode == "sign") {
        std::vector<std::uint8_t> buffer;
        for (int i = 0; i < n; ++i) {
            signer.sign_into(topic, payload, buffer);
            ok += buffer.empty() ? 0u : 1u;
        }
    } else if (mode == "prepare") {
        ok = envelopes.size();
    } else {
        Verifier verifier(keyring);
        for (const auto& e : envelopes) ok += verifier.verify(topic, e).ok() ? 1u : 0u;
    }
    return ok == static_cast<std::size_t>(n) ? 0 : 1;
}
