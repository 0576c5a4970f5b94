// SPDX-License-Identifier: Apache-2.0
#include <securemqtt/errors.hpp>
#include <securemqtt/tls_options.hpp>

#include "connect_diagnosis.hpp"
#include "file_access.hpp"
#include "openssl_util.hpp"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <cstring>
#include <ctime>
#include <optional>

namespace securemqtt {
namespace {

using namespace detail;

constexpr std::size_t max_pem_file_size = 16 * 1024 * 1024;

// A credential's bytes and how to name it in messages.
struct Source {
    std::string name;  // "client certificate 'path'" or "client certificate (PEM in memory)"
    std::string path;  // empty for memory
    SecureBuffer data;
};

Source load(std::string_view what, const std::string& path, const std::string& pem) {
    Source s;
    if (!pem.empty()) {
        s.name = std::string(what) + " (PEM in memory)";
        s.data = SecureBuffer(pem.size());
        std::memcpy(s.data.data(), pem.data(), pem.size());
        return s;
    }
    s.path = path;
    s.name = std::string(what) + " '" + path + "'";
    try {
        s.data = read_secret_file(path, what, max_pem_file_size);
    } catch (const ConfigError& e) {
        throw TlsError(e.what());  // same text; a credential problem
    }
    return s;
}

[[noreturn]] void fail(const Source& s, const std::string& cause) { throw TlsError(s.name + ": " + cause); }

bool looks_like_pem(const Source& s) {
    const std::string_view text(reinterpret_cast<const char*>(s.data.data()), s.data.size());
    return text.find("-----BEGIN ") != std::string_view::npos;
}

// Fails unless the source is PEM; DER is recognised and the message says how to convert it.
template <typename ParsesAsDer>
void reject_unless_pem(const Source& s, const char* what, const char* openssl_command, ParsesAsDer parses_as_der) {
    if (looks_like_pem(s)) return;
    const unsigned char* p = s.data.data();
    const bool der = parses_as_der(&p, static_cast<long>(s.data.size()));
    ERR_clear_error();
    if (!der) fail(s, std::string("not a PEM ") + what);
    const std::string in = s.path.empty() ? std::string("file.der") : s.path;
    fail(s, std::string("is a DER ") + what + ", PEM is needed (convert: openssl " + openssl_command +
                " -inform DER -in " + in + " -out " + in + ".pem)");
}

BioPtr memory_bio(const Source& s) {
    return BioPtr(BIO_new_mem_buf(s.data.data(), static_cast<int>(s.data.size())));
}

// Every certificate in a PEM source, in order. DER is recognised and explained.
X509StackPtr parse_certificates(const Source& s) {
    reject_unless_pem(s, "certificate", "x509", [](const unsigned char** p, long n) {
        return X509Ptr(d2i_X509(nullptr, p, n)) != nullptr;
    });
    X509StackPtr certs(sk_X509_new_null());
    BioPtr bio = memory_bio(s);
    while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) sk_X509_push(certs.get(), cert);
    const unsigned long err = ERR_peek_last_error();
    if (sk_X509_num(certs.get()) == 0) fail(s, "no certificate in the file (" + openssl_reason("no PEM certificate") + ")");
    // Reaching the end of the data is the normal way out of the loop.
    if (ERR_GET_REASON(err) != PEM_R_NO_START_LINE && err != 0) fail(s, "damaged certificate (" + openssl_reason() + ")");
    ERR_clear_error();
    return certs;
}

void free_crl_stack(STACK_OF(X509_CRL)* s) { sk_X509_CRL_pop_free(s, X509_CRL_free); }
using CrlStackPtr = std::unique_ptr<STACK_OF(X509_CRL), OpenSslDeleter<STACK_OF(X509_CRL), free_crl_stack>>;

// Every CRL in a PEM source, in order. DER is recognised and explained.
CrlStackPtr parse_crls(const Source& s) {
    reject_unless_pem(s, "CRL", "crl", [](const unsigned char** p, long n) {
        return std::unique_ptr<X509_CRL, OpenSslDeleter<X509_CRL, X509_CRL_free>>(d2i_X509_CRL(nullptr, p, n)) != nullptr;
    });
    CrlStackPtr crls(sk_X509_CRL_new_null());
    BioPtr bio = memory_bio(s);
    while (X509_CRL* crl = PEM_read_bio_X509_CRL(bio.get(), nullptr, nullptr, nullptr)) sk_X509_CRL_push(crls.get(), crl);
    const unsigned long err = ERR_peek_last_error();
    if (sk_X509_CRL_num(crls.get()) == 0) {
        ERR_clear_error();
        fail(s, "no CRL in the file");
    }
    if (ERR_GET_REASON(err) != PEM_R_NO_START_LINE && err != 0) fail(s, "damaged CRL (" + openssl_reason() + ")");
    ERR_clear_error();
    return crls;
}

PkeyPtr parse_key(const Source& s, const std::string& passphrase) {
    const std::string_view text(reinterpret_cast<const char*>(s.data.data()), s.data.size());
    reject_unless_pem(s, "private key", "pkey", [](const unsigned char** p, long n) {
        return PkeyPtr(d2i_AutoPrivateKey(nullptr, p, n)) != nullptr;
    });
    const bool encrypted = text.find("ENCRYPTED") != std::string_view::npos;
    if (encrypted && passphrase.empty()) fail(s, "the key is encrypted and no passphrase was given");
    BioPtr bio = memory_bio(s);
    PkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, string_passphrase_callback, const_cast<std::string*>(&passphrase)));
    if (!key) {
        if (encrypted) fail(s, "wrong passphrase (" + openssl_reason("bad decrypt") + ")");
        fail(s, "not a private key (" + openssl_reason() + ")");
    }
    ERR_clear_error();
    return key;
}

