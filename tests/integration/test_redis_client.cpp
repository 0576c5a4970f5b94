// SPDX-License-Identifier: Apache-2.0
// RedisScriptClient (src/redis_client.hpp) against real servers that
// run_redis_client_tests.py starts: a server, a server the tests stop, kill and restart, and a
// three-node Redis Cluster whose slots the tests migrate. The tests watch the servers through
// plain hiredis connections of their own, and count redirections in INFO errorstats.
#include "support/catch.hpp"
#include "support/redis_test_env.hpp"

#include "redis_client.hpp"
#include "redis_scripts.hpp"

#include <securemqtt/errors.hpp>

#include <hiredis/hiredis.h>

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

using securemqtt::ConfigError;
using securemqtt::detail::parse_redis_location;
using securemqtt::detail::redis_key_slot;
using securemqtt::detail::redis_script;
using securemqtt::detail::RedisReply;
using securemqtt::detail::RedisScriptCall;
using securemqtt::detail::RedisScriptClient;
using Kind = RedisReply::Kind;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;
using testutil::cluster_ports;
using testutil::control;
using testutil::env_port;

namespace {

constexpr auto timeout = 2000ms;        // for tests that do not wait on it
constexpr auto short_timeout = 400ms;  // for those that do
constexpr auto recovery_bound = 15s;   // ends a wait for a server to come back


std::string location(int port, int db = -1) {
    return "redis://127.0.0.1:" + std::to_string(port) + (db >= 0 ? "/" + std::to_string(db) : "");
}

RedisScriptClient client_for(const std::string& where, std::chrono::milliseconds t = timeout) {
    return RedisScriptClient(parse_redis_location(where), t);
}

// ---- the tests' own view of the servers, through hiredis directly

struct ContextFree {
    void operator()(redisContext* c) const noexcept { redisFree(c); }
};
struct ReplyFree {
    void operator()(redisReply* r) const noexcept { freeReplyObject(r); }
};
using ReplyPtr = std::unique_ptr<redisReply, ReplyFree>;

class Admin {
public:
    explicit Admin(int port) : port_(port), c_(redisConnectWithTimeout("127.0.0.1", port, {10, 0})) {
        REQUIRE(c_);
        INFO("admin connection to port " << port << ": " << c_->errstr);
        REQUIRE(c_->err == 0);
        redisSetTimeout(c_.get(), {10, 0});
    }
    ReplyPtr command(const std::vector<std::string>& args) {
        std::vector<const char*> argv;
        std::vector<std::size_t> sizes;
        for (const std::string& a : args) {
            argv.push_back(a.c_str());
            sizes.push_back(a.size());
        }
        ReplyPtr r(static_cast<redisReply*>(redisCommandArgv(c_.get(), static_cast<int>(argv.size()), argv.data(), sizes.data())));
        INFO("port " << port_ << ", " << args.front() << ": " << c_->errstr);
        REQUIRE(r);
        return r;
    }
    std::string text(const std::vector<std::string>& args) {
        ReplyPtr r = command(args);
        INFO(args.front() << " answered " << (r->str != nullptr ? r->str : "(no text)"));
        REQUIRE((r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS));
        return std::string(r->str, r->len);
    }
    long long integer(const std::vector<std::string>& args) {
        ReplyPtr r = command(args);
        INFO(args.front() << " answered " << (r->str != nullptr ? r->str : "(no text)"));
        REQUIRE(r->type == REDIS_REPLY_INTEGER);
        return r->integer;
    }
    void ok(const std::vector<std::string>& args) { CHECK(text(args) == "OK"); }

