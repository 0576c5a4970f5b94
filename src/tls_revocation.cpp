// SPDX-License-Identifier: Apache-2.0
#include "tls_revocation.hpp"

#include "file_access.hpp"
#include "openssl_util.hpp"

#include <securemqtt/errors.hpp>

#include <mutex>

namespace securemqtt::detail {
namespace {

using VerifyParamPtr = std::unique_ptr<X509_VERIFY_PARAM, OpenSslDeleter<X509_VERIFY_PARAM, X509_VERIFY_PARAM_free>>;

constexpr char table_entry[] = "ssl_server";  // what a TLS client inherits to verify a server
constexpr std::size_t max_trust_file_size = 16 * 1024 * 1024;

struct Registry {
    std::mutex mutex;
    int checking = 0;  // sessions with a CRL
    int plain = 0;     // sessions without
    VerifyParamPtr saved;  // the entry as it was before the first checking session
};

Registry& registry() {
    // Never destroyed: a session in a static object may end after this file's statics.
    static Registry* r = new Registry;
    return *r;
}

VerifyParamPtr copy_of_current_entry() {
    const X509_VERIFY_PARAM* current = X509_VERIFY_PARAM_lookup(table_entry);
    VerifyParamPtr copy(X509_VERIFY_PARAM_new());
    if (!copy || current == nullptr || X509_VERIFY_PARAM_set1(copy.get(), current) != 1 ||
        X509_VERIFY_PARAM_set1_name(copy.get(), table_entry) != 1) {
        return nullptr;
    }
    return copy;
}

// Called with the registry locked and no other session in the process.
void install(Registry& r) {
    VerifyParamPtr saved = copy_of_current_entry();
    VerifyParamPtr checking = copy_of_current_entry();
    if (!saved || !checking ||
        X509_VERIFY_PARAM_set_flags(checking.get(), X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL) != 1 ||
        X509_VERIFY_PARAM_add0_table(checking.get()) != 1) {
        throw TlsError("TLS: cannot turn on CRL checking for the MQTT client (" + openssl_reason() + ")");
    }
    (void)checking.release();  // the table owns it now
    r.saved = std::move(saved);
}

// Called with the registry locked and no other session in the process. If OpenSSL refuses,
// CRL checking stays on: closed, not open.
void restore(Registry& r) noexcept {
    if (r.saved && X509_VERIFY_PARAM_add0_table(r.saved.get()) == 1) (void)r.saved.release();
    r.saved.reset();
}

const char* const mixing_refused =
    "; give every session in a process a CRL or none (see docs/tls.md, Revocation)";

std::string read_text(const std::string& path, const char* what) {
    try {
        const SecureBuffer data = read_secret_file(path, what, max_trust_file_size);
        return std::string(reinterpret_cast<const char*>(data.data()), data.size());
    } catch (const ConfigError& e) {
        throw TlsError(e.what());
    }
}

}  // namespace

void RevocationSwitch::join(bool check_crl) {
    const Kind want = check_crl ? Kind::checking : Kind::plain;
    if (kind_ == want) return;
    if (kind_ != Kind::none) {
        throw ConfigError(std::string("TLS: reload() cannot ") + (check_crl ? "add a" : "remove the") +
                          " CRL file (crl_file): CRL checking is process-wide and fixed for a session's life; "
                          "construct a new session (see docs/tls.md, Revocation)");
    }
    Registry& r = registry();
    std::lock_guard<std::mutex> lock(r.mutex);
    if (check_crl && r.plain > 0) {
        throw ConfigError("TLS: a CRL file (crl_file) turns on CRL checking for every TLS client in the process, "
                          "and a session without one exists" + std::string(mixing_refused));
    }
    if (!check_crl && r.checking > 0) {
        throw ConfigError("TLS: a session with a CRL file (crl_file) has turned on CRL checking for every TLS "
                          "client in this process; a session without one cannot run beside it" +
                          std::string(mixing_refused));
    }
    if (check_crl && r.checking == 0) install(r);
    ++(check_crl ? r.checking : r.plain);
    kind_ = want;
}

RevocationSwitch::~RevocationSwitch() {
    if (kind_ == Kind::none) return;
    Registry& r = registry();
    std::lock_guard<std::mutex> lock(r.mutex);
    if (kind_ == Kind::plain) {
        --r.plain;
    } else if (--r.checking == 0) {
        restore(r);
    }
}

std::string trust_store_pem(const TlsOptions& tls) {
    if (tls.crl_file.empty()) return tls.ca_pem;
    std::string pem = tls.ca_pem;
    if (pem.empty() && !tls.ca_file.empty()) pem = read_text(tls.ca_file, "CA file");
    if (!pem.empty() && pem.back() != '\n') pem += '\n';
    return pem + read_text(tls.crl_file, "CRL file");
}

}  // namespace securemqtt::detail
