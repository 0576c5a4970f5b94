// SPDX-License-Identifier: Apache-2.0
// The durable embedded replay store: one SQLite file in WAL mode, with a journal of recent
// confirmations beside it (FILE-recent, replay_journal.hpp; docs/envelope-v1.md §4, "Stores").
// SQLite rather than LMDB: one file a user can copy and inspect with sqlite3(1), Debian's
// standard embedded database, crash-safe with its write-ahead log, and no map size to choose in
// advance.
#include <securemqtt/replay_store.hpp>

#include "byte_order.hpp"
#include "redis_replay_store.hpp"
#include "replay_journal.hpp"

#include <securemqtt/errors.hpp>

#include <sqlite3.h>

#include <openssl/rand.h>

#include <cstring>
#include <random>
#include <stdexcept>
#include <tuple>

#if !defined(_WIN32)
#include <unistd.h>
#endif

namespace securemqtt {

ReplayStore::~ReplayStore() = default;

ReplayStore::Answer ReplayStore::reserve(const StreamPosition&, const SharedRules&) noexcept { return {}; }
ReplayStore::Answer ReplayStore::commit(const StreamPosition&, const SharedRules&) noexcept { return {}; }

namespace {

struct DbClose {
    void operator()(sqlite3* db) const noexcept { sqlite3_close_v2(db); }
};
struct StmtFinalize {
    void operator()(sqlite3_stmt* s) const noexcept { sqlite3_finalize(s); }
};
using Db = std::unique_ptr<sqlite3, DbClose>;
using Stmt = std::unique_ptr<sqlite3_stmt, StmtFinalize>;

// Resets a reused statement whatever way the caller leaves.
struct Reset {
    sqlite3_stmt* s;
    ~Reset() {
        sqlite3_reset(s);
        sqlite3_clear_bindings(s);
    }
};

constexpr const char* schema =
    "CREATE TABLE IF NOT EXISTS securemqtt_meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;"
    "INSERT OR IGNORE INTO securemqtt_meta VALUES ('format', 1);"  // a new file is made format 3 at once
    "INSERT OR IGNORE INTO securemqtt_meta VALUES ('floor', -9223372036854775808);"
    // The epoch whose journal records the tables take next (format 2): random, new at each fold.
    "INSERT OR IGNORE INTO securemqtt_meta VALUES ('journal', 0);"
    "CREATE TABLE IF NOT EXISTS securemqtt_keys (key_id BLOB PRIMARY KEY, watermark INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS securemqtt_streams (key_id BLOB NOT NULL, stream_id INTEGER NOT NULL,"
    " highest INTEGER NOT NULL, highest_ts INTEGER NOT NULL, last_used INTEGER NOT NULL, window BLOB NOT NULL,"
    " PRIMARY KEY (key_id, stream_id)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS securemqtt_retained (topic BLOB PRIMARY KEY, highest_ts INTEGER NOT NULL) WITHOUT ROWID;";

class SqliteReplayStore final : public ReplayStore {
public:
    explicit SqliteReplayStore(std::string path) : path_(std::move(path)) {
        sqlite3* raw = nullptr;
        const int rc = sqlite3_open_v2(path_.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                                       nullptr);
        db_.reset(raw);  // closed even when opening failed
        if (rc != SQLITE_OK) fail(raw ? sqlite3_errmsg(raw) : sqlite3_errstr(rc));
        // A write-protected file opens read-only without an error: refuse it now, not at the
        // first confirmation.
        if (sqlite3_db_readonly(db_.get(), "main") == 1) fail("opened read-only (no write permission)");
        // WAL survives a process crash with synchronous=NORMAL; see docs/security.md for what a
        // power loss costs.
        // One process owns the file: locks are taken once, not per transaction (WAL then needs
        // no shared-memory index), and a second subscriber on the same file fails at start-up.
        exec("PRAGMA locking_mode=EXCLUSIVE");
        exec("PRAGMA journal_mode=WAL");
        exec("PRAGMA synchronous=NORMAL");
        check_integrity();
        exec(schema);
        std::int64_t format = 0;
        {
            Stmt s = prepare("SELECT value FROM securemqtt_meta WHERE name = 'format'");
            if (sqlite3_step(s.get()) == SQLITE_ROW) format = sqlite3_column_int64(s.get(), 0);
        }
        if (format < 1 || format > 3) fail("unknown store format " + std::to_string(format));
        if (format < 3) to_format_3();
        // A row only ever moves forward (last_used grows with every confirmation, across
        // restarts): taking a journal's records twice, or out of order, cannot roll it back.
        save_stream_ = prepare(
            "INSERT INTO securemqtt_streams VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (key_id, stream_id) DO UPDATE "
            "SET highest = ?3, highest_ts = ?4, last_used = ?5, window = ?6 WHERE last_used <= ?5");
        delete_stream_ = prepare("DELETE FROM securemqtt_streams WHERE key_id = ?1 AND stream_id = ?2");
        raise_watermark_ = prepare(
            "INSERT INTO securemqtt_keys VALUES (?1, ?2) ON CONFLICT (key_id) DO UPDATE "
            "SET watermark = max(watermark, ?2)");
        delete_key_streams_ = prepare("DELETE FROM securemqtt_streams WHERE key_id = ?1");
        delete_key_ = prepare("DELETE FROM securemqtt_keys WHERE key_id = ?1");
        raise_floor_ = prepare("UPDATE securemqtt_meta SET value = max(value, ?1) WHERE name = 'floor'");
        save_retained_ = prepare(
            "INSERT INTO securemqtt_retained VALUES (?1, ?2) ON CONFLICT (topic) DO UPDATE "
            "SET highest_ts = max(highest_ts, ?2)");
        begin_ = prepare("BEGIN IMMEDIATE");
        commit_ = prepare("COMMIT");
        rollback_ = prepare("ROLLBACK");
        set_journal_ = prepare("UPDATE securemqtt_meta SET value = ?1 WHERE name = 'journal'");
        {
            Stmt e = prepare("SELECT value FROM securemqtt_meta WHERE name = 'journal'");
            if (sqlite3_step(e.get()) == SQLITE_ROW) epoch_ = static_cast<std::uint64_t>(sqlite3_column_int64(e.get(), 0));
        }
        // Beside the database file as SQLite resolved it (a symbolic link's target), so that
        // every name of the database finds the same journal; none for an in-memory database.
        const char* resolved = sqlite3_db_filename(db_.get(), "main");
        if (resolved != nullptr && *resolved != '\0') {
            const std::string journal_path = std::string(resolved) + "-recent";
            try {
                journal_ = detail::ReplayJournal::open(journal_path, detail::ReplayJournal::default_capacity);
            } catch (const std::runtime_error& e) {
                fail("journal '" + journal_path + "': " + e.what());
            }
        }
#if !defined(_WIN32)
        owner_ = getpid();
#endif
        // Whatever the last process wrote to the journal after its last fold (it may have been
        // killed) goes into the tables now, so load() reads them alone.
        if (!fold([] { return true; })) {
            fail(sqlite3_errcode(db_.get()) == SQLITE_BUSY ? "in use by another replay guard or process"
                                                           : sqlite3_errmsg(db_.get()));
        }
    }