std::string asn1_time_text(const ASN1_TIME* t) {
    BioPtr bio(BIO_new(BIO_s_mem()));
    ASN1_TIME_print(bio.get(), t);
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<std::size_t>(n));
}

// Days from 1970-01-01 to a proleptic Gregorian date (H. Hinnant's days_from_civil), in 64 bits:
// no time_t, which is 32 bits on some targets (Debian armhf) and ends in 2038 there.
std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) noexcept {
    y -= m <= 2 ? 1 : 0;
    const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
    const auto yoe = static_cast<unsigned>(y - era * 400);
    const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

// Seconds since the epoch of a certificate or CRL time; nullopt if OpenSSL cannot read it.
std::optional<std::int64_t> asn1_time_seconds(const ASN1_TIME* t) {
    struct tm tm {};
    if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) return std::nullopt;
    const std::int64_t days = days_from_civil(std::int64_t{tm.tm_year} + 1900, static_cast<unsigned>(tm.tm_mon + 1),
                                              static_cast<unsigned>(tm.tm_mday));
    return days * 86400 + tm.tm_hour * 3600 + tm.tm_min * 60 + tm.tm_sec;
}

// A validity date that cannot be read is not taken as valid.
std::int64_t validity_seconds(const Source& s, const ASN1_TIME* t, const char* which) {
    const std::optional<std::int64_t> seconds = asn1_time_seconds(t);
    if (!seconds) fail(s, std::string("its ") + which + " date cannot be read");
    return *seconds;
}

std::string subject_text(X509* cert) {
    BioPtr bio(BIO_new(BIO_s_mem()));
    X509_NAME_print_ex(bio.get(), X509_get_subject_name(cert), 0, XN_FLAG_RFC2253);
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<std::size_t>(n));
}

// A CRL that is not signed by a trusted CA, or out of date, would make every connection fail
// (or, unchecked, pass): say which and why before any network I/O.
void check_crl(const Source& s, X509_CRL* crl, X509_STORE* store, const std::string& ca_name, std::int64_t now) {
    X509StoreCtxPtr ctx(X509_STORE_CTX_new());
    if (!ctx || X509_STORE_CTX_init(ctx.get(), store, nullptr, nullptr) != 1) {
        throw TlsError("TLS preflight: " + openssl_reason("out of memory"));
    }
    // Every trusted certificate with the CRL's issuer name (CA files and directories alike):
    // two CAs may share a name, the signature decides.
    X509StackPtr issuers(X509_STORE_CTX_get1_certs(ctx.get(), X509_CRL_get_issuer(crl)));
    bool signed_by_ca = false;
    for (int i = 0; issuers && i < sk_X509_num(issuers.get()) && !signed_by_ca; ++i) {
        EVP_PKEY* key = X509_get0_pubkey(sk_X509_value(issuers.get(), i));
        signed_by_ca = key != nullptr && X509_CRL_verify(crl, key) == 1;
    }
    ERR_clear_error();
    if (!signed_by_ca) fail(s, "not signed by a CA in " + ca_name);
    if (validity_seconds(s, X509_CRL_get0_lastUpdate(crl), "last update") > now) {
        fail(s, "not valid before " + asn1_time_text(X509_CRL_get0_lastUpdate(crl)));
    }
    const ASN1_TIME* next = X509_CRL_get0_nextUpdate(crl);
    if (next != nullptr && validity_seconds(s, next, "next update") <= now) {
        fail(s, "expired on " + asn1_time_text(next) + " (issue a new one: openssl ca -gencrl)");
    }
}

