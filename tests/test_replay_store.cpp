// SPDX-License-Identifier: Apache-2.0
// The durable replay store: what a guard confirmed survives it, in a new guard on the same file.
#include "support/catch.hpp"
#include "support/replay_position.hpp"
#include "support/test_util.hpp"

#include <securemqtt/securemqtt.hpp>

#include <sqlite3.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>
#include <csignal>
#include <functional>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace securemqtt;

namespace {

constexpr std::int64_t now = testutil::replay_now;
using testutil::at;

// A private directory for one test's store files, removed with them.
struct TempDir {
    std::string path;
    TempDir() {
        std::string pattern = "/tmp/securemqtt-store-XXXXXX";
        if (mkdtemp(pattern.data()) == nullptr) FAIL("mkdtemp failed");
        path = pattern;
    }
    ~TempDir() { std::system(("rm -rf '" + path + "'").c_str()); }
    std::string file(const char* name) const { return path + "/" + name; }
};

StreamPosition retained_at(std::string_view topic, std::uint64_t stream, std::int64_t ts) {
    StreamPosition p = at(1, stream, ts);
    p.topic = topic;
    p.signed_retained = true;
    p.retained = true;
    return p;
}

ReplayGuardOptions with_store(const std::string& file) {
    ReplayGuardOptions o;
    o.store = open_replay_store(file);
    return o;
}

// Admits and confirms, as a session does for a handled message.
bool handled(ReplayGuard& g, const StreamPosition& p, std::int64_t t = now) {
    if (g.admit(p, t)) return false;
    return g.confirm(p);
}

bool admitted(ReplayGuard& g, const StreamPosition& p, std::int64_t t = now) { return !g.admit(p, t).has_value(); }

std::string config_error_of(const std::string& file) {
    try {
        ReplayGuard g(with_store(file));
    } catch (const ConfigError& e) {
        return e.what();
    }
    return "(no error)";
}

// Kills the calling process as a crash would: no destructor runs, nothing is closed.
[[noreturn]] void die() {
    raise(SIGKILL);
    _exit(99);  // not reached
}

// Runs `work` in a child process, which must end by die() while its store is still open.
void killed_after(const std::function<void()>& work) {
    const pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        work();
        _exit(98);  // work() returned: its store was closed, and the test would prove nothing
    }
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    INFO("the child exited with " << (WIFEXITED(status) ? WEXITSTATUS(status) : -1));
    REQUIRE(WIFSIGNALED(status));
    REQUIRE(WTERMSIG(status) == SIGKILL);
}

std::uint32_t be32(const std::string& bytes, std::size_t at) {
    std::uint32_t v = 0;
    for (std::size_t i = 0; i < 4; ++i) v = (v << 8) | static_cast<unsigned char>(bytes[at + i]);
    return v;
}

std::string read_file(const std::string& file) {
    std::ifstream in(file, std::ios::binary | std::ios::ate);
    std::string bytes(static_cast<std::size_t>(in.tellg()), '\0');
    in.seekg(0);
    in.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    return bytes;
}

}  // namespace

TEST_CASE("a reopened store rejects replays of confirmed messages and admits new ones", "[replay_store]") {
    TempDir dir;
    const std::string file = dir.file("replay.db");
    {
        ReplayGuard g(with_store(file));
        for (std::uint64_t c : {1u, 2u, 3u, 7u, 5u}) REQUIRE(handled(g, at(c)));
        REQUIRE(handled(g, at(1, 2, now, "other")));
    }
    ReplayGuard g(with_store(file));
    for (std::uint64_t c : {1u, 2u, 3u, 5u, 7u}) CHECK(g.admit(at(c), now) == RejectReason::replayed);
    CHECK(g.admit(at(1, 2, now, "other"), now) == RejectReason::replayed);
    CHECK(admitted(g, at(4)));  // in the window, never seen
    CHECK(admitted(g, at(8)));
    CHECK(admitted(g, at(1, 3)));  // a new stream
    CHECK(g.tracked_keys() == 2);
}

