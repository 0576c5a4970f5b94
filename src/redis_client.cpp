// SPDX-License-Identifier: Apache-2.0
// RedisScriptClient over hiredis 0.14, which talks to one server at a time: the cluster part
// (slot map from CLUSTER SLOTS, a connection per node, MOVED and ASK) is done here, following
// the Redis Cluster specification.
#include "redis_client.hpp"
#include "socket_options.hpp"

#include <securemqtt/errors.hpp>

#include <hiredis/hiredis.h>
#include <openssl/evp.h>

#if defined(_WIN32)
#include <winsock2.h>
#include <ws2tcpip.h>
#else
#include <arpa/inet.h>
#include <sys/socket.h>
#endif

#include <algorithm>
#include <cerrno>
#include <deque>
#include <initializer_list>
#include <limits>
#include <map>
#include <new>
#include <optional>
#include <set>
#include <utility>

namespace securemqtt::detail {
namespace {

constexpr std::size_t slot_count = 16384;
constexpr int max_redirections = 5;
constexpr std::string_view scheme = "redis://";

struct ContextFree {
    void operator()(redisContext* c) const noexcept { redisFree(c); }
};
using ContextPtr = std::unique_ptr<redisContext, ContextFree>;

struct ReplyFree {
    void operator()(redisReply* r) const noexcept { freeReplyObject(r); }
};
using ReplyPtr = std::unique_ptr<redisReply, ReplyFree>;

// ---- locations

// Text for a one-line message: control characters shown as '?'.
std::string one_line(std::string_view text) {
    std::string out(text);
    for (char& c : out) {
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
    }
    return out;
}

[[noreturn]] void bad_location(std::string_view shown, const std::string& what) {
    throw ConfigError("Redis location '" + one_line(shown) + "': " + what);
}

// A decimal number from 0 to `max`: digits only, no sign, no spaces.
std::optional<long long> decimal(std::string_view text, long long max) {
    if (text.empty() || text.size() > 10) return std::nullopt;
    long long value = 0;
    for (char c : text) {
        if (c < '0' || c > '9') return std::nullopt;
        value = value * 10 + (c - '0');
    }
    if (value > max) return std::nullopt;
    return value;
}

bool host_name_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
           c == '_';
}

// ---- hashing

std::uint16_t crc16_xmodem(std::string_view data) noexcept {
    unsigned crc = 0;
    for (char byte : data) {
        crc ^= static_cast<unsigned>(static_cast<unsigned char>(byte)) << 8;
        for (int bit = 0; bit < 8; ++bit) crc = (crc & 0x8000U) != 0 ? (crc << 1) ^ 0x1021U : crc << 1;
        crc &= 0xffffU;
    }
    return static_cast<std::uint16_t>(crc);
}

// EVALSHA names a script by the SHA-1 of its text, in lowercase hex.
std::string sha1_hex(std::string_view text) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int size = 0;
    if (EVP_Digest(text.data(), text.size(), digest, &size, EVP_sha1(), nullptr) != 1) {
        throw Error("cannot compute the SHA-1 of a Redis script (OpenSSL refused)");
    }
    static constexpr char digits[] = "0123456789abcdef";
    std::string hex;
    for (unsigned int i = 0; i < size; ++i) {
        hex += digits[digest[i] >> 4];
        hex += digits[digest[i] & 15];
    }
    return hex;
}

// ---- hiredis helpers

// One command's arguments, as hiredis takes them (it copies them when formatting).
class Command {
public:
    Command(std::initializer_list<std::string_view> args) {
        for (std::string_view a : args) add(a);
    }
    void add(std::string_view arg) {
        args_.push_back(arg.data() != nullptr ? arg.data() : "");
        sizes_.push_back(arg.size());
    }
    int argc() const noexcept { return static_cast<int>(args_.size()); }
    const char** argv() noexcept { return args_.data(); }
    const std::size_t* sizes() const noexcept { return sizes_.data(); }

private:
    std::vector<const char*> args_;
    std::vector<std::size_t> sizes_;
};