    // How many errors of a kind (MOVED, ASK, NOSCRIPT) the server has answered.
    long long errors(const std::string& code) {
        const std::string info = text({"INFO", "errorstats"});
        const std::string field = "errorstat_" + code + ":count=";
        const std::size_t at = info.find(field);
        return at == std::string::npos ? 0 : std::stoll(info.substr(at + field.size()));
    }

private:
    int port_;
    std::unique_ptr<redisContext, ContextFree> c_;
};

// The port of the node that serves `slot`, from CLUSTER SLOTS.
int owner(int any_node, std::uint16_t slot) {
    Admin admin(any_node);
    ReplyPtr r = admin.command({"CLUSTER", "SLOTS"});
    REQUIRE(r->type == REDIS_REPLY_ARRAY);
    for (std::size_t i = 0; i < r->elements; ++i) {
        const redisReply& range = *r->element[i];
        if (range.element[0]->integer <= slot && slot <= range.element[1]->integer) {
            return static_cast<int>(range.element[2]->element[1]->integer);
        }
    }
    FAIL("slot " << slot << " is not served");
    return 0;
}

// Starts moving a slot as `redis-cli --cluster reshard` does: IMPORTING on the target,
// MIGRATING on the source, then its keys over. The source now answers ASK for them.
void begin_migration(std::uint16_t slot, int from, int to) {
    Admin source(from);
    Admin target(to);
    const std::string s = std::to_string(slot);
    target.ok({"CLUSTER", "SETSLOT", s, "IMPORTING", source.text({"CLUSTER", "MYID"})});
    source.ok({"CLUSTER", "SETSLOT", s, "MIGRATING", target.text({"CLUSTER", "MYID"})});
    ReplyPtr keys = source.command({"CLUSTER", "GETKEYSINSLOT", s, "1000"});
    REQUIRE(keys->type == REDIS_REPLY_ARRAY);
    if (keys->elements == 0) return;
    std::vector<std::string> migrate{"MIGRATE", "127.0.0.1", std::to_string(to), "", "0", "10000", "KEYS"};
    for (std::size_t i = 0; i < keys->elements; ++i) migrate.emplace_back(keys->element[i]->str, keys->element[i]->len);
    source.ok(migrate);
}

// Ends it: every node told the slot's new owner, so no gossip is waited for.
void finish_migration(std::uint16_t slot, int to) {
    const std::string id = Admin(to).text({"CLUSTER", "MYID"});
    Admin(to).ok({"CLUSTER", "SETSLOT", std::to_string(slot), "NODE", id});
    for (int port : cluster_ports()) {
        if (port != to) Admin(port).ok({"CLUSTER", "SETSLOT", std::to_string(slot), "NODE", id});
    }
}

void flush_cluster() {
    for (int port : cluster_ports()) Admin(port).ok({"FLUSHALL"});
}

// ---- the faulty server, through run_redis_client_tests.py


// A loopback port nothing listens on (the kernel just handed it out and took it back).
int closed_port() {
    const int s = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(s >= 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    socklen_t size = sizeof a;
    REQUIRE(::getsockname(s, reinterpret_cast<sockaddr*>(&a), &size) == 0);
    ::close(s);
    return ntohs(a.sin_port);
}

// ---- scripts and calls

constexpr const char* incr_script = "return redis.call('INCR', KEYS[1])";
constexpr const char* echo_script = "return ARGV[1]";
constexpr const char* get_script = "return redis.call('GET', KEYS[1])";

RedisScriptCall call(std::size_t script, std::string key, std::vector<std::string> args = {}) {
    return RedisScriptCall{script, {std::move(key)}, std::move(args)};
}

RedisReply run_one(RedisScriptClient& client, const RedisScriptCall& c) {
    std::vector<RedisReply> replies = client.run({c});
    REQUIRE(replies.size() == 1);
    return replies.front();
}

long long run_integer(RedisScriptClient& client, const RedisScriptCall& c) {
    const RedisReply r = run_one(client, c);
    INFO("reply kind " << static_cast<int>(r.kind) << ": " << r.text);
    REQUIRE(r.kind == Kind::integer);
    return r.integer;
}

std::string tagged(const std::string& tag, const std::string& name = "k") {
    return "securemqtt:{" + tag + "}:" + name;
}

// How long `f` took, in milliseconds.
template <typename F>
long long millis(F&& f) {
    const auto start = Clock::now();
    f();
    return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
}

}  // namespace

TEST_CASE("construction: a closed port, a cluster with a database, a stopped server give ConfigError") {
    const std::string closed = location(closed_port());
    CHECK_THROWS_WITH(client_for(closed), Catch::Contains("connect to Redis '" + closed + "' failed"));

    const std::string cluster_db = location(cluster_ports()[0], 1);
    CHECK_THROWS_WITH(client_for(cluster_db), Catch::Contains("'" + cluster_db + "'") && Catch::Contains("database 0 only"));
    CHECK(client_for(location(cluster_ports()[0], 0)).cluster());
    CHECK_FALSE(client_for(location(env_port("SECUREMQTT_REDIS_SERVER"))).cluster());
}

TEST_CASE("server: EVALSHA, NOSCRIPT answered by SCRIPT LOAD, script errors as errors") {
    const int port = env_port("SECUREMQTT_REDIS_SERVER");
    Admin admin(port);
    admin.ok({"FLUSHALL"});
    admin.ok({"SCRIPT", "FLUSH"});
    RedisScriptClient client = client_for(location(port));
    const std::size_t incr = client.add_script(incr_script);
    const std::size_t echo = client.add_script(echo_script);
    const std::size_t get = client.add_script(get_script);
    const std::size_t failing = client.add_script("return redis.call('NOSUCHCOMMAND')");
    const std::size_t broken = client.add_script("return (");

    long long noscript = admin.errors("NOSCRIPT");
    CHECK(run_integer(client, call(incr, "a")) == 1);
    CHECK(admin.errors("NOSCRIPT") == noscript + 1);  // unknown at first, loaded, run
    CHECK(run_integer(client, call(incr, "a")) == 2);
    CHECK(admin.errors("NOSCRIPT") == noscript + 1);  // then run by its SHA-1 alone

    admin.ok({"SCRIPT", "FLUSH"});
    CHECK(run_integer(client, call(incr, "a")) == 3);
    CHECK(admin.errors("NOSCRIPT") == noscript + 2);

    RedisReply r = run_one(client, call(echo, "x", {"hello"}));
    CHECK(r.kind == Kind::text);
    CHECK(r.text == "hello");
    CHECK(run_one(client, call(get, "missing")).kind == Kind::nil);
    r = run_one(client, call(failing, "x"));
    CHECK(r.kind == Kind::error);
    CHECK_THAT(r.text, Catch::Contains("Unknown Redis command"));
    r = run_one(client, call(broken, "x"));
    CHECK(r.kind == Kind::error);
    CHECK_THAT(r.text, Catch::Contains("Error compiling script"));
    r = run_one(client, call(99, "x"));
    CHECK(r.kind == Kind::error);
    CHECK_THAT(r.text, Catch::Contains("no script 99"));
}

TEST_CASE("server: the embedded replay script admits a message once") {
    const int port = env_port("SECUREMQTT_REDIS_SERVER");
    Admin(port).ok({"FLUSHALL"});
    RedisScriptClient client = client_for(location(port));
    const std::size_t admit = client.add_script(std::string(redis_script("replay_admit")));
    const std::string prefix = "securemqtt:{6b}:";
    const std::string stream = "0000000000000001";
    const RedisScriptCall message{admit,
                                  {prefix + "m:" + stream, prefix + "b:" + stream, prefix + "lru", prefix + "wm", prefix + "seq"},
                                  {stream, "0000000000000007", "1000", "64", "4", "90000000", prefix}};
    CHECK(run_integer(client, message) == 0);  // admitted
    CHECK(run_integer(client, message) == 1);  // replayed
}

TEST_CASE("server: the location's database is selected") {
    const int port = env_port("SECUREMQTT_REDIS_SERVER");
    Admin admin(port);
    admin.ok({"FLUSHALL"});
    RedisScriptClient client = client_for(location(port, 5));
    CHECK(run_integer(client, call(client.add_script(incr_script), "in-db-5")) == 1);
    admin.ok({"SELECT", "5"});
    CHECK(admin.text({"GET", "in-db-5"}) == "1");
    admin.ok({"SELECT", "0"});
    CHECK(admin.integer({"EXISTS", "in-db-5"}) == 0);
}

TEST_CASE("cluster: keys of many hash tags spread over the three nodes, each call on its node") {
    const std::vector<int> ports = cluster_ports();
    flush_cluster();
    RedisScriptClient client = client_for(location(ports[1]));
    REQUIRE(client.cluster());
    const std::size_t incr = client.add_script(incr_script);
    Admin admin(ports[0]);
    std::vector<RedisScriptCall> all;
    for (int i = 0; i < 300; ++i) {
        const std::string key = tagged("key-id-" + std::to_string(i));
        INFO(key);
        CHECK(redis_key_slot(key) == admin.integer({"CLUSTER", "KEYSLOT", key}));
        CHECK(run_integer(client, call(incr, key)) == 1);
        all.push_back(call(incr, key));
    }
    long long total = 0;
    for (int port : ports) {
        const long long keys = Admin(port).integer({"DBSIZE"});
        CHECK(keys > 0);
        total += keys;
    }
    CHECK(total == 300);
    // Each key is on the node that owns its slot (a node holds no key of another's slots).
    for (int port : ports) {
        ReplyPtr keys = Admin(port).command({"KEYS", "*"});
        for (std::size_t i = 0; i < keys->elements; ++i) {
            CHECK(owner(ports[0], redis_key_slot(keys->element[i]->str)) == port);
        }
    }
    // The same calls in one run: pipelined per node.
    const std::vector<RedisReply> replies = client.run(all);
    REQUIRE(replies.size() == all.size());
    for (const RedisReply& r : replies) {
        CHECK(r.kind == Kind::integer);
        CHECK(r.integer == 2);
    }
}

TEST_CASE("pipelined run(): many calls across nodes, replies in the calls' order") {
    const std::string where = GENERATE(std::string("server"), std::string("cluster"));
    const int port = where == "server" ? env_port("SECUREMQTT_REDIS_SERVER") : cluster_ports()[2];
    RedisScriptClient client = client_for(location(port));
    const std::size_t echo = client.add_script(echo_script);
    const std::size_t incr = client.add_script(incr_script);
    const std::string run_id = std::to_string(Clock::now().time_since_epoch().count());
    std::vector<RedisScriptCall> calls;
    for (int i = 0; i < 1000; ++i) {
        const std::string key = tagged("order-" + std::to_string(i % 37) + "-" + run_id, std::to_string(i));
        calls.push_back(i % 3 == 0 ? call(incr, key) : call(echo, key, {"reply-" + std::to_string(i)}));
    }
    const std::vector<RedisReply> replies = client.run(calls);
    REQUIRE(replies.size() == calls.size());
    for (std::size_t i = 0; i < replies.size(); ++i) {
        INFO(where << " call " << i << ": " << replies[i].text);
        if (i % 3 == 0) {
            CHECK(replies[i].kind == Kind::integer);
            CHECK(replies[i].integer == 1);
        } else {
            CHECK(replies[i].kind == Kind::text);
            CHECK(replies[i].text == "reply-" + std::to_string(i));
        }
    }
}

TEST_CASE("post() then run(): the posted calls' replies first, in posting order") {
    const std::string where = GENERATE(std::string("server"), std::string("cluster"));
    const int port = where == "server" ? env_port("SECUREMQTT_REDIS_SERVER") : cluster_ports()[0];
    RedisScriptClient client = client_for(location(port));
    const std::size_t echo = client.add_script(echo_script);
    for (int i = 0; i < 6; ++i) client.post(call(echo, tagged("posted-" + std::to_string(i)), {"p" + std::to_string(i)}));
    CHECK(client.posted() == 6);
    std::vector<RedisReply> replies =
        client.run({call(echo, tagged("run-a"), {"r0"}), call(echo, tagged("run-b"), {"r1"})});
    CHECK(client.posted() == 0);
    REQUIRE(replies.size() == 8);
    for (std::size_t i = 0; i < replies.size(); ++i) {
        INFO(where << " reply " << i << ": " << replies[i].text);
        CHECK(replies[i].kind == Kind::text);
        CHECK(replies[i].text == (i < 6 ? "p" + std::to_string(i) : "r" + std::to_string(i - 6)));
    }
    client.post(call(echo, tagged("alone"), {"only"}));
    replies = client.run({});
    REQUIRE(replies.size() == 1);
    CHECK(replies[0].text == "only");
    CHECK(client.run({}).empty());
}

TEST_CASE("cluster: after a slot migration MOVED is followed, and the new map learned") {
    const std::vector<int> ports = cluster_ports();
    RedisScriptClient client = client_for(location(ports[0]));
    const std::size_t incr = client.add_script(incr_script);
    const std::string key = tagged("moving");
    const std::uint16_t slot = redis_key_slot(key);
    Admin(owner(ports[0], slot)).command({"DEL", key});
    CHECK(run_integer(client, call(incr, key)) == 1);

    const int from = owner(ports[0], slot);
    const int to = from == ports[0] ? ports[1] : ports[0];
    begin_migration(slot, from, to);
    finish_migration(slot, to);
    Admin source(from);
    const long long moved = source.errors("MOVED");
    CHECK(run_integer(client, call(incr, key)) == 2);  // with the key, on its new node
    CHECK(source.errors("MOVED") == moved + 1);
    CHECK(run_integer(client, call(incr, key)) == 3);
    CHECK(source.errors("MOVED") == moved + 1);        // straight to the new node now

    // A posted call redirected: run() sends it again where MOVED says.
    begin_migration(slot, to, from);
    finish_migration(slot, from);
    client.post(call(incr, key));
    const std::vector<RedisReply> replies = client.run({call(incr, key)});
    REQUIRE(replies.size() == 2);
    CHECK(replies[0].kind == Kind::integer);
    CHECK(replies[0].integer == 4);
    CHECK(replies[1].integer == 5);
}

TEST_CASE("cluster: ASK during a migration sends ASKING then the call to the importing node") {
    const std::vector<int> ports = cluster_ports();
    RedisScriptClient client = client_for(location(ports[2]));
    const std::size_t incr = client.add_script(incr_script);
    const std::string key = tagged("asked");
    const std::uint16_t slot = redis_key_slot(key);
    const int from = owner(ports[0], slot);
    const int to = from == ports[2] ? ports[1] : ports[2];
    Admin(from).command({"DEL", key});
    CHECK(run_integer(client, call(incr, key)) == 1);

    begin_migration(slot, from, to);  // the key moves: the source answers ASK for it
    Admin source(from);
    Admin target(to);
    target.ok({"SCRIPT", "FLUSH"});   // and the target must load the script under ASKING
    const long long asked = source.errors("ASK");
    CHECK(run_integer(client, call(incr, key)) == 2);
    CHECK(source.errors("ASK") == asked + 1);
    CHECK(run_integer(client, call(incr, key)) == 3);
    CHECK(source.errors("ASK") == asked + 2);  // ASK redirects one call, not the slot

    finish_migration(slot, to);
    CHECK(run_integer(client, call(incr, key)) == 4);
    CHECK(target.integer({"EXISTS", key}) == 1);
}

TEST_CASE("a stopped server: unavailable after about the timeout; served again once it resumes") {
    const int port = env_port("SECUREMQTT_REDIS_FAULTY");
    RedisScriptClient client = client_for(location(port, 2), short_timeout);
    const std::size_t incr = client.add_script(incr_script);
    CHECK(run_integer(client, call(incr, "stopped")) >= 1);

    control("stop");
    struct Resume {  // whatever fails below, the server runs again for the next test
        bool stopped = true;
        ~Resume() {
            if (stopped) try {
                    control("continue");
                } catch (...) {
                }
        }
    } resume;
    for (int attempt = 0; attempt < 2; ++attempt) {  // the open connection, then a new one
        RedisReply r;
        const long long ms = millis([&] { r = run_one(client, call(incr, "stopped")); });
        CHECK(r.kind == Kind::unavailable);
        CHECK(ms >= 350);
        CHECK(ms < 3000);
    }
    client.post(call(incr, "stopped"));
    std::vector<RedisReply> replies;
    const long long ms = millis([&] { replies = client.run({}); });
    REQUIRE(replies.size() == 1);
    CHECK(replies[0].kind == Kind::unavailable);
    CHECK(ms < 3000);
    CHECK_THROWS_WITH(client_for(location(port), short_timeout),
                      Catch::Contains("'" + location(port) + "' did not answer"));

    control("continue");
    resume.stopped = false;
    RedisReply r;
    const auto deadline = Clock::now() + recovery_bound;
    do {
        r = run_one(client, call(incr, "stopped"));
    } while (r.kind == Kind::unavailable && Clock::now() < deadline);
    CHECK(r.kind == Kind::integer);
}

TEST_CASE("a killed server: unavailable at once, no SIGPIPE; served again when restarted on its port") {
    const int port = env_port("SECUREMQTT_REDIS_FAULTY");
    RedisScriptClient client = client_for(location(port, 3), short_timeout);
    const std::size_t incr = client.add_script(incr_script);
    const std::size_t echo = client.add_script(echo_script);
    CHECK(run_integer(client, call(incr, "killed")) >= 1);

    control("kill");
    // Writing into the dead connection again and again: the writes fail with EPIPE, and the
    // SIGPIPE they raise must not end the process.
    const std::string big(4 << 20, 'x');
    for (int attempt = 0; attempt < 3; ++attempt) {
        RedisReply r;
        const long long ms = millis([&] { r = run_one(client, call(echo, "killed", {big})); });
        CHECK(r.kind == Kind::unavailable);
        CHECK(ms < 3000);
    }
    client.post(call(incr, "killed"));
    const std::vector<RedisReply> posted = client.run({});
    REQUIRE(posted.size() == 1);
    CHECK(posted[0].kind == Kind::unavailable);

    control("start");
    RedisReply r;
    const auto deadline = Clock::now() + recovery_bound;
    do {
        r = run_one(client, call(incr, "killed"));
    } while (r.kind == Kind::unavailable && Clock::now() < deadline);
    CHECK(r.kind == Kind::integer);
    CHECK(r.integer == 1);  // a new, empty server: the script loaded again, database 3 selected
    Admin admin(port);
    admin.ok({"SELECT", "3"});
    CHECK(admin.text({"GET", "killed"}) == "1");
}
