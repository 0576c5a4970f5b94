// SPDX-License-Identifier: Apache-2.0
// The durable store's journal of recent confirmations: a memory-mapped file of stream states
// in front of the SQLite database (docs/envelope-v1.md §4, "Stores").
//
// Why: a confirmation must be on its way to the disk before the MQTT acknowledgement, and one
// SQLite commit per message costs two write system calls; a store into a shared file mapping is
// in the kernel's page cache the moment it is made, so it survives the process being killed,
// without a system call. The database takes the journal's records in one transaction when the
// journal is full, before any other change, and when the store is opened or closed.
#pragma once

#include <securemqtt/replay_store.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace securemqtt::detail {

/// Records, each the whole state of one stream, appended from the start of the file. A record
/// belongs to a generation: the database remembers which generation it took last, so records of
/// that one and older are ignored, and reading stops at the first record that is not whole (a
/// process killed while writing it) or not of the generation asked for (an older one's records,
/// left beyond the newer ones).
class ReplayJournal {
public:
    /// Default size of the file: ~20,000 records of a 1,024-counter window.
    static constexpr std::size_t default_capacity = std::size_t{4} << 20;

    /// Opens or creates `path` (owner read/write only) and maps it; the file is made at least
    /// `capacity` bytes, allocated on disk up front so that writing never meets a full disk.
    /// Throws std::runtime_error with the cause. Null where the platform has no such mapping
    /// (Windows): the store then commits each confirmation to the database.
    static std::unique_ptr<ReplayJournal> open(const std::string& path, std::size_t capacity);

    ~ReplayJournal();
    ReplayJournal(const ReplayJournal&) = delete;
    ReplayJournal& operator=(const ReplayJournal&) = delete;

    /// Appends `stream` as a record of `generation`. False when it does not fit in what is left.
    bool append(std::uint64_t generation, const StoredStream& stream) noexcept;
    /// The newest record of each stream among the whole records of `generation`, in file order.
    std::vector<StoredStream> newest(std::uint64_t generation) const;
    /// The next record goes to the start of the file again.
    void restart() noexcept { end_ = 0; }
    bool empty() const noexcept { return end_ == 0; }
    std::size_t capacity() const noexcept { return size_; }

private:
    ReplayJournal(int fd, unsigned char* map, std::size_t size) noexcept : fd_(fd), map_(map), size_(size) {}

    int fd_;
    unsigned char* map_;
    std::size_t size_;
    std::size_t end_ = 0;
};

}  // namespace securemqtt::detail
