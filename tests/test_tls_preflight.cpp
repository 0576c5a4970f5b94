// SPDX-License-Identifier: Apache-2.0
// preflight_tls's dates: read without time_t (32 bits on armhf), so certificates that outlive
// 2038 report their real expiry there too. Certificates are made here, in memory.
#include "support/catch.hpp"

#include <securemqtt/securemqtt.hpp>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>
#include <utility>
#include <string>

using namespace securemqtt;

namespace {

struct Free {
    void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
    void operator()(X509* p) const { X509_free(p); }
    void operator()(BIO* p) const { BIO_free(p); }
};
using Key = std::unique_ptr<EVP_PKEY, Free>;
using Cert = std::unique_ptr<X509, Free>;

Key new_key() {
    Key k(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
    REQUIRE(k);
    return k;
}

// A certificate for `cn` signed by `issuer_key` (self-signed when `issuer` is null), valid
// from 2020-01-01 to `not_after` ("YYYYMMDDHHMMSSZ", GeneralizedTime for any year).
Cert new_cert(const char* cn, EVP_PKEY* key, X509* issuer, EVP_PKEY* issuer_key, const char* not_after) {
    Cert c(X509_new());
    REQUIRE(c);
    X509_set_version(c.get(), 2);
    ASN1_INTEGER_set(X509_get_serialNumber(c.get()), issuer == nullptr ? 1 : 2);
    REQUIRE(ASN1_TIME_set_string_X509(X509_getm_notBefore(c.get()), "20200101000000Z") == 1);
    REQUIRE(ASN1_TIME_set_string_X509(X509_getm_notAfter(c.get()), not_after) == 1);
    X509_NAME* name = X509_get_subject_name(c.get());
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn), -1, -1, 0);
    X509_set_issuer_name(c.get(), issuer == nullptr ? name : X509_get_subject_name(issuer));
    X509_set_pubkey(c.get(), key);
    if (issuer == nullptr) {  // the CA
        X509V3_CTX ctx;
        X509V3_set_ctx_nodb(&ctx);
        X509V3_set_ctx(&ctx, c.get(), c.get(), nullptr, nullptr, 0);
        for (const auto& [nid, value] : {std::pair{NID_basic_constraints, "critical,CA:TRUE"},
                                         std::pair{NID_key_usage, "critical,keyCertSign,cRLSign"}}) {
            X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
            REQUIRE(ext != nullptr);
            X509_add_ext(c.get(), ext, -1);
            X509_EXTENSION_free(ext);
        }
    }
    REQUIRE(X509_sign(c.get(), issuer_key, EVP_sha256()) > 0);
    return c;
}

template <typename Write>
std::string pem(Write write) {
    std::unique_ptr<BIO, Free> bio(BIO_new(BIO_s_mem()));
    REQUIRE(write(bio.get()) == 1);
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<std::size_t>(n));
}

TlsOptions options_expiring(const char* not_after) {
    const Key ca_key = new_key();
    const Cert ca = new_cert("test-ca", ca_key.get(), nullptr, ca_key.get(), "20991231235959Z");
    const Key key = new_key();
    const Cert cert = new_cert("device-1", key.get(), ca.get(), ca_key.get(), not_after);
    TlsOptions o;
    o.ca_pem = pem([&](BIO* b) { return PEM_write_bio_X509(b, ca.get()); });
    o.cert_pem = pem([&](BIO* b) { return PEM_write_bio_X509(b, cert.get()); });
    o.key_pem = pem([&](BIO* b) { return PEM_write_bio_PrivateKey(b, key.get(), nullptr, nullptr, 0, nullptr, nullptr); });
    return o;
}

constexpr std::int64_t now_ms = 1767225600000;  // 2026-01-01T00:00:00Z

}  // namespace

TEST_CASE("a client certificate valid past 2038 reports its real expiry", "[tls][preflight]") {
    // 2049-12-31T23:59:59Z: past where a 32-bit time_t ends (2038-01-19).
    const PreflightReport r = preflight_tls(options_expiring("20491231235959Z"), now_ms);
    CHECK(r.client_subject == "CN=device-1");
    CHECK(r.client_not_after_ms == 2524607999000);
    CHECK(r.warnings.empty());
    // 2106-02-07T06:28:16Z: past where an unsigned 32-bit one does.
    CHECK(preflight_tls(options_expiring("21060207062816Z"), now_ms).client_not_after_ms == 4294967296000);
}

TEST_CASE("the expiry warning holds for the longest allowed lead, and bad leads are refused", "[tls][preflight]") {
    // The warning is for certificates that expire at or before now + lead (as X509_cmp_time).
    TlsOptions o = options_expiring("20351230000001Z");  // a second after now + 3650 days
    o.expiry_warning_days = 3650;
    CHECK(preflight_tls(o, now_ms).warnings.empty());
    o = options_expiring("20351230000000Z");  // exactly now + 3650 days
    o.expiry_warning_days = 3650;
    const PreflightReport r = preflight_tls(o, now_ms);
    REQUIRE(r.warnings.size() == 1);
    CHECK(r.warnings[0].find("within 3650 days") != std::string::npos);
    for (const int bad : {-1, 3651}) {
        o.expiry_warning_days = bad;
        CHECK_THROWS_AS(preflight_tls(o, now_ms), ConfigError);
    }
}

TEST_CASE("a client certificate is expired at its notAfter, as OpenSSL has it", "[tls][preflight]") {
    // now = 2026-01-01T00:00:00Z
    CHECK_THROWS_AS(preflight_tls(options_expiring("20260101000000Z"), now_ms), TlsError);
    CHECK(preflight_tls(options_expiring("20260101000001Z"), now_ms).client_not_after_ms == now_ms + 1000);
}
