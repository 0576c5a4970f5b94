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

// The section names are ours so as not to collide with the system configuration's; only the
// ssl_conf module is named, so providers and algorithm settings stay as the system set them.
constexpr char floor_config[] =
    "securemqtt_conf = securemqtt_init\n"
    "[securemqtt_init]\n"
    "ssl_conf = securemqtt_ssl\n"
    "[securemqtt_ssl]\n"
    "system_default = securemqtt_system_default\n"
    "[securemqtt_system_default]\n"
    "MinProtocol = TLSv1.2\n"
    "CipherString = DEFAULT:@SECLEVEL=2\n";

void load_floor() {
    // The system configuration is loaded once, on OpenSSL's first initialisation: have that
    // happen now, or it would later replace the section loaded here.
    if (OPENSSL_init_ssl(OPENSSL_INIT_LOAD_CONFIG, nullptr) != 1) {
        throw TlsError("TLS: cannot initialise OpenSSL (" + openssl_reason() + ")");
    }
    ConfPtr conf(NCONF_new(nullptr));
    BioPtr text(BIO_new_mem_buf(floor_config, static_cast<int>(sizeof floor_config - 1)));
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
