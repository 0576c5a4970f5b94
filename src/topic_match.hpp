// SPDX-License-Identifier: Apache-2.0
// Topic matching for filters validated once, when they were stored.
#pragma once

#include <string_view>

namespace securemqtt::detail {

/// topic_matches() without re-checking `filter`, which must have passed is_valid_topic_filter()
/// (subscriptions and key scopes are checked when made). Checking a filter costs most of a
/// match, and this runs for every message received.
bool valid_filter_matches(std::string_view filter, std::string_view topic) noexcept;

}  // namespace securemqtt::detail