// Runs one command and waits for its reply; null when the connection failed.
ReplyPtr command(redisContext& c, Command cmd) {
    return ReplyPtr(static_cast<redisReply*>(redisCommandArgv(&c, cmd.argc(), cmd.argv(), cmd.sizes())));
}

std::string_view text_of(const redisReply& r) noexcept {
    return r.str != nullptr ? std::string_view(r.str, r.len) : std::string_view();
}

// True when `error` carries the error code `code` ("CODE" or "CODE detail").
bool has_code(std::string_view error, std::string_view code) noexcept {
    return error.substr(0, code.size()) == code && (error.size() == code.size() || error[code.size()] == ' ');
}

// "MOVED 3999 127.0.0.1:6381" or "ASK ...": the slot's (new) node. An empty host means the
// host of the node that answered.
struct Redirection {
    bool ask = false;
    std::size_t slot = 0;
    std::string host;
    int port = 0;
};

std::optional<Redirection> redirection(std::string_view error) {
    Redirection r;
    if (has_code(error, "ASK")) {
        r.ask = true;
    } else if (!has_code(error, "MOVED")) {
        return std::nullopt;
    }
    const std::string_view rest = error.substr(error.find(' ') + 1);
    const std::size_t space = rest.find(' ');
    if (space == std::string_view::npos) return std::nullopt;
    const std::string_view endpoint = rest.substr(space + 1);
    const std::size_t colon = endpoint.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    const auto slot = decimal(rest.substr(0, space), slot_count - 1);
    const auto port = decimal(endpoint.substr(colon + 1), 65535);
    if (!slot || !port || *port == 0) return std::nullopt;
    r.slot = static_cast<std::size_t>(*slot);
    r.host = std::string(endpoint.substr(0, colon));
    r.port = static_cast<int>(*port);
    return r;
}

// Errors that say the node cannot serve now: the call is `unavailable`, like a lost connection.
bool busy_error(std::string_view error) noexcept {
    for (std::string_view code : {"CLUSTERDOWN", "TRYAGAIN", "LOADING", "MASTERDOWN", "BUSY"}) {
        if (has_code(error, code)) return true;
    }
    return false;
}

RedisReply to_reply(const redisReply& r) {
    RedisReply out;
    switch (r.type) {
    case REDIS_REPLY_INTEGER:
        out.kind = RedisReply::Kind::integer;
        out.integer = r.integer;
        break;
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
        out.kind = RedisReply::Kind::text;
        out.text = text_of(r);
        break;
    case REDIS_REPLY_NIL:
        out.kind = RedisReply::Kind::nil;
        break;
    case REDIS_REPLY_ERROR:
        out.kind = RedisReply::Kind::error;
        out.text = text_of(r);
        break;
    default:  // a Lua table: the scripts return none
        out.kind = RedisReply::Kind::error;
        out.text = "an array reply, which RedisScriptClient does not return";
        break;
    }
    return out;
}

timeval to_timeval(std::chrono::milliseconds ms) {
    timeval tv{};
    // The field types differ by platform (Windows' timeval holds longs).
    tv.tv_sec = static_cast<decltype(tv.tv_sec)>(ms.count() / 1000);
    tv.tv_usec = static_cast<decltype(tv.tv_usec)>((ms.count() % 1000) * 1000);
    return tv;
}

}  // namespace

bool is_redis_location(std::string_view location) noexcept { return location.substr(0, scheme.size()) == scheme; }

