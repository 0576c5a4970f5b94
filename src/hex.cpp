// SPDX-License-Identifier: Apache-2.0
#include "hex.hpp"

#include <openssl/crypto.h>


namespace securemqtt::detail {

namespace {
int hex_value(char c) noexcept {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}
bool is_space(char c) noexcept { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
}  // namespace

std::optional<SecureBuffer> decode_hex_secret(std::string_view text) {
    SecureBuffer out(text.size() / 2);
    std::size_t n = 0;
    int high = -1;
    for (char c : text) {
        if (is_space(c)) continue;
        const int v = hex_value(c);
        if (v < 0) return std::nullopt;
        if (high < 0) {
            high = v;
        } else {
            out.data()[n++] = static_cast<std::uint8_t>((high << 4) | v);
            high = -1;
        }
    }
    if (high >= 0) return std::nullopt;
    out.truncate(n);
    return out;
}

}  // namespace securemqtt::detail
