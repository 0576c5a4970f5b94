// SPDX-License-Identifier: Apache-2.0
// The TLS 1.2 floor for every SSL_CTX the process creates from now on, Paho's included.
#pragma once

namespace securemqtt::detail {

/// Loads, once per process, an OpenSSL configuration whose `ssl_conf` `system_default` section
/// says `MinProtocol = TLSv1.2` and `CipherString = DEFAULT:@SECLEVEL=2` (what Debian's
/// openssl.cnf puts there), so that every SSL_CTX created afterwards starts with TLS 1.2 as its
/// minimum, whatever cipher list it is given. Paho creates its SSL_CTX itself and ignores its
/// own version setting on OpenSSL 3; this is the only lever that reaches it.
///
/// Only ever raises: when the system's configuration already gives new contexts TLS 1.2 and
/// security level 2 or more, nothing is loaded; otherwise each of the two is the stricter of
/// the system's and the floor's. Process-wide: loading replaces the `system_default` section the
/// system's configuration set (its other settings too), for every TLS user in the process
/// (docs/tls.md). Idempotent and thread-safe; throws TlsError if OpenSSL refuses the
/// configuration (and tries again on the next call).
void enforce_tls_protocol_floor();

}  // namespace securemqtt::detail
