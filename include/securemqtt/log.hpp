// SPDX-License-Identifier: Apache-2.0
// The logger hook: securemqtt never writes to stdout or stderr itself.
#pragma once

#include <securemqtt/export.hpp>

#include <functional>
#include <string_view>

namespace securemqtt {

/// Severity of a log message.
enum class LogLevel { debug, info, warning, error };

/// The level's name: "debug", "info", "warning", "error".
SECUREMQTT_EXPORT std::string_view to_string(LogLevel level) noexcept;

/// Receives the library's log messages. May be called from any thread the library runs on, so
/// it must be thread-safe; it must not throw (an exception thrown by it is swallowed). Messages
/// never contain key bytes, passphrases or whole envelopes. An empty Logger discards messages.
using Logger = std::function<void(LogLevel level, std::string_view message)>;

}  // namespace securemqtt
