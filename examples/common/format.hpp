// SPDX-License-Identifier: Apache-2.0
// secure_subscriber's -F FORMAT, as mosquitto_sub spells it: %-specifiers for a verified
// message's fields and properties, backslash escapes, one line per message.
#pragma once

#include <securemqtt/securemqtt.hpp>

#include <string>
#include <string_view>

namespace cli {

/// Why `format` cannot be used (an unknown %-specifier or escape); empty when it can.
inline std::string format_problem(std::string_view format) {
    for (std::size_t i = 0; i < format.size(); ++i) {
        if (format[i] != '%' && format[i] != '\\') continue;
        if (i + 1 == format.size()) return std::string("-F ends with a lone '") + format[i] + "'";
        const char c = format[++i];
        const std::string_view known = format[i - 1] == '%' ? "%tpqrlxXCDERPF" : "\\nt0aervb\"";
        if (known.find(c) == std::string_view::npos) {
            return std::string("-F: unknown ") + (format[i - 1] == '%' ? "specifier %" : "escape \\") + c +
                   " (known: %t %p %q %r %l %x %X %C %D %E %R %P %F %%, \\n \\t \\\\)";
        }
    }
    return {};
}

/// `message` written as `format` says (checked with format_problem()).
inline std::string format_message(std::string_view format, const securemqtt::Message& m) {
    static const char lower[] = "0123456789abcdef";
    static const char upper[] = "0123456789ABCDEF";
    const securemqtt::MessageProperties& p = m.properties;
    std::string out;
    const auto hex = [&out, &m](const char* digits) {
        for (std::uint8_t b : m.payload) {
            out += digits[b >> 4];
            out += digits[b & 15];
        }
    };
    for (std::size_t i = 0; i < format.size(); ++i) {
        const char c = format[i];
        if (c == '\\' && i + 1 < format.size()) {
            switch (format[++i]) {
                case 'n': out += '\n'; break;
                case 't': out += '\t'; break;
                case '0': out += '\0'; break;
                case 'a': out += '\a'; break;
                case 'e': out += '\033'; break;
                case 'r': out += '\r'; break;
                case 'v': out += '\v'; break;
                case 'b': out += '\b'; break;
                default: out += format[i]; break;  // \\ and \"
            }
            continue;
        }
        if (c != '%' || i + 1 == format.size()) {
            out += c;
            continue;
        }
        switch (format[++i]) {
            case '%': out += '%'; break;
            case 't': out += m.topic; break;
            case 'p': out += m.payload.as_string_view(); break;
            case 'q': out += std::to_string(m.qos.level()); break;
            case 'r': out += m.retained ? '1' : '0'; break;
            case 'l': out += std::to_string(m.payload.size()); break;
            case 'x': hex(lower); break;
            case 'X': hex(upper); break;
            case 'C': out += p.content_type.value_or(""); break;
            case 'D': out += p.correlation_data.value_or(""); break;
            case 'E':
                if (p.message_expiry) out += std::to_string(p.message_expiry->count());
                break;
            case 'F': out += p.payload_format == securemqtt::PayloadFormat::utf8 ? "1" : "0"; break;
            case 'R': out += p.response_topic.value_or(""); break;
            case 'P':
                for (std::size_t k = 0; k < p.user_properties.size(); ++k) {
                    if (k > 0) out += ' ';
                    out += p.user_properties[k].name + ':' + p.user_properties[k].value;
                }
                break;
            default: out += '%'; out += format[i]; break;  // refused by format_problem()
        }
    }
    return out;
}

}  // namespace cli