RedisLocation parse_redis_location(const std::string& location) {
    if (!is_redis_location(location)) bad_location(location, "not of the form redis://HOST:PORT[/DB]");
    const std::string_view rest = std::string_view(location).substr(scheme.size());
    if (const std::size_t at = rest.rfind('@'); at != std::string_view::npos) {
        // Shown without what precedes the '@': it may hold a password.
        bad_location(std::string(scheme) + "...@" + std::string(rest.substr(at + 1)),
                     "user names and passwords in the location are not supported");
    }
    // Shown only up to the '?' or '#': what follows may hold a password (?password=...).
    if (const std::size_t q = rest.find('?'); q != std::string_view::npos) {
        bad_location(location.substr(0, scheme.size() + q) + "?...", "query strings are not supported");
    }
    if (const std::size_t h = rest.find('#'); h != std::string_view::npos) {
        bad_location(location.substr(0, scheme.size() + h) + "#...", "fragments are not supported");
    }

    RedisLocation loc;
    loc.text = location;
    const std::size_t slash = rest.find('/');
    const std::string_view authority = rest.substr(0, slash);
    std::optional<std::string_view> port;
    if (!authority.empty() && authority.front() == '[') {
        const std::size_t close = authority.find(']');
        if (close == std::string_view::npos) bad_location(location, "the IPv6 address lacks its closing ']'");
        loc.host = std::string(authority.substr(1, close - 1));
        in6_addr ignored{};
        if (inet_pton(AF_INET6, loc.host.c_str(), &ignored) != 1) {
            bad_location(location, "'" + loc.host + "' is not an IPv6 address");
        }
        const std::string_view after = authority.substr(close + 1);
        if (!after.empty()) {
            if (after.front() != ':') bad_location(location, "unexpected text after the IPv6 address");
            port = after.substr(1);
        }
    } else {
        const std::size_t colon = authority.find(':');
        loc.host = std::string(authority.substr(0, colon));
        if (colon != std::string_view::npos) {
            port = authority.substr(colon + 1);
            if (port->find(':') != std::string_view::npos) {
                bad_location(location, "an IPv6 address must be in brackets, as in redis://[::1]:6379");
            }
        }
        if (loc.host.empty()) bad_location(location, "the host is empty");
        for (char c : loc.host) {
            if (!host_name_char(c)) bad_location(location, "the host is not a host name or an IP address");
        }
    }
    if (port) {
        const auto number = decimal(*port, 65535);
        if (!number || *number == 0) bad_location(location, "the port must be a number from 1 to 65535");
        loc.port = static_cast<int>(*number);
    }
    if (slash != std::string_view::npos) {
        const auto db = decimal(rest.substr(slash + 1), std::numeric_limits<int>::max());
        if (!db) bad_location(location, "the database must be a non-negative integer, as in redis://HOST:PORT/0");
        loc.db = static_cast<int>(*db);
    }
    return loc;
}

std::uint16_t redis_key_slot(std::string_view key) noexcept {
    // Only the hash tag counts: the text between the first '{' and the next '}', if not empty.
    if (const std::size_t open = key.find('{'); open != std::string_view::npos) {
        const std::size_t close = key.find('}', open + 1);
        if (close != std::string_view::npos && close > open + 1) key = key.substr(open + 1, close - open - 1);
    }
    return static_cast<std::uint16_t>(crc16_xmodem(key) & (slot_count - 1));
}

struct RedisScriptClient::Impl {
    struct Script {
        std::string source;
        std::string sha;
    };

    // What a connection owes, oldest first: one reply per command sent on it.
    struct Expected {
        enum class Kind { call, load, asking };
        Kind kind;
        std::size_t index;  // call: the Work item; load: the script
    };

    struct Node {
        std::string host;
        int port = 0;
        ContextPtr context;
        std::deque<Expected> expected;
        bool attempted = false;  // a connection was attempted during the current public call
        // Scripts this connection has had SCRIPT LOAD for: post() sends it first otherwise, since
        // a posted call's NOSCRIPT would only be noticed, and the call run, at the next run().
        std::set<std::size_t> loaded;
    };

    struct Posted {
        RedisScriptCall call;
        std::size_t node;
    };