// The cipher list is judged by OpenSSL itself, applied as Paho applies it (security level 1,
// then the list), so no spelling of a lower level gets past.
void check_cipher_list(const TlsOptions& o) {
    if (o.ciphers.empty()) return;
    if (o.min_version == TlsVersion::tls1_3) {
        throw ConfigError("TLS: a cipher list (--ciphers) applies to TLS 1.2 only and would be ignored with a "
                          "TLS 1.3 floor (--tls-version tlsv1.3); give one or the other");
    }
    const std::string named = "TLS: cipher list '" + o.ciphers + "' (--ciphers)";
    SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()));
    if (!ctx) throw TlsError("TLS preflight: " + openssl_reason("out of memory"));
    SSL_CTX_set_security_level(ctx.get(), 1);
    if (SSL_CTX_set_cipher_list(ctx.get(), tls_cipher_string(o).c_str()) != 1) {
        throw ConfigError(named + ": " + openssl_reason("no cipher matches"));
    }
    const int level = SSL_CTX_get_security_level(ctx.get());
    if (level < 2) {
        throw ConfigError(named + " sets OpenSSL's security level to " + std::to_string(level) +
                          "; at least 2 is required");
    }
}

}  // namespace

TlsVersion parse_tls_version(std::string_view text) {
    if (text == "tlsv1.2" || text == "1.2" || text == "tls1.2" || text == "tls1_2") return TlsVersion::tls1_2;
    if (text == "tlsv1.3" || text == "1.3" || text == "tls1.3" || text == "tls1_3") return TlsVersion::tls1_3;
    throw ConfigError("unknown TLS version '" + std::string(text.substr(0, 32)) + "' (use tlsv1.2 or tlsv1.3)");
}