    ~SqliteReplayStore() override {
        // Leaves the database holding everything, the journal nothing the database lacks. Not
        // in a process forked from the owner: the owner's journal is not its to end.
        if (journal_ && owned()) fold([] { return true; });
    }

    const std::string& location() const noexcept override { return path_; }

    StoredReplayState load() override {
        StoredReplayState state;
        {
            Stmt s = prepare("SELECT value FROM securemqtt_meta WHERE name = 'floor'");
            if (sqlite3_step(s.get()) == SQLITE_ROW) state.floor_ms = sqlite3_column_int64(s.get(), 0);
        }
        {
            Stmt s = prepare("SELECT key_id, watermark FROM securemqtt_keys");
            int rc;
            while ((rc = sqlite3_step(s.get())) == SQLITE_ROW) {
                state.watermarks.emplace_back(text(s.get(), 0), sqlite3_column_int64(s.get(), 1));
            }
            if (rc != SQLITE_DONE) fail(sqlite3_errmsg(db_.get()));
        }
        {
            Stmt s = prepare(
                "SELECT key_id, stream_id, highest, highest_ts, last_used, window FROM securemqtt_streams "
                "ORDER BY last_used");
            int rc;
            while ((rc = sqlite3_step(s.get())) == SQLITE_ROW) {
                StoredStream st;
                st.key_id = text(s.get(), 0);
                st.stream_id = static_cast<std::uint64_t>(sqlite3_column_int64(s.get(), 1));
                st.highest = static_cast<std::uint64_t>(sqlite3_column_int64(s.get(), 2));
                st.highest_timestamp_ms = sqlite3_column_int64(s.get(), 3);
                st.last_used = static_cast<std::uint64_t>(sqlite3_column_int64(s.get(), 4));
                const auto* bytes = static_cast<const unsigned char*>(sqlite3_column_blob(s.get(), 5));
                const int n = sqlite3_column_bytes(s.get(), 5);
                st.window.resize(static_cast<std::size_t>(n) / 8);
                for (std::size_t i = 0; bytes != nullptr && i < st.window.size(); ++i) {
                    st.window[i] = detail::load_le<std::uint64_t>(bytes + 8 * i);
                }
                state.streams.push_back(std::move(st));
            }
            if (rc != SQLITE_DONE) fail(sqlite3_errmsg(db_.get()));
        }
        {
            Stmt s = prepare("SELECT topic, highest_ts FROM securemqtt_retained");
            int rc;
            while ((rc = sqlite3_step(s.get())) == SQLITE_ROW) {
                state.retained_topics.emplace_back(text(s.get(), 0), sqlite3_column_int64(s.get(), 1));
            }
            if (rc != SQLITE_DONE) fail(sqlite3_errmsg(db_.get()));
        }
        return state;
    }

