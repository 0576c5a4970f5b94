// SPDX-License-Identifier: Apache-2.0
// The Lua scripts of src/redis/, embedded at build time (cmake/SecureMqttRedisScripts.cmake).
#pragma once

#include <string_view>

namespace securemqtt::detail {

/// The text of src/redis/NAME.lua, e.g. redis_script("replay_admit"). Throws std::out_of_range
/// for a name with no such file (a programming error).
std::string_view redis_script(std::string_view name);

}  // namespace securemqtt::detail