TEST_CASE("a message admitted but not confirmed is not in the store", "[replay_store]") {
    TempDir dir;
    const std::string file = dir.file("replay.db");
    {
        ReplayGuard g(with_store(file));
        REQUIRE(handled(g, at(1)));
        REQUIRE(admitted(g, at(2)));                        // reserved: its handler never returned
        CHECK(g.admit(at(2), now) == RejectReason::replayed);  // but a copy is already refused
        REQUIRE(admitted(g, at(1, 9)));                     // a whole stream only reserved
    }
    ReplayGuard g(with_store(file));
    CHECK(g.admit(at(1), now) == RejectReason::replayed);
    CHECK(admitted(g, at(2)));     // the broker's redelivery after the crash
    CHECK(admitted(g, at(1, 9)));
}

TEST_CASE("confirming writes only confirmed counters, not others reserved meanwhile", "[replay_store]") {
    TempDir dir;
    const std::string file = dir.file("replay.db");
    {
        ReplayGuard g(with_store(file));
        REQUIRE(admitted(g, at(1)));  // reserved, still in its handler on another thread
        REQUIRE(handled(g, at(2)));
        CHECK(g.confirm(at(2)));  // a second confirmation changes nothing
    }
    ReplayGuard g(with_store(file));
    CHECK(admitted(g, at(1)));
    CHECK(g.admit(at(2), now) == RejectReason::replayed);
}

TEST_CASE("evictions and the watermark they raise survive a reopen", "[replay_store]") {
    TempDir dir;
    const std::string file = dir.file("replay.db");
    ReplayGuardOptions o = with_store(file);
    o.max_streams_per_key = 2;
    {
        ReplayGuard g(o);
        REQUIRE(handled(g, at(1, 1, now - 1000)));
        REQUIRE(handled(g, at(1, 2, now - 500)));
        REQUIRE(handled(g, at(1, 3, now)));  // evicts stream 1: watermark now - 1000
        CHECK(g.evictions() == 1);
        CHECK(g.tracked_streams("k") == 2);
    }
    o.store = nullptr;  // closes the first run's file
    o.store = open_replay_store(file);
    ReplayGuard g(o);
    CHECK(g.tracked_streams("k") == 2);
    CHECK(g.admit(at(1, 1, now - 1000), now) == RejectReason::replayed);  // evicted, below the watermark
    CHECK(g.admit(at(1, 2, now - 500), now) == RejectReason::replayed);
    CHECK(g.admit(at(1, 3, now), now) == RejectReason::replayed);
    CHECK(g.admit(at(1, 4, now - 1000), now) == RejectReason::replayed);  // a new stream at the watermark
    CHECK(admitted(g, at(1, 5, now - 999)));
}

TEST_CASE("a forgotten key's floor survives a reopen", "[replay_store]") {
    TempDir dir;
    const std::string file = dir.file("replay.db");
    ReplayGuardOptions o = with_store(file);
    o.max_keys = 1;
    {
        ReplayGuard g(o);
        REQUIRE(handled(g, at(1, 1, now - 1000, "a")));
        REQUIRE(handled(g, at(1, 1, now, "b")));  // forgets "a": floor now - 1000
        CHECK(g.key_evictions() == 1);
    }
    o.store = nullptr;  // closes the first run's file
    o.store = open_replay_store(file);
    ReplayGuard g(o);
    CHECK(g.admit(at(1, 1, now - 1000, "a"), now) == RejectReason::replayed);
    CHECK(g.admit(at(1, 1, now, "b"), now) == RejectReason::replayed);
    CHECK(admitted(g, at(2, 1, now - 999, "a")));
}

