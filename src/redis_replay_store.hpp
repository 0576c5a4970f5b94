// SPDX-License-Identifier: Apache-2.0
// RedisReplayStore: the shared replay store (docs/envelope-v1.md §4, "Stores"): every verifier
// of a consumer group reserves and commits each message with one atomic script in Redis.
#pragma once

#include <securemqtt/replay_store.hpp>

#include <memory>
#include <string>

namespace securemqtt::detail {

/// Opens a shared store at "redis://HOST:PORT[/DB]"; throws ConfigError naming the location.
std::shared_ptr<ReplayStore> open_redis_replay_store(const std::string& location);

}  // namespace securemqtt::detail