    // A call being run: where it goes next and what it met so far.
    struct Work {
        const RedisScriptCall* call;
        std::size_t node;
        int redirections = 0;
        bool asking = false;  // redirected by ASK: send ASKING first
        bool reload = false;  // send SCRIPT LOAD first
        std::size_t reloaded_on = static_cast<std::size_t>(-1);  // NOSCRIPT is retried once per node
    };

    RedisLocation location;
    timeval timeout{};
    bool cluster = false;
    std::vector<Script> scripts;
    std::deque<Node> nodes;          // [0]: the location's; a deque keeps references valid
    std::vector<std::size_t> slots;  // cluster: the node of each slot (0 when uncovered)
    std::vector<Posted> posted;
    bool refresh_wanted = false;     // cluster: a node failed, the map may be stale

    Impl(RedisLocation loc, std::chrono::milliseconds t) : location(std::move(loc)) {
        const std::string where = "Redis '" + one_line(location.text) + "'";
        if (t.count() <= 0) throw ConfigError(where + ": the timeout must be positive");
        timeout = to_timeval(t);
        Node& seed = nodes.emplace_back();
        seed.host = location.host;
        seed.port = location.port;

        NoSigpipe no_sigpipe;  // hiredis writes with write(2) (socket_options.hpp)
        std::string error;
        ContextPtr c = open(seed.host, seed.port, false, error);
        if (!c) throw ConfigError("connect to " + where + " failed: " + one_line(error));
        const ReplyPtr reply = command(*c, {"CLUSTER", "SLOTS"});
        if (!reply) throw ConfigError(where + " did not answer: " + one_line(c->errstr));
        const std::string_view text = text_of(*reply);
        if (reply->type == REDIS_REPLY_ARRAY) {
            if (location.db != 0) {
                throw ConfigError(where + " is a Redis Cluster node: a cluster has database 0 only");
            }
            cluster = true;
            load_slots(0, *reply);
        } else if (reply->type == REDIS_REPLY_ERROR && text.find("cluster support disabled") != std::string_view::npos) {
            if (location.db != 0 && !select_db(*c, error)) {
                throw ConfigError(where + ": SELECT " + std::to_string(location.db) + " failed: " + one_line(error));
            }
        } else {
            throw ConfigError(where + " answered CLUSTER SLOTS unexpectedly: " + one_line(text));
        }
        seed.context = std::move(c);
    }

    bool select_db(redisContext& c, std::string& error) {
        const ReplyPtr reply = command(c, {"SELECT", std::to_string(location.db)});
        if (!reply) {
            error = c.errstr;
            return false;
        }
        if (reply->type == REDIS_REPLY_ERROR) {
            error = text_of(*reply);
            return false;
        }
        return true;
    }

    ContextPtr open(const std::string& host, int port, bool select, std::string& error) {
        ContextPtr c(redisConnectWithTimeout(host.c_str(), port, timeout));
        if (!c) throw std::bad_alloc();
        // The connect timeout does not bound reads and writes: the socket's timeouts do.
        if (c->err == 0) redisSetTimeout(c.get(), timeout);
#if defined(__APPLE__)
        if (c->err == 0) {  // no per-thread SIGPIPE blocking there (NoSigpipe): the socket's own flag
            const int on = 1;
            setsockopt(c->fd, SOL_SOCKET, SO_NOSIGPIPE, &on, sizeof on);
        }
#endif
        if (c->err != 0) {
            error = c->errstr;
            return nullptr;
        }
        // A plain server's database belongs to the connection.
        if (select && !cluster && location.db != 0 && !select_db(*c, error)) return nullptr;
        return c;
    }

    // The node's connection, opened if need be: at most one attempt per public call, so that a
    // call on an unreachable node costs one timeout.
    redisContext* connection(std::size_t index) {
        Node& n = nodes[index];
        if (n.context) return n.context.get();
        if (n.attempted) return nullptr;
        n.attempted = true;
        std::string ignored;
        n.loaded.clear();
        n.context = open(n.host, n.port, true, ignored);
        if (!n.context && cluster) refresh_wanted = true;
        return n.context.get();
    }

