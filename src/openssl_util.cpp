// SPDX-License-Identifier: Apache-2.0
#include "openssl_util.hpp"

#include <openssl/err.h>

#include <cstring>

namespace securemqtt::detail {

std::string openssl_reason(const char* fallback) {
    const unsigned long code = ERR_peek_error();
    ERR_clear_error();
    if (code == 0) return fallback;
    const char* reason = ERR_reason_error_string(code);
    if (reason != nullptr) return reason;
    char buf[256];
    ERR_error_string_n(code, buf, sizeof buf);
    return buf;
}

int string_passphrase_callback(char* buf, int size, int /*rwflag*/, void* user) {
    const auto* pass = static_cast<const std::string*>(user);
    if (pass->empty() || pass->size() > static_cast<std::size_t>(size)) return -1;
    std::memcpy(buf, pass->data(), pass->size());
    return static_cast<int>(pass->size());
}

}  // namespace securemqtt::detail