TEST_CASE("a stream saved with another window size is forgotten safely at reopen", "[replay_store]") {
    TempDir dir;
    const std::string file = dir.file("replay.db");
    ReplayGuardOptions o = with_store(file);
    {
        ReplayGuard g(o);
        REQUIRE(handled(g, at(5, 1, now - 10)));
    }
    o.store = nullptr;  // closes the first run's file
    o.store = open_replay_store(file);
    o.window_size = 128;
    ReplayGuard g(o);
    CHECK(g.admit(at(5, 1, now - 10), now) == RejectReason::replayed);  // by the raised watermark
    CHECK(admitted(g, at(1, 2, now)));
}

TEST_CASE("an older retained message on a topic is rejected after a reopen", "[replay_store]") {
    TempDir dir;
    const std::string file = dir.file("replay.db");
    {
        ReplayGuard g(with_store(file));
        REQUIRE(handled(g, retained_at("door/1", 1, now - 2000)));  // unlock-door
        REQUIRE(handled(g, retained_at("door/1", 2, now - 1000)));  // lock-door
        // Within the same run too: a captured unlock-door from a stream never seen here.
        CHECK(g.admit(retained_at("door/1", 3, now - 1500), now) == RejectReason::replayed);
    }
    ReplayGuard g(with_store(file));
    CHECK(g.admit(retained_at("door/1", 4, now - 1500), now) == RejectReason::replayed);
    CHECK(admitted(g, retained_at("door/1", 5, now - 500)));   // newer state
    CHECK(admitted(g, retained_at("door/2", 6, now - 1500)));  // another topic
    CHECK(admitted(g, at(1, 7, now - 1500)));                  // not signed retained: live rules
}

TEST_CASE("a store file that cannot be used is a ConfigError naming it", "[replay_store]") {
    TempDir dir;
    SECTION("garbage") {
        const std::string file = dir.file("garbage.db");
        std::ofstream(file) << std::string(4096, 'x');
        const std::string what = config_error_of(file);
        CHECK(what.find("'" + file + "'") != std::string::npos);
        CHECK(what.find("not a database") != std::string::npos);
    }
    SECTION("a directory") {
        const std::string what = config_error_of(dir.path);
        CHECK(what.find("'" + dir.path + "'") != std::string::npos);
    }
    SECTION("a path that cannot be created") {
        const std::string file = dir.file("missing/replay.db");
        CHECK(config_error_of(file).find("'" + file + "'") != std::string::npos);
    }
    SECTION("a file that cannot be written") {
        const std::string file = dir.file("ro.db");
        { ReplayGuard g(with_store(file)); }
        chmod(file.c_str(), 0400);
        chmod(dir.path.c_str(), 0500);  // nor its journal created
        if (geteuid() != 0) {  // root writes anyway
            const std::string what = config_error_of(file);
            CHECK(what.find("'" + file + "'") != std::string::npos);
        }
        chmod(dir.path.c_str(), 0700);
    }
    SECTION("a place no one can write") {
        const std::string file = "/proc/securemqtt-replay.db";
        CHECK(config_error_of(file).find("'" + file + "'") != std::string::npos);
    }
    SECTION("a journal that cannot be opened") {
        const std::string file = dir.file("j.db");
        REQUIRE(mkdir((file + "-recent").c_str(), 0700) == 0);
        CHECK(config_error_of(file) == "replay store '" + file + "': journal '" + file + "-recent': Is a directory");
    }
    SECTION("a file another guard has open") {
        const std::string file = dir.file("busy.db");
        ReplayGuard owner(with_store(file));
        const std::string what = config_error_of(file);
        CHECK(what == "replay store '" + file + "': in use by another replay guard or process");
    }
    SECTION("a Redis location that cannot be used") {
        const auto error_of = [](const std::string& location) {
            try {
                open_replay_store(location);
            } catch (const ConfigError& e) {
                return std::string(e.what());
            }
            return std::string("(no error)");
        };
        CHECK(error_of("redis://127.0.0.1:6379/x").rfind("replay store: Redis location 'redis://127.0.0.1:6379/x': ", 0) == 0);
        CHECK(error_of("rediss://:hunter2@127.0.0.1:6379") ==
              "replay store: TLS to Redis (rediss://) is not supported; use redis:// on a trusted network or a local "
              "TLS tunnel");
    }
}

