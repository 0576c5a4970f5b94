// SPDX-License-Identifier: Apache-2.0
// Mutual-TLS settings for a session, and the preflight that checks them with OpenSSL before
// any network I/O.
#pragma once

#include <securemqtt/export.hpp>
#include <securemqtt/log.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace securemqtt {

/// The oldest TLS version a session accepts.
enum class TlsVersion { tls1_2, tls1_3 };

/// The version as parse_tls_version() reads it: "tlsv1.2", "tlsv1.3".
SECUREMQTT_EXPORT std::string_view to_string(TlsVersion version) noexcept;

/// Parses "tlsv1.2" / "tlsv1.3" (as mosquitto_pub's --tls-version), also "1.2" / "1.3".
/// Throws ConfigError "unknown TLS version 'x' (use tlsv1.2 or tlsv1.3)" otherwise.
SECUREMQTT_EXPORT TlsVersion parse_tls_version(std::string_view text);

/// Where the session's trust anchors and client credentials come from, and how strict TLS is.
///
/// Files are PEM. Each credential may instead be given as PEM text in memory (`*_pem`): the
/// session hands Paho (which takes only paths) an anonymous in-memory file (memfd) or, where
/// there is none, a mode-0600 temporary file removed when the session ends. On Windows
/// `key_pem` is refused (TlsError: give `key_file`), and certificates go to a temporary file
/// only the current user can open (docs/tls.md). An encrypted key
/// is decrypted by the session and handed to Paho the same way where memfd exists, so Paho
/// never holds the passphrase. The session wipes its copies of `key_pem` and
/// `key_passphrase` when it frees them (see wipe_secrets()).
struct TlsOptions {
    std::string ca_file;      ///< CA certificates trusted for the broker (and the client chain)
    std::string ca_path;      ///< or a directory of hashed CA certificates (c_rehash)
    std::string ca_pem;       ///< or the CA certificates as PEM text
    std::string cert_file;    ///< the client certificate, optionally followed by intermediates
    std::string cert_pem;     ///< or as PEM text
    std::string key_file;     ///< the client's private key
    std::string key_pem;      ///< or as PEM text (the session's copies are wiped when freed)
    std::string key_passphrase;  ///< for an encrypted private key; never logged
    /// Certificate revocation lists (PEM, one or more) for checking the broker's certificate
    /// chain, and our own, against: every CA that issues a certificate in either chain needs a
    /// current CRL here, or the connection fails closed. Empty: no revocation check by the client.
    ///
    /// Process-wide (OpenSSL offers no other way into Paho's TLS context): while a session with
    /// a CRL exists, every TLS client in the process checks CRLs, so a session without one
    /// cannot be constructed beside it, nor one with a CRL beside a session without (ConfigError).
    /// See docs/tls.md, "Revocation".
    std::string crl_file;
    /// Oldest TLS version allowed. Paho ignores its own version setting with OpenSSL >= 1.1:
    /// TLS 1.2 is enforced through OpenSSL's process-wide configuration (MinProtocol, loaded
    /// once when the first session is constructed; it applies to every TLS client in the
    /// process), TLS 1.3 through the TLS 1.2 cipher list (see docs/tls.md).
    TlsVersion min_version = TlsVersion::tls1_2;
    /// OpenSSL cipher list for TLS 1.2; empty means "DEFAULT". "@SECLEVEL=2" is appended
    /// unless the list names a security level itself. A list that sets a security level below
    /// 2, or any list together with a TLS 1.3 floor (it would be ignored), is a ConfigError.
    std::string ciphers;
    /// ALPN protocol names offered in the handshake, in order of preference, e.g.
    /// {"x-amzn-mqtt-ca"} for AWS IoT Core on port 443; empty offers none. Each 1 to 255 bytes.
    /// A broker that agrees to none of them ends the handshake: the connect error says so.
    std::vector<std::string> alpn;
    /// Trust the operating system's CA certificates for the broker (OpenSSL's default
    /// locations: the files named by SSL_CERT_FILE / SSL_CERT_DIR when set, else the system's,
    /// e.g. /etc/ssl/certs on Debian), as for hosted brokers with certificates from public CAs.
    /// Instead of ca_file, ca_path and ca_pem (giving both is a ConfigError: to trust a private
    /// CA too, add it to the system store), and without crl_file (its CRLs travel with the CA
    /// file). The preflight then does not check that the client certificate chains to a
    /// trusted CA: public CAs do not issue it, the broker judges it.
    bool use_os_trust_store = false;
    /// Check that the broker's certificate names the host connected to. On by default (Paho
    /// leaves it off); turning it off is logged as a warning.
    bool verify_hostname = true;
    /// A client certificate expiring within this many days causes a warning (0 to 3650).
    int expiry_warning_days = 30;
};

/// Overwrites the whole of `secret`'s buffer and empties it, for passphrases and private keys
/// held in a std::string before it is freed. (std::string itself never wipes what it frees.)
SECUREMQTT_EXPORT void wipe(std::string& secret) noexcept;

/// wipe() of the options' private key PEM and passphrase. SecureSession does this to every copy
/// it keeps; call it on your own copies once the session has them.
SECUREMQTT_EXPORT void wipe_secrets(TlsOptions& options) noexcept;

/// What the preflight found besides errors.
struct PreflightReport {
    std::string client_subject;          ///< e.g. "CN=device-1"
    std::int64_t client_not_after_ms = 0;  ///< expiry of the client certificate
    std::vector<std::string> warnings;   ///< also sent to the logger
};

/// Checks TLS options with OpenSSL, without touching the network: each file exists and is
/// readable; certificates and the key parse (a DER file is recognised and the error says how
/// to convert it); an encrypted key has the right passphrase; the key matches the certificate;
/// the certificate is valid at `now_ms` (expired or not yet valid is an error, expiring soon a
/// warning); and it chains to the configured CA. With a `crl_file`: each CRL in it is signed by
/// a configured CA and current at `now_ms`, and our own chain is not revoked. Throws TlsError (credentials) or ConfigError
/// (missing settings) with one line naming the file and the cause, e.g.
/// "client key 'certs/client.key': does not match certificate 'certs/client.pem'".
SECUREMQTT_EXPORT PreflightReport preflight_tls(const TlsOptions& options, std::int64_t now_ms,
                                                const Logger& logger = {});

}  // namespace securemqtt
