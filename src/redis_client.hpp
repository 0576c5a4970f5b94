// SPDX-License-Identifier: Apache-2.0
// RedisScriptClient: runs the replay store's Lua scripts on a Redis server or a Redis Cluster,
// over hiredis (Debian's 0.14, which knows nothing of clusters: the slot map, MOVED and ASK are
// handled here). Internal: no public header includes hiredis.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace securemqtt::detail {

/// A parsed "redis://HOST:PORT[/DB]" location. HOST is a name, an IPv4 address or an IPv6
/// address in brackets; PORT defaults to 6379, DB to 0 (a cluster has only 0).
struct RedisLocation {
    std::string text;  ///< as given, for messages (holds no secret)
    std::string host;
    int port = 6379;
    int db = 0;
};

/// True when `location` starts with "redis://".
bool is_redis_location(std::string_view location) noexcept;

/// Parses a location; throws ConfigError naming it and what is wrong.
RedisLocation parse_redis_location(const std::string& location);

/// The cluster hash slot of `key` (CRC16/XMODEM of its hash tag, or of the key, mod 16384).
std::uint16_t redis_key_slot(std::string_view key) noexcept;

/// One reply, reduced to what the scripts return.
struct RedisReply {
    enum class Kind {
        integer,      ///< `integer` holds it
        text,         ///< a status or bulk string, in `text`
        nil,
        error,        ///< the server's error, in `text` (not a redirection: those are followed)
        unavailable,  ///< no answer: cannot connect, timed out, connection lost, cluster down
    };
    Kind kind = Kind::unavailable;
    long long integer = 0;
    std::string text;
};

/// One call of a script. All keys hash to one slot (they share a hash tag).
struct RedisScriptCall {
    std::size_t script = 0;  ///< from add_script()
    std::vector<std::string> keys;
    std::vector<std::string> args;
};

/// Runs Lua scripts by EVALSHA (loading them on a node that answers NOSCRIPT) on a server or
/// cluster. Not thread-safe: the caller serialises. Reconnects by itself: a call made while a
/// node is unreachable yields `unavailable` after at most one connection attempt bounded by the
/// timeout.
class RedisScriptClient {
public:
    /// Connects to the location (and, when it is a cluster node, learns the slot map).
    /// Throws ConfigError naming the location and the cause when it cannot connect or select DB.
    RedisScriptClient(RedisLocation location, std::chrono::milliseconds timeout);
    ~RedisScriptClient();
    RedisScriptClient(const RedisScriptClient&) = delete;
    RedisScriptClient& operator=(const RedisScriptClient&) = delete;

    /// Registers a script; returns its id for RedisScriptCall::script.
    std::size_t add_script(std::string source);

    /// Runs `calls`, pipelined per node (one round trip for calls on one node), and returns one
    /// reply per call, in order — preceded by the replies of every call post()ed since the last
    /// run(), in the order they were posted. Never throws (bad_alloc aside).
    std::vector<RedisReply> run(const std::vector<RedisScriptCall>& calls);

    /// Sends `call` and returns once it is written to the socket, without waiting for the
    /// reply; the next run() reads it. If it cannot be sent, its reply is `unavailable`.
    void post(const RedisScriptCall& call);

    /// Number of post()ed calls whose replies run() has not returned yet.
    std::size_t posted() const noexcept;

    /// True when the location is a cluster node.
    bool cluster() const noexcept;
    const RedisLocation& location() const noexcept;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace securemqtt::detail