TEST_CASE("a verifier confirms through its guard's store, and without one confirm is free", "[replay_store]") {
    TempDir dir;
    const std::string file = dir.file("replay.db");
    auto keyring = std::make_shared<Keyring>();
    keyring->add_key("k", testutil::test_key(1));
    keyring->set_signing_key("k");
    VerifierOptions vo;
    vo.clock = [] { return now; };
    Signer signer(keyring, SignerOptions{vo.clock, std::nullopt, 1});
    const auto first = signer.sign("t", ByteView(std::string("one")));
    const auto second = signer.sign("t", ByteView(std::string("two")));
    {
        Verifier v(keyring, std::make_shared<ReplayGuard>(with_store(file)), vo);
        const VerifyResult r1 = v.verify("t", first);
        REQUIRE(r1.ok());
        CHECK(v.confirm(r1.message()));
        const VerifyResult r2 = v.verify("t", second);
        REQUIRE(r2.ok());  // reserved, never confirmed
    }
    Verifier v(keyring, std::make_shared<ReplayGuard>(with_store(file)), vo);
    CHECK(v.verify("t", first).reason() == RejectReason::replayed);
    CHECK(v.verify("t", second).ok());

    Verifier memory(keyring, nullptr, vo);
    const VerifyResult r = memory.verify("t", first);
    REQUIRE(r.ok());
    CHECK(memory.confirm(r.message()));
    CHECK(memory.replay_guard().store() == nullptr);
}

TEST_CASE("what was confirmed survives SIGKILL, and a record the killed process left unfinished is not taken", "[replay_store]") {
    TempDir dir;
    const std::string file = dir.file("replay.db");
    const auto confirm_100 = [&] {
        ReplayGuard g(with_store(file));
        for (std::uint64_t c = 1; c <= 100; ++c) {
            if (!handled(g, at(c))) _exit(3);
        }
        die();
    };
    SECTION("whole records") {
        killed_after(confirm_100);
        ReplayGuard g(with_store(file));
        for (std::uint64_t c = 1; c <= 100; ++c) CHECK(g.admit(at(c), now) == RejectReason::replayed);
        CHECK(admitted(g, at(101)));
    }
    SECTION("the last record torn") {
        killed_after(confirm_100);
        // Every record of this stream has the same length; damage the 100th as a kill in the
        // middle of writing it would have left it.
        const std::string journal = read_file(file + "-recent");
        const std::size_t length = be32(journal, 0);
        REQUIRE(length >= 64);
        REQUIRE(journal.size() >= 100 * length);
        std::fstream out(file + "-recent", std::ios::in | std::ios::out | std::ios::binary);
        out.seekp(static_cast<std::streamoff>(99 * length + length - 12));
        out.put(static_cast<char>(journal[99 * length + length - 12] ^ 0x40));
        out.close();
        ReplayGuard g(with_store(file));
        for (std::uint64_t c = 1; c <= 99; ++c) CHECK(g.admit(at(c), now) == RejectReason::replayed);
        CHECK(admitted(g, at(100)));  // as the broker's redelivery of an unacknowledged message
    }
}

TEST_CASE("records of an earlier run that outlive a newer run's are not taken again", "[replay_store]") {
    TempDir dir;
    const std::string file = dir.file("replay.db");
    // Run 1 leaves records for counters 1..5; run 2 takes them, then writes counter 6's record
    // over the first of them and is killed too: records 2..5 of run 1 are still in the file,
    // behind it, and would roll the stream back to counter 5 if they were taken again.
    killed_after([&] {
        ReplayGuard g(with_store(file));
        for (std::uint64_t c = 1; c <= 5; ++c) {
            if (!handled(g, at(c))) _exit(3);
        }
        die();
    });
    killed_after([&] {
        ReplayGuard g(with_store(file));
        if (!handled(g, at(6))) _exit(3);
        die();
    });
    ReplayGuard g(with_store(file));
    for (std::uint64_t c = 1; c <= 6; ++c) CHECK(g.admit(at(c), now) == RejectReason::replayed);
    CHECK(admitted(g, at(7)));
}