    // Frees a failed connection; the replies it owed stay `unavailable`. The next call reopens it.
    void drop(Node& n) {
        n.context.reset();
        n.expected.clear();
        n.loaded.clear();
        if (cluster) refresh_wanted = true;
    }

    void flush(Node& n) {
        int done = 0;
        while (done == 0) {
            if (redisBufferWrite(n.context.get(), &done) != REDIS_OK) {
                drop(n);
                return;
            }
        }
    }

    static void append(redisContext& c, Command cmd) {
        // Fails only when out of memory: formatting needs no I/O.
        if (redisAppendCommandArgv(&c, cmd.argc(), cmd.argv(), cmd.sizes()) != REDIS_OK) throw std::bad_alloc();
    }

    void append_call(redisContext& c, const RedisScriptCall& call) {
        const std::string count = std::to_string(call.keys.size());
        Command cmd{"EVALSHA", scripts[call.script].sha, count};
        for (const std::string& key : call.keys) cmd.add(key);
        for (const std::string& arg : call.args) cmd.add(arg);
        append(c, std::move(cmd));
    }

    std::size_t node_index(const std::string& host, int port) {
        for (std::size_t i = 0; i < nodes.size(); ++i) {
            if (nodes[i].host == host && nodes[i].port == port) return i;
        }
        Node& n = nodes.emplace_back();
        n.host = host;
        n.port = port;
        return nodes.size() - 1;
    }

    std::size_t route(const RedisScriptCall& call) const {
        if (!cluster || call.keys.empty()) return 0;
        return slots[redis_key_slot(call.keys.front())];
    }

    // The slot map from a CLUSTER SLOTS reply of node `from`: [[first, last, [host, port, ...],
    // replicas...], ...]. Slots it leaves out go to the seed, which redirects if it can.
    void load_slots(std::size_t from, const redisReply& reply) {
        std::vector<std::size_t> map(slot_count, 0);
        for (std::size_t i = 0; i < reply.elements; ++i) {
            const redisReply* range = reply.element[i];
            if (range == nullptr || range->type != REDIS_REPLY_ARRAY || range->elements < 3) continue;
            const redisReply& first = *range->element[0];
            const redisReply& last = *range->element[1];
            const redisReply& master = *range->element[2];
            if (first.type != REDIS_REPLY_INTEGER || last.type != REDIS_REPLY_INTEGER ||
                master.type != REDIS_REPLY_ARRAY || master.elements < 2 ||
                master.element[0]->type != REDIS_REPLY_STRING || master.element[1]->type != REDIS_REPLY_INTEGER) {
                continue;
            }
            const long long port = master.element[1]->integer;
            const std::string_view host = text_of(*master.element[0]);
            if (first.integer < 0 || last.integer < first.integer ||
                last.integer >= static_cast<long long>(slot_count) || port < 1 || port > 65535 || host == "?") {
                continue;  // "?": the cluster does not know the node's endpoint
            }
            const std::size_t node =
                node_index(host.empty() ? nodes[from].host : std::string(host), static_cast<int>(port));
            for (auto s = first.integer; s <= last.integer; ++s) map[static_cast<std::size_t>(s)] = node;
        }
        slots = std::move(map);
    }

    // Reloads the slot map from node `index`; false when it cannot answer now.
    bool refresh(std::size_t index) {
        redisContext* c = connection(index);
        if (c == nullptr || !nodes[index].expected.empty()) return false;
        const ReplyPtr reply = command(*c, {"CLUSTER", "SLOTS"});
        if (!reply) {
            drop(nodes[index]);
            return false;
        }
        if (reply->type != REDIS_REPLY_ARRAY) return false;
        load_slots(index, *reply);
        return true;
    }

