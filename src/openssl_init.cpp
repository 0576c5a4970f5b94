// SPDX-License-Identifier: Apache-2.0
#include "openssl_init.hpp"

#include <openssl/crypto.h>

namespace securemqtt::detail {

void keep_openssl_until_exit() noexcept {
    // OpenSSL runs its initialisation once; a failure here shows again at the first real use,
    // which reports it.
    (void)OPENSSL_init_crypto(OPENSSL_INIT_NO_ATEXIT, nullptr);
}

}  // namespace securemqtt::detail