TEST_CASE("more confirmations than the journal holds: the database takes them as it fills", "[replay_store]") {
    TempDir dir;
    const std::string file = dir.file("replay.db");
    constexpr std::uint64_t n = 30000;  // ~20,000 records of this size fit the 4 MiB journal
    killed_after([&] {
        ReplayGuard g(with_store(file));
        for (std::uint64_t c = 1; c <= n; ++c) {
            if (!handled(g, at(c))) _exit(3);
        }
        if (g.store_failures() != 0) _exit(4);
        die();
    });
    struct stat st {};
    REQUIRE(stat((file + "-recent").c_str(), &st) == 0);
    CHECK(st.st_size == 4 << 20);  // reused, not grown
    ReplayGuard g(with_store(file));
    for (std::uint64_t c = n - 1023; c <= n; ++c) REQUIRE(g.admit(at(c), now) == RejectReason::replayed);
    CHECK(g.admit(at(1), now) == RejectReason::replayed);  // behind the window
    CHECK(admitted(g, at(n + 1)));
}

TEST_CASE("after a clean close the database alone holds everything", "[replay_store]") {
    TempDir dir;
    const std::string file = dir.file("replay.db");
    {
        ReplayGuard g(with_store(file));
        for (std::uint64_t c = 1; c <= 10; ++c) REQUIRE(handled(g, at(c)));
    }
    REQUIRE(std::remove((file + "-recent").c_str()) == 0);
    ReplayGuard g(with_store(file));
    for (std::uint64_t c = 1; c <= 10; ++c) CHECK(g.admit(at(c), now) == RejectReason::replayed);
}