    bool save_stream(const StoredStream& st) noexcept override {
        return change([&] { return journal_->save_stream(epoch_, st); }, [&] { return upsert(st); });
    }

    bool erase_stream(std::string_view key_id, std::uint64_t stream_id, std::int64_t watermark_ms) noexcept override {
        return change([&] { return journal_->erase_stream(epoch_, key_id, stream_id, watermark_ms); },
                      [&] { return delete_stream(key_id, stream_id) && raise_watermark(key_id, watermark_ms); });
    }

    bool erase_key(std::string_view key_id, std::int64_t floor_ms) noexcept override {
        return change([&] { return journal_->erase_key(epoch_, key_id, floor_ms); },
                      [&] { return delete_key(key_id) && raise_floor(floor_ms); });
    }

    bool save_retained(std::string_view topic, std::int64_t timestamp_ms) noexcept override {
        return change([&] { return journal_->save_retained(epoch_, topic, timestamp_ms); },
                      [&] { return raise_retained(topic, timestamp_ms); });
    }

private:
    bool upsert(const StoredStream& st) noexcept {
        sqlite3_stmt* s = save_stream_.get();
        Reset reset{s};
        sqlite3_bind_blob(s, 1, st.key_id.data(), static_cast<int>(st.key_id.size()), SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, static_cast<sqlite3_int64>(st.stream_id));
        sqlite3_bind_int64(s, 3, static_cast<sqlite3_int64>(st.highest));
        sqlite3_bind_int64(s, 4, st.highest_timestamp_ms);
        sqlite3_bind_int64(s, 5, static_cast<sqlite3_int64>(st.last_used));
        const std::size_t n = st.window.size() * 8;
        try {
            if (window_bytes_.size() < n) window_bytes_.resize(n);
        } catch (...) {
            return false;  // out of memory: a failed write, counted by the guard
        }
        for (std::size_t i = 0; i < st.window.size(); ++i) detail::store_le(window_bytes_.data() + 8 * i, st.window[i]);
        sqlite3_bind_blob(s, 6, window_bytes_.data(), static_cast<int>(n), SQLITE_STATIC);
        return sqlite3_step(s) == SQLITE_DONE;
    }

    bool delete_stream(std::string_view key_id, std::uint64_t stream_id) noexcept {
        sqlite3_stmt* d = delete_stream_.get();
        Reset r{d};
        sqlite3_bind_blob(d, 1, key_id.data(), static_cast<int>(key_id.size()), SQLITE_STATIC);
        sqlite3_bind_int64(d, 2, static_cast<sqlite3_int64>(stream_id));
        return sqlite3_step(d) == SQLITE_DONE;
    }
    bool raise_watermark(std::string_view key_id, std::int64_t watermark_ms) noexcept {
        sqlite3_stmt* w = raise_watermark_.get();
        Reset r{w};
        sqlite3_bind_blob(w, 1, key_id.data(), static_cast<int>(key_id.size()), SQLITE_STATIC);
        sqlite3_bind_int64(w, 2, watermark_ms);
        return sqlite3_step(w) == SQLITE_DONE;
    }
    bool delete_key(std::string_view key_id) noexcept {
        for (sqlite3_stmt* d : {delete_key_streams_.get(), delete_key_.get()}) {
            Reset r{d};
            sqlite3_bind_blob(d, 1, key_id.data(), static_cast<int>(key_id.size()), SQLITE_STATIC);
            if (sqlite3_step(d) != SQLITE_DONE) return false;
        }
        return true;
    }
    bool raise_floor(std::int64_t floor_ms) noexcept {
        sqlite3_stmt* f = raise_floor_.get();
        Reset r{f};
        sqlite3_bind_int64(f, 1, floor_ms);
        return sqlite3_step(f) == SQLITE_DONE;
    }
    bool raise_retained(std::string_view topic, std::int64_t timestamp_ms) noexcept {
        sqlite3_stmt* t = save_retained_.get();
        Reset r{t};
        sqlite3_bind_blob(t, 1, topic.data(), static_cast<int>(topic.size()), SQLITE_STATIC);
        sqlite3_bind_int64(t, 2, timestamp_ms);
        return sqlite3_step(t) == SQLITE_DONE;
    }

