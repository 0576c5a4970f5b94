// SPDX-License-Identifier: Apache-2.0
#include "openssl_util.hpp"

#include <openssl/err.h>

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

}  // namespace securemqtt::detail
