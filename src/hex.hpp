// SPDX-License-Identifier: Apache-2.0
// Hex text to key bytes, ignoring whitespace, without leaving copies of the secret behind.
#pragma once

#include "secure_buffer.hpp"

#include <optional>
#include <string_view>

namespace securemqtt::detail {

/// Decodes hex digits (either case), skipping ASCII whitespace. Returns nothing when a
/// character is neither, or the digit count is odd. The result wipes itself.
std::optional<SecureBuffer> decode_hex_secret(std::string_view text);

}  // namespace securemqtt::detail