    // The journal's records of this epoch, applied in the order their digest gives.
    bool apply(const detail::JournalDigest& d) noexcept {
        for (const std::string& key : d.erased_keys) {
            if (!delete_key(key)) return false;
        }
        for (const auto& [key, stream] : d.erased_streams) {
            if (!delete_stream(key, stream)) return false;
        }
        for (const auto& [key, watermark] : d.watermarks) {
            if (!raise_watermark(key, watermark)) return false;
        }
        if (d.floor_ms != INT64_MIN && !raise_floor(d.floor_ms)) return false;
        for (const auto& [topic, timestamp] : d.retained) {
            if (!raise_retained(topic, timestamp)) return false;
        }
        for (const auto& entry : d.streams) {
            if (!upsert(entry.second)) return false;
        }
        return true;
    }

    bool owned() const noexcept {
#if defined(_WIN32)
        return true;
#else
        return getpid() == owner_;
#endif
    }

    // One change: into the journal, which the tables take first when it is full; straight into
    // the tables (its own transaction) without a journal, or for a record larger than the
    // whole journal. A process forked from the owner changes nothing (counted as a failure).
    template <typename Append, typename Direct>
    bool change(Append append, Direct direct) noexcept {
        if (!owned()) return false;
        if (!journal_) return fold(direct, false);
        if (append()) return true;
        if (!fold([] { return true; })) return false;
        return append() || fold(direct);
    }

    static std::uint64_t random_epoch() noexcept {
        std::uint64_t epoch = 0;
        if (RAND_bytes(reinterpret_cast<unsigned char*>(&epoch), sizeof epoch) != 1) {
            try {
                std::random_device device;
                epoch = (std::uint64_t{device()} << 32) ^ device();
            } catch (...) {
                epoch = static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(&epoch)) * 0x9E3779B97F4A7C15ULL;
            }
        }
        return epoch;
    }

    [[noreturn]] void fail(const std::string& cause) const {
        throw ConfigError("replay store '" + path_ + "': " + cause);
    }

    void exec(const char* sql) {
        char* message = nullptr;
        const int rc = sqlite3_exec(db_.get(), sql, nullptr, nullptr, &message);
        if (rc != SQLITE_OK) {
            const std::string cause = rc == SQLITE_BUSY ? std::string("in use by another replay guard or process")
                                                        : message ? message : sqlite3_errmsg(db_.get());
            sqlite3_free(message);
            fail(cause);
        }
    }

    // Format 1 had no journal, and 1 and 2 kept window words in the machine's byte order; 3
    // keeps them little-endian everywhere. One transaction rewrites every window (an identity
    // on little-endian machines) and sets format 3 before any journal record is written: a
    // program that knows only an older format refuses the file instead of misreading it.
    void to_format_3() {
        exec("BEGIN IMMEDIATE");
        std::vector<std::tuple<std::string, sqlite3_int64, std::vector<std::uint8_t>>> rows;
        {
            Stmt s = prepare("SELECT key_id, stream_id, window FROM securemqtt_streams");
            int rc;
            while ((rc = sqlite3_step(s.get())) == SQLITE_ROW) {
                const auto* p = static_cast<const std::uint8_t*>(sqlite3_column_blob(s.get(), 2));
                std::vector<std::uint8_t> window(p, p + (p ? sqlite3_column_bytes(s.get(), 2) / 8 * 8 : 0));
                for (std::size_t i = 0; i < window.size(); i += 8) {
                    std::uint64_t word;
                    std::memcpy(&word, window.data() + i, sizeof word);  // as the old format wrote it
                    detail::store_le(window.data() + i, word);
                }
                rows.emplace_back(text(s.get(), 0), sqlite3_column_int64(s.get(), 1), std::move(window));
            }
            if (rc != SQLITE_DONE) fail(sqlite3_errmsg(db_.get()));
        }
        Stmt u = prepare("UPDATE securemqtt_streams SET window = ?3 WHERE key_id = ?1 AND stream_id = ?2");
        for (const auto& [key_id, stream_id, window] : rows) {
            sqlite3_bind_blob(u.get(), 1, key_id.data(), static_cast<int>(key_id.size()), SQLITE_STATIC);
            sqlite3_bind_int64(u.get(), 2, stream_id);
            sqlite3_bind_blob(u.get(), 3, window.data(), static_cast<int>(window.size()), SQLITE_STATIC);
            if (!step_once(u.get())) fail(sqlite3_errmsg(db_.get()));
        }
        exec("UPDATE securemqtt_meta SET value = 3 WHERE name = 'format'");
        exec("COMMIT");
    }

