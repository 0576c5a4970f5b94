// SPDX-License-Identifier: Apache-2.0
// MQTT topic names and filters: validation and wildcard matching (MQTT 3.1.1 section 4.7).
#pragma once

#include <securemqtt/export.hpp>

#include <string_view>

namespace securemqtt {

/// True when `topic` is a valid topic name to publish to: non-empty, at most 65535 bytes,
/// no wildcard characters and no NUL.
SECUREMQTT_EXPORT bool is_valid_topic_name(std::string_view topic) noexcept;

/// True when `filter` is a valid subscription filter: `+` occupies a whole level, `#` only the
/// whole last level, non-empty, at most 65535 bytes, no NUL. A filter starting with "$share/"
/// must be a whole shared subscription, "$share/GROUP/FILTER", GROUP non-empty without
/// wildcards and FILTER valid.
SECUREMQTT_EXPORT bool is_valid_topic_filter(std::string_view filter) noexcept;

/// The part of a subscription filter that topics are matched against: FILTER for a shared
/// subscription "$share/GROUP/FILTER" (MQTT 5 section 4.8.2; Mosquitto also serves it over
/// MQTT 3.1.1), the filter itself otherwise. The broker delivers messages on topics matching
/// FILTER to one member of GROUP.
SECUREMQTT_EXPORT std::string_view matching_filter(std::string_view subscription) noexcept;

/// True when topic name `topic` matches `filter` with MQTT semantics: `+` matches exactly one
/// level, `#` matches the parent level and any number of levels below it, and a topic starting
/// with `$` is not matched by a filter starting with a wildcard. Invalid input never matches.
SECUREMQTT_EXPORT bool topic_matches(std::string_view filter, std::string_view topic) noexcept;

}  // namespace securemqtt
