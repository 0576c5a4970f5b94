// SPDX-License-Identifier: Apache-2.0
#include "tls_protocol_floor.hpp"

#include "openssl_util.hpp"

#include <securemqtt/errors.hpp>

#include <openssl/conf.h>
#include <openssl/ssl.h>

#include <mutex>
#include <string>

namespace securemqtt::detail {
namespace {

using ConfPtr = std::unique_ptr<CONF, OpenSslDeleter<CONF, NCONF_free>>;

// What a new SSL_CTX gets from the configuration loaded so far.
struct Policy {
    int min_version = 0;  // 0: no minimum
    int security_level = 0;
};

Policy current_policy() {
    const SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()));
    if (!ctx) throw TlsError("TLS: cannot create an OpenSSL context (" + openssl_reason() + ")");
    return Policy{static_cast<int>(SSL_CTX_get_min_proto_version(ctx.get())), SSL_CTX_get_security_level(ctx.get())};
}

void load_floor() {
    // The system configuration is loaded once, on OpenSSL's first initialisation: have that
    // happen now, or it would later replace the section loaded here.
    if (OPENSSL_init_ssl(OPENSSL_INIT_LOAD_CONFIG, nullptr) != 1) {
        throw TlsError("TLS: cannot initialise OpenSSL (" + openssl_reason() + ")");
    }
    // Only ever raise: a system already at TLS 1.2 and security level 2 or above is left as
    // it is (loading a section replaces the system's whole `system_default`, so its other
    // settings would be lost too); otherwise each setting is the stricter of the two.
    const Policy system = current_policy();
    if (system.min_version >= TLS1_2_VERSION && system.security_level >= 2) return;
    const char* min_protocol = system.min_version >= TLS1_3_VERSION ? "TLSv1.3" : "TLSv1.2";
    const int level = system.security_level > 2 ? system.security_level : 2;
    // The section names are ours so as not to collide with the system configuration's; only the
    // ssl_conf module is named, so providers and algorithm settings stay as the system set them.
    const std::string config = std::string("securemqtt_conf = securemqtt_init\n"
                                           "[securemqtt_init]\n"
                                           "ssl_conf = securemqtt_ssl\n"
                                           "[securemqtt_ssl]\n"
                                           "system_default = securemqtt_system_default\n"
                                           "[securemqtt_system_default]\n"
                                           "MinProtocol = ") +
                               min_protocol + "\nCipherString = DEFAULT:@SECLEVEL=" + std::to_string(level) + "\n";
    ConfPtr conf(NCONF_new(nullptr));
    BioPtr text(BIO_new_mem_buf(config.data(), static_cast<int>(config.size())));
    long error_line = 0;
    if (!conf || !text || NCONF_load_bio(conf.get(), text.get(), &error_line) != 1 ||
        CONF_modules_load(conf.get(), "securemqtt_conf", 0) != 1) {
        throw TlsError("TLS: OpenSSL refused the TLS 1.2 floor configuration (" + openssl_reason() + ")");
    }
}

}  // namespace

void enforce_tls_protocol_floor() {
    // std::call_once runs it again on a later call if it threw.
    static std::once_flag once;
    std::call_once(once, load_floor);
}

}  // namespace securemqtt::detail