    // Starts a public call: new connection attempts allowed, and after a node failed the slot
    // map is reloaded (from a connected idle node, else the seed): the slots may have moved to
    // a promoted replica that only a fresh map names.
    void begin_call() {
        for (Node& n : nodes) n.attempted = false;
        if (!cluster || !refresh_wanted) return;
        std::size_t from = 0;
        for (std::size_t i = 0; i < nodes.size(); ++i) {
            if (nodes[i].context && nodes[i].expected.empty()) {
                from = i;
                break;
            }
        }
        if (refresh(from)) refresh_wanted = false;
    }

    bool known_script(const RedisScriptCall& call) const noexcept { return call.script < scripts.size(); }

    static RedisReply unknown_script(const RedisScriptCall& call) {
        RedisReply r;
        r.kind = RedisReply::Kind::error;
        r.text = "no script " + std::to_string(call.script) + " was added to this RedisScriptClient";
        return r;
    }

    // Appends each item's command(s) to its node's connection, then writes them out.
    void send(std::vector<Work>& work, const std::vector<std::size_t>& items) {
        std::vector<std::size_t> touched;
        std::set<std::pair<std::size_t, std::size_t>> loading;  // (node, script) this round
        for (std::size_t i : items) {
            Work& w = work[i];
            redisContext* c = connection(w.node);
            if (c == nullptr) continue;  // stays unavailable
            Node& n = nodes[w.node];
            const std::size_t script = w.call->script;
            if (w.reload && loading.insert({w.node, script}).second) {
                append(*c, {"SCRIPT", "LOAD", scripts[script].source});
                n.expected.push_back({Expected::Kind::load, script});
            }
            w.reload = false;
            if (w.asking) {
                append(*c, {"ASKING"});
                n.expected.push_back({Expected::Kind::asking, 0});
            }
            append_call(*c, *w.call);
            n.expected.push_back({Expected::Kind::call, i});
            if (std::find(touched.begin(), touched.end(), w.node) == touched.end()) touched.push_back(w.node);
        }
        for (std::size_t node : touched) flush(nodes[node]);
    }

    // Reads every reply owed, node by node; calls to send again go to `again`.
    void receive(std::vector<Work>& work, std::vector<RedisReply>& replies, std::vector<std::size_t>& again,
                 std::optional<std::size_t>& moved_to) {
        std::map<std::pair<std::size_t, std::size_t>, std::string> load_errors;
        for (std::size_t i = 0; i < nodes.size(); ++i) {
            Node& n = nodes[i];
            while (!n.expected.empty()) {
                void* raw = nullptr;
                if (redisGetReply(n.context.get(), &raw) != REDIS_OK || raw == nullptr) {
                    freeReplyObject(raw);
                    drop(n);
                    break;
                }
                const ReplyPtr reply(static_cast<redisReply*>(raw));
                const Expected e = n.expected.front();
                n.expected.pop_front();
                if (e.kind == Expected::Kind::load && reply->type == REDIS_REPLY_ERROR) {
                    load_errors[{i, e.index}] = text_of(*reply);
                } else if (e.kind == Expected::Kind::call) {
                    Work& w = work[e.index];
                    if (settle(i, w, *reply, replies[e.index], moved_to, load_errors)) continue;
                    again.push_back(e.index);
                }
            }
        }
    }

    // Sets the reply of a call answered by node `node`; false when it must be sent again.
    bool settle(std::size_t node, Work& w, const redisReply& reply, RedisReply& out,
                std::optional<std::size_t>& moved_to,
                const std::map<std::pair<std::size_t, std::size_t>, std::string>& load_errors) {
        if (reply.type != REDIS_REPLY_ERROR) {
            out = to_reply(reply);
            return true;
        }
        const std::string_view error = text_of(reply);
        if (auto r = cluster ? redirection(error) : std::nullopt) {
            if (w.redirections >= max_redirections) return true;  // the cluster is in flux: unavailable
            ++w.redirections;
            w.node = node_index(r->host.empty() ? nodes[node].host : r->host, r->port);
            w.asking = r->ask;  // ASK moves this call only; MOVED moves the slot for good
            if (!r->ask) {
                slots[r->slot] = w.node;
                if (!moved_to) moved_to = w.node;
            }
            return false;
        }
        if (has_code(error, "NOSCRIPT") && w.reloaded_on != node) {
            w.reloaded_on = node;
            w.reload = true;
            return false;
        }
        if (busy_error(error)) return true;
        out.kind = RedisReply::Kind::error;
        out.text = error;
        // NOSCRIPT after SCRIPT LOAD: say why the load failed (a script that does not compile).
        if (const auto it = load_errors.find({node, w.call->script}); it != load_errors.end()) out.text = it->second;
        return true;
    }
};

