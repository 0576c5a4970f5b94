// SPDX-License-Identifier: Apache-2.0
// The session's TLS, decided once: what Paho is given and what the connect-failure probe repeats.
#pragma once

#include <securemqtt/tls_options.hpp>

#include <string>
#include <vector>

namespace securemqtt::detail {

/// Made by the session from its TlsOptions (prepare_tls), with in-memory credentials already
/// written to files. Paho's options are built from it (secure_session.cpp) and so is the probe's
/// SSL_CTX (connect_diagnosis.cpp): the probe repeats exactly the handshake that failed.
struct TlsSetup {
    TlsSetup() = default;
    // Moved only: it points into the session's options, and no copy may outlive the session.
    TlsSetup(TlsSetup&&) = default;
    TlsSetup& operator=(TlsSetup&&) = default;
    TlsSetup(const TlsSetup&) = delete;
    TlsSetup& operator=(const TlsSetup&) = delete;

    std::string ca_file;    ///< CA certificates, then the CRLs; empty with the OS trust store
    std::string ca_path;    ///< a directory of hashed CA certificates, or empty
    bool os_trust_store = false;  ///< no CA given: OpenSSL's default paths
    std::string cert_file;  ///< client certificate chain (PEM)
    std::string key_file;   ///< client private key (PEM), decrypted already when key_passphrase is null
    /// The options' own passphrase (wiped with them), or null: never copied here.
    const std::string* key_passphrase = nullptr;
    std::string cipher_list;  ///< tls_cipher_string(): also carries the TLS floor's security level
    TlsVersion min_version = TlsVersion::tls1_2;
    bool check_crl = false;   ///< CRLs in ca_file are checked, for the whole chain
    bool verify_hostname = true;
    std::vector<std::string> alpn;
};

}  // namespace securemqtt::detail
