// SPDX-License-Identifier: Apache-2.0
// Checking the broker's certificate for revocation inside Paho's TLS context, which the library
// cannot reach except through OpenSSL's process-wide settings: the switch, its contract, and
// the trust store that carries the CRLs to Paho.
#pragma once

#include <securemqtt/tls_options.hpp>

#include <string>

namespace securemqtt::detail {

/// A session's hold on process-wide CRL checking: OpenSSL's `ssl_server` verify-parameter table
/// entry (which every TLS client in the process inherits when it verifies a server) with
/// X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL.
///
/// The contract, fail closed: sessions that check CRLs and sessions that do not never coexist
/// in one process (the second kind to be constructed gets a ConfigError saying why); the entry
/// is set by the first checking session and restored to what it was when the last one ends;
/// a session keeps its kind for life (reload() cannot add or remove crl_file). So the entry
/// changes only while no other session exists. Thread-safe.
class RevocationSwitch {
public:
    RevocationSwitch() = default;
    ~RevocationSwitch();
    RevocationSwitch(const RevocationSwitch&) = delete;
    RevocationSwitch& operator=(const RevocationSwitch&) = delete;

    /// Joins the sessions that check CRLs (`check_crl`) or those that do not. The first call
    /// decides; a later call with the other kind throws ConfigError. Throws ConfigError when the
    /// other kind exists in the process, TlsError when OpenSSL refuses the table entry.
    void join(bool check_crl);

private:
    enum class Kind { none, checking, plain };
    Kind kind_ = Kind::none;
};

/// The PEM text of the trust store handed to Paho: the CA certificates (`ca_pem`, or the
/// contents of `ca_file`) followed by the CRLs of `crl_file`, since OpenSSL's PEM loader reads
/// both from one file. Without a `crl_file`, `ca_pem` unchanged (empty: Paho gets `ca_file`).
/// Throws TlsError naming the file that cannot be read.
std::string trust_store_pem(const TlsOptions& tls);

}  // namespace securemqtt::detail
