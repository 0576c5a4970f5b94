// SPDX-License-Identifier: Apache-2.0
// The durable store's journal of recent changes: a memory-mapped file in front of the SQLite
// database (docs/envelope-v1.md §4, "Stores").
//
// Why: a confirmation must be on its way to the disk before the MQTT acknowledgement, and one
// SQLite commit per message costs two write system calls; a store into a shared file mapping is
// in the kernel's page cache the moment it is made, so it survives the process being killed,
// without a system call. The database takes the journal's records in one synced transaction
// when the journal is full, and when the store is opened or closed; every change goes through
// the journal in between (confirmations, evictions, forgotten keys, retained topics), so no
// change reaches the database unsynced ahead of the records before it.
#pragma once

#include <securemqtt/replay_store.hpp>

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <utility>

namespace securemqtt::detail {

/// What a run of records comes to, in the order the database must apply it: the deletions
/// first (a key's streams and row, then single streams), then the raised watermarks, floor
/// and retained timestamps, then the newest state of each stream saved after its deletion.
struct JournalDigest {
    std::set<std::string> erased_keys;
    std::set<std::pair<std::string, std::uint64_t>> erased_streams;
    std::map<std::string, std::int64_t> watermarks;  // raised since the key was last erased
    std::int64_t floor_ms = INT64_MIN;
    std::map<std::string, std::int64_t> retained;
    std::map<std::pair<std::string, std::uint64_t>, StoredStream> streams;
    bool empty() const noexcept {
        return erased_keys.empty() && erased_streams.empty() && watermarks.empty() && floor_ms == INT64_MIN &&
               retained.empty() && streams.empty();
    }
};

/// Records appended from the start of the file, each checksummed and marked with the epoch
/// they belong to: a random number the database holds and replaces at every fold, so records
/// of an epoch the database already took, of another database, or left by an earlier use of
/// the file are never taken. Reading stops at the first record that is not whole (a process
/// killed while writing it) or not of the epoch asked for.
class ReplayJournal {
public:
    /// Default size of the file: ~20,000 confirmations of a 1,024-counter window.
    static constexpr std::size_t default_capacity = std::size_t{4} << 20;

    /// Opens or creates `path` (owner read/write only), makes it at least `capacity` bytes with
    /// its whole extent allocated on disk (so that writing through the mapping never meets a
    /// full disk), locks it and maps it. Throws std::runtime_error with the cause. Null where
    /// the platform has no such mapping (Windows): the store then commits each change.
    static std::unique_ptr<ReplayJournal> open(const std::string& path, std::size_t capacity);

    ~ReplayJournal();
    ReplayJournal(const ReplayJournal&) = delete;
    ReplayJournal& operator=(const ReplayJournal&) = delete;

    /// Each appends one record of `epoch`; false when it does not fit in what is left.
    bool save_stream(std::uint64_t epoch, const StoredStream& stream) noexcept;
    bool erase_stream(std::uint64_t epoch, std::string_view key_id, std::uint64_t stream_id,
                      std::int64_t watermark_ms) noexcept;
    bool erase_key(std::uint64_t epoch, std::string_view key_id, std::int64_t floor_ms) noexcept;
    bool save_retained(std::uint64_t epoch, std::string_view topic, std::int64_t timestamp_ms) noexcept;

    /// The whole records of `epoch` from the start, digested.
    JournalDigest digest(std::uint64_t epoch) const;
    /// The next record goes to the start of the file again.
    void restart() noexcept { end_ = 0; }
    bool empty() const noexcept { return end_ == 0; }

private:
    ReplayJournal(int fd, unsigned char* map, std::size_t size) noexcept : fd_(fd), map_(map), size_(size) {}
    bool append(std::uint64_t epoch, std::uint32_t type, std::string_view key, std::uint64_t a, std::uint64_t b,
                std::uint64_t c, std::uint64_t d, const std::uint64_t* words, std::size_t n) noexcept;

    int fd_;
    unsigned char* map_;
    std::size_t size_;
    std::size_t end_ = 0;
};

}  // namespace securemqtt::detail