TEST_CASE("the window is stored little-endian on every machine, so a database file moves between them",
          "[replay_store]") {
    TempDir dir;
    const std::string file = dir.file("replay.db");
    {
        ReplayGuard g(with_store(file));  // window 1024: 16 words; counter c is bit c % 64 of word c / 64
        for (std::uint64_t c : {1u, 2u, 3u, 72u}) REQUIRE(handled(g, at(c)));
    }
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open_v2(file.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
    sqlite3_stmt* s = nullptr;
    REQUIRE(sqlite3_prepare_v2(db, "SELECT window FROM securemqtt_streams", -1, &s, nullptr) == SQLITE_OK);
    REQUIRE(sqlite3_step(s) == SQLITE_ROW);
    const auto* p = static_cast<const unsigned char*>(sqlite3_column_blob(s, 0));
    const std::string blob(reinterpret_cast<const char*>(p), static_cast<std::size_t>(sqlite3_column_bytes(s, 0)));
    sqlite3_finalize(s);
    sqlite3_close(db);
    REQUIRE(blob.size() == 16 * 8);
    std::string expected(blob.size(), '\0');
    expected[0] = '\x0e';  // word 0 = 0b1110: counters 1, 2, 3, lowest byte first
    expected[9] = '\x01';  // word 1 = 0x100: counter 72
    CHECK(blob == expected);
}

TEST_CASE("a format-2 store (window words in the machine's byte order) is converted at opening",
          "[replay_store]") {
    TempDir dir;
    const std::string file = dir.file("replay.db");
    {
        ReplayGuard g(with_store(file));
        for (std::uint64_t c : {1u, 2u, 3u, 72u}) REQUIRE(handled(g, at(c)));
    }
    // Rewrite it as an older version wrote it on this machine: format 2, each window word as
    // the machine holds it in memory (on a big-endian machine, not what format 3 holds).
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(file.c_str(), &db) == SQLITE_OK);
    const auto sql = [&](const char* text) { REQUIRE(sqlite3_exec(db, text, nullptr, nullptr, nullptr) == SQLITE_OK); };
    sqlite3_stmt* s = nullptr;
    REQUIRE(sqlite3_prepare_v2(db, "SELECT window FROM securemqtt_streams", -1, &s, nullptr) == SQLITE_OK);
    REQUIRE(sqlite3_step(s) == SQLITE_ROW);
    const auto* le = static_cast<const unsigned char*>(sqlite3_column_blob(s, 0));
    std::vector<unsigned char> native(le, le + sqlite3_column_bytes(s, 0));
    sqlite3_finalize(s);
    for (std::size_t i = 0; i < native.size(); i += 8) {
        std::uint64_t word = 0;
        for (std::size_t b = 8; b-- > 0;) word = (word << 8) | native[i + b];
        std::memcpy(native.data() + i, &word, sizeof word);
    }
    REQUIRE(sqlite3_prepare_v2(db, "UPDATE securemqtt_streams SET window = ?1", -1, &s, nullptr) == SQLITE_OK);
    sqlite3_bind_blob(s, 1, native.data(), static_cast<int>(native.size()), SQLITE_STATIC);
    REQUIRE(sqlite3_step(s) == SQLITE_DONE);
    sqlite3_finalize(s);
    sql("UPDATE securemqtt_meta SET value = 2 WHERE name = 'format'");
    sqlite3_close(db);

    {
        ReplayGuard g(with_store(file));
        for (std::uint64_t c : {1u, 2u, 3u, 72u}) CHECK(g.admit(at(c), now) == RejectReason::replayed);
        CHECK(admitted(g, at(4)));
        CHECK(admitted(g, at(71)));
    }
    REQUIRE(sqlite3_open_v2(file.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
    REQUIRE(sqlite3_prepare_v2(db, "SELECT value FROM securemqtt_meta WHERE name = 'format'", -1, &s, nullptr) ==
            SQLITE_OK);
    REQUIRE(sqlite3_step(s) == SQLITE_ROW);
    CHECK(sqlite3_column_int64(s, 0) == 3);
    sqlite3_finalize(s);
    sqlite3_close(db);
}

TEST_CASE("a store of a format newer than this library is refused", "[replay_store]") {
    TempDir dir;
    const std::string file = dir.file("replay.db");
    { ReplayGuard g(with_store(file)); }
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(file.c_str(), &db) == SQLITE_OK);
    REQUIRE(sqlite3_exec(db, "UPDATE securemqtt_meta SET value = 4 WHERE name = 'format'", nullptr, nullptr, nullptr) ==
            SQLITE_OK);
    sqlite3_close(db);
    CHECK_THAT(config_error_of(file), Catch::Contains("unknown store format 4"));
}

namespace {
void copy_file(const std::string& from, const std::string& to) {
    std::ifstream in(from, std::ios::binary);
    std::ofstream out(to, std::ios::binary | std::ios::trunc);
    out << in.rdbuf();
}
}  // namespace

TEST_CASE("a journal left behind by a deleted database is not taken into a new one", "[replay_store]") {
    TempDir dir;
    const std::string file = dir.file("replay.db");
    {
        ReplayGuard g(with_store(file));
        for (std::uint64_t c = 1; c <= 3; ++c) REQUIRE(handled(g, at(c)));
    }
    std::remove(file.c_str());
    std::remove((file + "-wal").c_str());
    {
        ReplayGuard g(with_store(file));
        REQUIRE(handled(g, at(10)));  // the old records behind this one must not roll it back
    }
    ReplayGuard g(with_store(file));
    CHECK(g.admit(at(10), now) == RejectReason::replayed);
}

TEST_CASE("a power loss losing an unsynced commit cannot roll back a later confirmation", "[replay_store]") {
    TempDir dir;
    const std::string file = dir.file("replay.db");
    const std::string snap = dir.file("snap.db");
    killed_after([&] {
        ReplayGuard g(with_store(file));
        for (std::uint64_t c = 1; c <= 3; ++c) {
            if (!handled(g, at(c))) _exit(3);
        }
        copy_file(file, snap);  // the database as the disk holds it
        copy_file(file + "-wal", snap + "-wal");
        if (!handled(g, retained_at("t", 2, now))) _exit(4);  // changes after the snapshot
        for (std::uint64_t c = 4; c <= 6; ++c) {
            if (!handled(g, at(c))) _exit(5);
        }
        die();  // "power loss": the journal written back, nothing newer of the database
    });
    copy_file(snap, file);
    copy_file(snap + "-wal", file + "-wal");
    {
        ReplayGuard g(with_store(file));
        REQUIRE(handled(g, at(10)));  // confirmed after the power loss
    }
    ReplayGuard g(with_store(file));
    CHECK(g.admit(at(10), now) == RejectReason::replayed);
}

TEST_CASE("the journal lies beside the database as resolved: a symbolic link's name finds the same one", "[replay_store]") {
    TempDir dir;
    const std::string file = dir.file("replay.db");
    const std::string link = dir.file("link.db");
    REQUIRE(symlink(file.c_str(), link.c_str()) == 0);
    killed_after([&] {
        ReplayGuard g(with_store(link));
        if (!handled(g, at(1))) _exit(3);
        die();
    });
    ReplayGuard g(with_store(file));
    CHECK(g.admit(at(1), now) == RejectReason::replayed);
}

TEST_CASE("evictions, forgotten keys and retained topics go through the journal and survive SIGKILL", "[replay_store]") {
    const auto retained_by_c = [](std::uint64_t stream, std::int64_t ts = now - 100) {
        StreamPosition p = retained_at("door/1", stream, ts);
        p.key_id = "c";
        return p;
    };
    TempDir dir;
    const std::string file = dir.file("replay.db");
    ReplayGuardOptions o;  // the store opened in the process that uses it
    o.max_streams_per_key = 2;
    o.max_keys = 2;
    killed_after([&] {
        o.store = open_replay_store(file);
        ReplayGuard g(o);
        if (!handled(g, at(1, 1, now - 3000))) _exit(10);
        if (!handled(g, at(1, 2, now - 2500))) _exit(11);
        if (!handled(g, at(1, 3, now - 2000))) _exit(12);  // evicts stream 1: watermark now - 3000
        if (!handled(g, at(1, 1, now - 1500, "b"))) _exit(13);
        if (!handled(g, at(1, 1, now - 1000, "c"))) _exit(14);  // forgets key "k": floor now - 2000
        if (!handled(g, retained_by_c(8))) _exit(5);
        if (g.store_failures() != 0) _exit(4);
        die();
    });
    o.store = open_replay_store(file);
    ReplayGuard g(o);
    CHECK(g.admit(at(1, 1, now - 3000), now) == RejectReason::replayed);
    CHECK(g.admit(at(1, 3, now - 2000), now) == RejectReason::replayed);
    CHECK(g.admit(at(1, 4, now - 2000), now) == RejectReason::replayed);  // a new stream at the floor
    CHECK(g.admit(at(1, 1, now - 1500, "b"), now) == RejectReason::replayed);
    CHECK(g.admit(retained_by_c(9, now - 200), now) == RejectReason::replayed);  // older retained state
    CHECK(admitted(g, at(1, 9, now)));
}

TEST_CASE("a sparse journal file is allocated in full before it is written through the mapping", "[replay_store]") {
    TempDir dir;
    const std::string file = dir.file("replay.db");
    const std::string journal = file + "-recent";
    { std::ofstream(journal).flush(); }
    REQUIRE(truncate(journal.c_str(), 4 << 20) == 0);  // as a sparse copy would leave it
    ReplayGuard g(with_store(file));
    struct stat st {};
    REQUIRE(stat(journal.c_str(), &st) == 0);
    CHECK(static_cast<long long>(st.st_blocks) * 512 >= 4LL << 20);
}
