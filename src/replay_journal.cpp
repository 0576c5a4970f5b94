// SPDX-License-Identifier: Apache-2.0
#include "replay_journal.hpp"

#include "byte_order.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <vector>

#if !defined(_WIN32)
#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#endif

namespace securemqtt::detail {

namespace {

// Record layout, all integers big-endian, every record a multiple of 8 bytes:
//   0 length u32 (the whole record, checksum included)   4 magic u32 "SMRJ"
//   8 epoch u64   16 type u32   20 key id (or topic) length u32
//  24 a u64   32 b u64   40 c u64   48 d u64   56 window words u32   60 zero u32
//  64 key id, zero-padded to a multiple of 8; then the window words, u64 each
//  end - 8: checksum u64 over everything before it
// Types and their fields: stream (a stream id, b highest, c highest timestamp, d last used,
// the window), erase_stream (a stream id, c watermark), erase_key (c floor), retained (the key
// field holds the topic, c its timestamp).
constexpr std::uint32_t magic = 0x534D524A;
enum : std::uint32_t { stream_record = 1, erase_stream_record = 2, erase_key_record = 3, retained_record = 4 };
constexpr std::size_t header_bytes = 64;
constexpr std::size_t checksum_bytes = 8;

constexpr std::size_t padded(std::size_t n) { return (n + 7) / 8 * 8; }

// Detects a record the writer did not finish (killed in the middle of it); not a MAC: the file
// is as trusted as the database beside it.
std::uint64_t checksum(const unsigned char* p, std::size_t n) noexcept {
    std::uint64_t h = 0xcbf29ce484222325ULL;
    for (std::size_t i = 0; i < n; i += 8) {
        h ^= load_be<std::uint64_t>(p + i);
        h *= 0x100000001b3ULL;
        h ^= h >> 31;
    }
    return h;
}

// The length of the whole record of `epoch` at `p` (with `room` bytes left), else 0.
std::size_t whole_record(const unsigned char* p, std::size_t room, std::uint64_t epoch) noexcept {
    if (room < header_bytes + checksum_bytes) return 0;
    const std::size_t length = load_be<std::uint32_t>(p);
    if (length % 8 != 0 || length < header_bytes + checksum_bytes || length > room) return 0;
    if (load_be<std::uint32_t>(p + 4) != magic || load_be<std::uint64_t>(p + 8) != epoch) return 0;
    const std::uint32_t type = load_be<std::uint32_t>(p + 16);
    if (type < stream_record || type > retained_record) return 0;
    const std::size_t key = load_be<std::uint32_t>(p + 20);
    const std::size_t words = load_be<std::uint32_t>(p + 56);
    if (key > length || words > length / 8 || header_bytes + padded(key) + words * 8 + checksum_bytes != length) return 0;
    if (checksum(p, length - checksum_bytes) != load_be<std::uint64_t>(p + length - checksum_bytes)) return 0;
    return length;
}

std::string_view key_of(const unsigned char* p) noexcept {
    return {reinterpret_cast<const char*>(p + header_bytes), load_be<std::uint32_t>(p + 20)};
}

std::uint64_t field(const unsigned char* p, std::size_t at) noexcept { return load_be<std::uint64_t>(p + at); }

StoredStream decode_stream(const unsigned char* p) {
    StoredStream s;
    s.key_id = std::string(key_of(p));
    s.stream_id = field(p, 24);
    s.highest = field(p, 32);
    s.highest_timestamp_ms = static_cast<std::int64_t>(field(p, 40));
    s.last_used = field(p, 48);
    const unsigned char* w = p + header_bytes + padded(s.key_id.size());
    s.window.resize(load_be<std::uint32_t>(p + 56));
    for (std::size_t i = 0; i < s.window.size(); ++i) s.window[i] = load_be<std::uint64_t>(w + 8 * i);
    return s;
}

}  // namespace

bool ReplayJournal::append(std::uint64_t epoch, std::uint32_t type, std::string_view key, std::uint64_t a,
                           std::uint64_t b, std::uint64_t c, std::uint64_t d, const std::uint64_t* words,
                           std::size_t n) noexcept {
    if (key.size() > size_ || n > size_ / 8) return false;
    const std::size_t length = header_bytes + padded(key.size()) + n * 8 + checksum_bytes;
    if (length > size_ - end_ || length > UINT32_MAX) return false;
    unsigned char* p = map_ + end_;
    store_be(p, static_cast<std::uint32_t>(length));
    store_be(p + 4, magic);
    store_be(p + 8, epoch);
    store_be(p + 16, type);
    store_be(p + 20, static_cast<std::uint32_t>(key.size()));
    store_be(p + 24, a);
    store_be(p + 32, b);
    store_be(p + 40, c);
    store_be(p + 48, d);
    store_be(p + 56, static_cast<std::uint32_t>(n));
    store_be(p + 60, std::uint32_t{0});
    unsigned char* k = p + header_bytes;
    if (!key.empty()) std::memcpy(k, key.data(), key.size());
    std::memset(k + key.size(), 0, padded(key.size()) - key.size());
    unsigned char* w = k + padded(key.size());
    for (std::size_t i = 0; i < n; ++i) store_be(w + 8 * i, words[i]);
    // The checksum last (and not moved ahead of the rest by the compiler): a record is whole
    // only once everything before it is written.
    std::atomic_signal_fence(std::memory_order_release);
    store_be(p + length - checksum_bytes, checksum(p, length - checksum_bytes));
    end_ += length;
    return true;
}

bool ReplayJournal::save_stream(std::uint64_t epoch, const StoredStream& s) noexcept {
    return append(epoch, stream_record, s.key_id, s.stream_id, s.highest, static_cast<std::uint64_t>(s.highest_timestamp_ms),
                  s.last_used, s.window.data(), s.window.size());
}

bool ReplayJournal::erase_stream(std::uint64_t epoch, std::string_view key_id, std::uint64_t stream_id,
                                 std::int64_t watermark_ms) noexcept {
    return append(epoch, erase_stream_record, key_id, stream_id, 0, static_cast<std::uint64_t>(watermark_ms), 0, nullptr, 0);
}

bool ReplayJournal::erase_key(std::uint64_t epoch, std::string_view key_id, std::int64_t floor_ms) noexcept {
    return append(epoch, erase_key_record, key_id, 0, 0, static_cast<std::uint64_t>(floor_ms), 0, nullptr, 0);
}

bool ReplayJournal::save_retained(std::uint64_t epoch, std::string_view topic, std::int64_t timestamp_ms) noexcept {
    return append(epoch, retained_record, topic, 0, 0, static_cast<std::uint64_t>(timestamp_ms), 0, nullptr, 0);
}

JournalDigest ReplayJournal::digest(std::uint64_t epoch) const {
    JournalDigest d;
    std::map<std::pair<std::string, std::uint64_t>, std::size_t> newest;  // stream -> offset of its last state
    std::size_t at = 0;
    while (const std::size_t length = whole_record(map_ + at, size_ - at, epoch)) {
        const unsigned char* p = map_ + at;
        std::string key(key_of(p));
        const auto c = static_cast<std::int64_t>(field(p, 40));
        switch (load_be<std::uint32_t>(p + 16)) {
            case stream_record:
                newest[{std::move(key), field(p, 24)}] = at;
                break;
            case erase_stream_record: {
                auto id = std::make_pair(key, field(p, 24));
                newest.erase(id);
                d.erased_streams.insert(std::move(id));
                auto& w = d.watermarks.try_emplace(std::move(key), INT64_MIN).first->second;
                w = std::max(w, c);
                break;
            }
            case erase_key_record: {
                // Everything of the key before this is gone with it.
                for (auto it = newest.lower_bound({key, 0}); it != newest.end() && it->first.first == key;) {
                    it = newest.erase(it);
                }
                for (auto it = d.erased_streams.lower_bound({key, 0});
                     it != d.erased_streams.end() && it->first == key;) {
                    it = d.erased_streams.erase(it);
                }
                d.watermarks.erase(key);
                d.erased_keys.insert(std::move(key));
                d.floor_ms = std::max(d.floor_ms, c);
                break;
            }
            case retained_record: {
                auto& r = d.retained.try_emplace(std::move(key), INT64_MIN).first->second;
                r = std::max(r, c);
                break;
            }
        }
        at += length;
    }
    for (const auto& [id, offset] : newest) d.streams.emplace(id, decode_stream(map_ + offset));
    return d;
}

#if defined(_WIN32)

std::unique_ptr<ReplayJournal> ReplayJournal::open(const std::string&, std::size_t) { return nullptr; }
ReplayJournal::~ReplayJournal() = default;

#else

namespace {

// Allocates [0, size) on disk, holes included (a sparse copy of the file would otherwise
// fault with SIGBUS on a full disk when written through the mapping).
int reserve(int fd, std::size_t size) {
#if defined(__APPLE__)
    // No posix_fallocate on macOS: F_PREALLOCATE reserves, ftruncate sets the length.
    fstore_t store{F_ALLOCATEALL, F_PEOFPOSMODE, 0, static_cast<off_t>(size), 0};
    if (fcntl(fd, F_PREALLOCATE, &store) == -1) return errno;
    return ftruncate(fd, static_cast<off_t>(size)) == 0 ? 0 : errno;
#else
    const int rc = posix_fallocate(fd, 0, static_cast<off_t>(size));
    if (rc != EOPNOTSUPP && rc != EINVAL) return rc;
    // A file system without fallocate (some C libraries do not emulate it): write it out.
    std::vector<unsigned char> zeros(std::size_t{1} << 16);
    struct stat st {};
    if (fstat(fd, &st) != 0) return errno;
    // Blocks already written keep their bytes: only the length beyond the file is zeroed, and
    // the rest read and written back so that every block is allocated.
    for (std::size_t at = 0; at < size; at += zeros.size()) {
        const std::size_t n = std::min(zeros.size(), size - at);
        std::fill(zeros.begin(), zeros.end(), 0);
        if (at < static_cast<std::size_t>(st.st_size) && pread(fd, zeros.data(), n, static_cast<off_t>(at)) < 0) return errno;
        if (pwrite(fd, zeros.data(), n, static_cast<off_t>(at)) != static_cast<ssize_t>(n)) return errno ? errno : EIO;
    }
    return 0;
#endif
}

}  // namespace

std::unique_ptr<ReplayJournal> ReplayJournal::open(const std::string& path, std::size_t capacity) {
    const auto fail = [](const std::string& cause) { throw std::runtime_error(cause); };
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) fail(std::strerror(errno));
    struct Closer {
        int fd;
        bool keep = false;
        ~Closer() {
            if (!keep) ::close(fd);
        }
    } closer{fd};
    // The database's exclusive lock already keeps a second store off; this keeps anything that
    // opens the journal alone (a copy of the database under another name) off too.
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        fail(errno == EWOULDBLOCK ? "in use by another replay guard or process" : std::strerror(errno));
    }
    struct stat st {};
    if (fstat(fd, &st) != 0) fail(std::strerror(errno));
    if (!S_ISREG(st.st_mode)) fail("not a regular file");
    const std::size_t size = std::max(static_cast<std::size_t>(st.st_size), capacity);
    if (const int rc = reserve(fd, size); rc != 0) fail(std::strerror(rc));
    void* map = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) fail(std::strerror(errno));
    std::unique_ptr<ReplayJournal> journal;
    try {
        journal.reset(new ReplayJournal(fd, static_cast<unsigned char*>(map), size));
    } catch (...) {
        munmap(map, size);
        throw;
    }
    closer.keep = true;
    return journal;
}

ReplayJournal::~ReplayJournal() {
    munmap(map_, size_);
    ::close(fd_);
}

#endif

}  // namespace securemqtt::detail