RedisScriptClient::RedisScriptClient(RedisLocation location, std::chrono::milliseconds timeout)
    : impl_(std::make_unique<Impl>(std::move(location), timeout)) {}

RedisScriptClient::~RedisScriptClient() = default;

std::size_t RedisScriptClient::add_script(std::string source) {
    std::string sha = sha1_hex(source);
    impl_->scripts.push_back({std::move(source), std::move(sha)});
    return impl_->scripts.size() - 1;
}

std::vector<RedisReply> RedisScriptClient::run(const std::vector<RedisScriptCall>& calls) {
    Impl& d = *impl_;
    NoSigpipe no_sigpipe;  // hiredis writes with write(2) (socket_options.hpp)
    d.begin_call();
    const std::vector<Impl::Posted> posted = std::move(d.posted);
    d.posted.clear();

    // Posted calls first: their replies lead on their connections, before the new calls'.
    std::vector<Impl::Work> work;
    work.reserve(posted.size() + calls.size());
    for (const Impl::Posted& p : posted) work.push_back({&p.call, p.node});
    std::vector<RedisReply> replies(work.size() + calls.size());  // `unavailable` until answered
    std::vector<std::size_t> pending;
    for (const RedisScriptCall& call : calls) {
        if (d.known_script(call)) pending.push_back(work.size());
        work.push_back({&call, d.route(call)});
    }
    for (std::size_t i = 0; i < work.size(); ++i) {
        if (!d.known_script(*work[i].call)) replies[i] = Impl::unknown_script(*work[i].call);
    }

    // Rounds of send-then-receive until every call is settled; each call is redirected at most
    // max_redirections times and reloads its script at most once per node, so this ends.
    bool refreshed = false;
    do {
        d.send(work, pending);
        pending.clear();
        std::optional<std::size_t> moved_to;
        d.receive(work, replies, pending, moved_to);
        if (moved_to && !refreshed) {
            // A slot moved, so others probably did too: learn the whole new map, once per run().
            refreshed = true;
            d.refresh(*moved_to);
        }
    } while (!pending.empty());
    return replies;
}

void RedisScriptClient::post(const RedisScriptCall& call) {
    Impl& d = *impl_;
    NoSigpipe no_sigpipe;  // hiredis writes with write(2) (socket_options.hpp)
    d.begin_call();
    const std::size_t node = d.route(call);
    d.posted.push_back({call, node});
    if (!d.known_script(call)) return;
    redisContext* c = d.connection(node);
    if (c == nullptr) return;  // run() returns it as unavailable
    Impl::Node& n = d.nodes[node];
    if (n.loaded.insert(call.script).second) {
        Impl::append(*c, {"SCRIPT", "LOAD", d.scripts[call.script].source});
        n.expected.push_back({Impl::Expected::Kind::load, call.script});
    }
    d.append_call(*c, call);
    n.expected.push_back({Impl::Expected::Kind::call, d.posted.size() - 1});
    d.flush(d.nodes[node]);
}

std::size_t RedisScriptClient::posted() const noexcept { return impl_->posted.size(); }

bool RedisScriptClient::cluster() const noexcept { return impl_->cluster; }

const RedisLocation& RedisScriptClient::location() const noexcept { return impl_->location; }

}  // namespace securemqtt::detail
