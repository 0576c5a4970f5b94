// SPDX-License-Identifier: Apache-2.0
// Reading secret files and checking who else can read them: the platform-specific part of
// key loading, kept in one place with a portable fallback.
#pragma once

#include "secure_buffer.hpp"

#include <string>
#include <string_view>

namespace securemqtt::detail {

/// Largest secret file read (a hex key file is far smaller).
inline constexpr std::size_t max_secret_file_size = 64 * 1024;

/// Reads the whole file into wiping memory. Throws ConfigError "`what` 'path': cause" when it
/// does not exist, cannot be read, is not a regular file, is empty or is larger than `max_size`.
SecureBuffer read_secret_file(const std::string& path, std::string_view what,
                              std::size_t max_size = max_secret_file_size);

/// True when the file's permissions let its group or others read it (POSIX). Always false on
/// platforms without POSIX permission bits.
bool readable_by_others(const std::string& path) noexcept;

}  // namespace securemqtt::detail