PreflightReport preflight_tls(const TlsOptions& o, std::int64_t now_ms, const Logger& logger) {
    PreflightReport report;
    const auto warn = [&](const std::string& message) {
        report.warnings.push_back(message);
        if (logger) logger(LogLevel::warning, message);
    };
    if (o.expiry_warning_days < 0 || o.expiry_warning_days > 3650) {
        throw ConfigError("TLS: expiry_warning_days must be 0 to 3650, got " + std::to_string(o.expiry_warning_days));
    }
    const std::int64_t now_s = now_ms / 1000;
    const bool own_ca = !o.ca_file.empty() || !o.ca_path.empty() || !o.ca_pem.empty();
    if (o.use_os_trust_store && own_ca) {
        throw ConfigError("TLS: use_os_trust_store (--tls-use-os-certs) and a CA file or directory exclude each "
                          "other; to trust a private CA too, add it to the system's store");
    }
    if (o.use_os_trust_store && !o.verify_hostname) {
        // Any holder of any publicly trusted certificate could then pose as the broker.
        throw ConfigError("TLS: the system's CA store (--tls-use-os-certs) needs the broker's host name checked "
                          "(not --insecure)");
    }
    if (o.use_os_trust_store && !o.crl_file.empty()) {
        throw ConfigError("TLS: a CRL file needs the CA given as a file (--cafile), not the system's store");
    }
    if (!own_ca && !o.use_os_trust_store) {
        throw ConfigError("TLS: no CA configured to verify the broker (--cafile, --capath or --tls-use-os-certs)");
    }
    for (const std::string& protocol : o.alpn) {
        if (protocol.empty() || protocol.size() > 255) {
            throw ConfigError("TLS: an ALPN protocol name must be 1 to 255 bytes, got '" + protocol.substr(0, 64) + "'");
        }
    }
    const bool has_cert = !o.cert_file.empty() || !o.cert_pem.empty();
    const bool has_key = !o.key_file.empty() || !o.key_pem.empty();
    if (!has_cert || !has_key) {
        throw ConfigError(std::string("TLS: mutual TLS needs a client certificate and its key; ") +
                          (has_cert ? "no key given (--key)" : "no certificate given (--cert)"));
    }
    check_cipher_list(o);
    if (!o.verify_hostname) warn("TLS: broker hostname verification is turned off (insecure)");

    // Trust anchors.
    X509StorePtr store(X509_STORE_new());
    std::string ca_name;
    if (!o.ca_file.empty() || !o.ca_pem.empty()) {
        const Source ca = load("CA file", o.ca_file, o.ca_pem);
        ca_name = ca.name;
        const X509StackPtr cas = parse_certificates(ca);
        for (int i = 0; i < sk_X509_num(cas.get()); ++i) X509_STORE_add_cert(store.get(), sk_X509_value(cas.get(), i));
    }
    if (!o.ca_path.empty()) {
        if (X509_STORE_load_path(store.get(), o.ca_path.c_str()) != 1) {
            throw TlsError("CA directory '" + o.ca_path + "': cannot be used (" + openssl_reason() + ")");
        }
        ca_name += (ca_name.empty() ? "" : " and ") + std::string("CA directory '") + o.ca_path + "'";
    }

    // Revocation lists, checked themselves, then used for our own chain below.
    std::string crl_name;
    if (!o.crl_file.empty()) {
        const Source crl_src = load("CRL file", o.crl_file, "");
        crl_name = crl_src.name;
        const CrlStackPtr crls = parse_crls(crl_src);
        for (int i = 0; i < sk_X509_CRL_num(crls.get()); ++i) {
            check_crl(crl_src, sk_X509_CRL_value(crls.get(), i), store.get(), ca_name, now_s);
        }
        for (int i = 0; i < sk_X509_CRL_num(crls.get()); ++i) X509_STORE_add_crl(store.get(), sk_X509_CRL_value(crls.get(), i));
    }

    // Client certificate (leaf first, intermediates after) and key.
    const Source cert_src = load("client certificate", o.cert_file, o.cert_pem);
    X509StackPtr chain = parse_certificates(cert_src);
    X509* leaf = sk_X509_value(chain.get(), 0);
    const Source key_src = load("client key", o.key_file, o.key_pem);
    const PkeyPtr key = parse_key(key_src, o.key_passphrase);
    if (X509_check_private_key(leaf, key.get()) != 1) {
        ERR_clear_error();
        throw TlsError(key_src.name + ": does not match " + cert_src.name.substr(std::strlen("client ")));
    }

    // Validity now.
    const std::int64_t not_before = validity_seconds(cert_src, X509_get0_notBefore(leaf), "notBefore");
    const std::int64_t not_after = validity_seconds(cert_src, X509_get0_notAfter(leaf), "notAfter");
    if (not_before > now_s) fail(cert_src, "not valid before " + asn1_time_text(X509_get0_notBefore(leaf)));
    // As X509_cmp_time and OpenSSL's own chain check: a certificate is expired at its notAfter.
    if (not_after <= now_s) fail(cert_src, "expired on " + asn1_time_text(X509_get0_notAfter(leaf)));
    if (not_after <= now_s + std::int64_t{o.expiry_warning_days} * 86400) {
        warn(cert_src.name + ": expires on " + asn1_time_text(X509_get0_notAfter(leaf)) + ", within " +
             std::to_string(o.expiry_warning_days) + " days");
    }

    report.client_subject = subject_text(leaf);
    report.client_not_after_ms = not_after * 1000;
    if (o.use_os_trust_store) return report;  // a public CA did not issue it: the broker judges

    // Chain to the configured CA, as the broker will check it.
    X509StackPtr untrusted(sk_X509_new_null());
    for (int i = 1; i < sk_X509_num(chain.get()); ++i) sk_X509_push(untrusted.get(), sk_X509_value(chain.get(), i));
    X509StoreCtxPtr ctx(X509_STORE_CTX_new());
    if (!ctx || X509_STORE_CTX_init(ctx.get(), store.get(), leaf, untrusted.get()) != 1) {
        throw TlsError("TLS preflight: " + openssl_reason("out of memory"));
    }
    X509_STORE_CTX_set_purpose(ctx.get(), X509_PURPOSE_SSL_CLIENT);
    // OpenSSL's own interface takes a time_t (32 bits on armhf: this check, like OpenSSL's, ends in 2038 there).
    X509_VERIFY_PARAM_set_time(X509_STORE_CTX_get0_param(ctx.get()), static_cast<std::time_t>(now_s));
    if (!crl_name.empty()) {
        X509_VERIFY_PARAM_set_flags(X509_STORE_CTX_get0_param(ctx.get()), X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL);
    }
    const bool chained = X509_verify_cert(ctx.get()) == 1;
    // The untrusted stack borrows the chain's certificates: empty it before both are freed.
    while (sk_X509_num(untrusted.get()) > 0) sk_X509_pop(untrusted.get());
    if (!chained) {
        const int err = X509_STORE_CTX_get_error(ctx.get());
        ERR_clear_error();
        if (err == X509_V_ERR_CERT_REVOKED) fail(cert_src, "revoked (" + crl_name + ")");
        if (err == X509_V_ERR_UNABLE_TO_GET_CRL) {
            throw TlsError(crl_name + ": has no CRL from a CA in the chain of " + cert_src.name +
                           " (every CA in it needs one)");
        }
        fail(cert_src, std::string("does not chain to ") + ca_name + " (" + X509_verify_cert_error_string(err) + ")");
    }
    return report;
}

}  // namespace securemqtt
