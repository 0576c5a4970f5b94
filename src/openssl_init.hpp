// SPDX-License-Identifier: Apache-2.0
// The one process-wide OpenSSL setting the library needs before anything else touches OpenSSL.
#pragma once

namespace securemqtt::detail {

/// Asks OpenSSL not to clean itself up from an exit handler (OPENSSL_INIT_NO_ATEXIT). Paho's
/// threads are detached: one still ending when exit() runs OPENSSL_cleanup() frees its
/// thread-local OpenSSL state through locks cleanup has freed, and the process crashes on its
/// way out. Effective only before OpenSSL's first initialisation in the process, so called by
/// the constructors that can come first (Keyring, SecureSession, the Redis replay store);
/// idempotent and thread-safe. The memory OpenSSL keeps is returned with the process.
void keep_openssl_until_exit() noexcept;

}  // namespace securemqtt::detail