    void check_integrity() {
        Stmt s = prepare("PRAGMA quick_check");
        const int rc = sqlite3_step(s.get());
        if (rc == SQLITE_BUSY) fail("in use by another replay guard or process");
        if (rc != SQLITE_ROW) fail(sqlite3_errmsg(db_.get()));
        const auto* result = reinterpret_cast<const char*>(sqlite3_column_text(s.get(), 0));
        if (result == nullptr || std::strcmp(result, "ok") != 0) {
            fail(std::string("corrupt: ") + (result ? result : "no integrity check result"));
        }
    }

    Stmt prepare(const char* sql) {
        sqlite3_stmt* raw = nullptr;
        if (sqlite3_prepare_v3(db_.get(), sql, -1, SQLITE_PREPARE_PERSISTENT, &raw, nullptr) != SQLITE_OK) {
            sqlite3_finalize(raw);
            fail(sqlite3_errmsg(db_.get()));
        }
        return Stmt(raw);
    }

    static std::string text(sqlite3_stmt* s, int column) {
        const auto* p = static_cast<const char*>(sqlite3_column_blob(s, column));
        return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(s, column))) : std::string();
    }

    static bool step_once(sqlite3_stmt* s) noexcept {
        const bool ok = sqlite3_step(s) == SQLITE_DONE;
        sqlite3_reset(s);
        return ok;
    }

    // One transaction: the journal's records of this epoch first (every change after them
    // must apply after them), then `body`, and a new epoch. Synced when the journal is in play:
    // its records are overwritten next, so the tables must hold them for good first. Once it
    // commits, the journal starts over.
    template <typename Body>
    bool fold(Body body, bool sync = true) noexcept {
        if (sync) sqlite3_exec(db_.get(), "PRAGMA synchronous=FULL", nullptr, nullptr, nullptr);
        const bool ok = fold_once(body);
        if (sync) sqlite3_exec(db_.get(), "PRAGMA synchronous=NORMAL", nullptr, nullptr, nullptr);
        return ok;
    }

    template <typename Body>
    bool fold_once(Body& body) noexcept {
        if (!step_once(begin_.get())) return false;
        bool ok = true;
        std::uint64_t next = epoch_;
        if (journal_) {
            try {
                ok = apply(journal_->digest(epoch_));
            } catch (const std::bad_alloc&) {
                ok = false;
            }
            next = random_epoch();
            sqlite3_bind_int64(set_journal_.get(), 1, static_cast<sqlite3_int64>(next));
            ok = ok && step_once(set_journal_.get());
        }
        if (ok && body() && step_once(commit_.get())) {
            if (journal_) {
                epoch_ = next;
                journal_->restart();
            }
            return true;
        }
        step_once(rollback_.get());
        return false;
    }

    std::string path_;
    Db db_;
    Stmt save_stream_, delete_stream_, raise_watermark_, delete_key_streams_, delete_key_, raise_floor_, save_retained_,
        begin_, commit_, rollback_, set_journal_;
    std::unique_ptr<detail::ReplayJournal> journal_;  // null: each change is its own commit
    std::uint64_t epoch_ = 0;                         // of the records the journal takes now
    // A stream's window as little-endian words for its row (so the file reads the same on any
    // machine); used under the same serialisation as save_stream_.
    std::vector<std::uint8_t> window_bytes_;
#if !defined(_WIN32)
    pid_t owner_ = 0;  // the process that opened the store
#endif
};

}  // namespace

std::shared_ptr<ReplayStore> open_replay_store(const std::string& location) {
    if (location.empty()) return nullptr;
    if (location.rfind("redis://", 0) == 0) return detail::open_redis_replay_store(location);
    if (location.rfind("rediss://", 0) == 0) {
        // The location is not shown: it may carry a password.
        throw ConfigError("replay store: TLS to Redis (rediss://) is not supported; use redis:// on a trusted network "
                          "or a local TLS tunnel");
    }
    return std::make_shared<SqliteReplayStore>(location);
}

}  // namespace securemqtt
