// SPDX-License-Identifier: Apache-2.0
#include "replay_journal.hpp"

#include "byte_order.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string_view>
#include <unordered_map>

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
//   0 length   u32  the whole record's size, checksum included
//   4 magic    u32  "SMRJ"
//   8 generation u64
//  16 stream id, 24 highest, 32 highest timestamp (signed), 40 last used: u64 each
//  48 key id length u32, 52 window words u32
//  56 key id, zero-padded to a multiple of 8; then the window words, u64 each
//  end - 8: checksum u64 over everything before it
constexpr std::uint32_t magic = 0x534D524A;
constexpr std::size_t header_bytes = 56;
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

// The length of the whole record of `generation` at `p` (with `room` bytes left), else 0.
std::size_t whole_record(const unsigned char* p, std::size_t room, std::uint64_t generation) noexcept {
    if (room < header_bytes + checksum_bytes) return 0;
    const std::size_t length = load_be<std::uint32_t>(p);
    if (length % 8 != 0 || length < header_bytes + checksum_bytes || length > room) return 0;
    if (load_be<std::uint32_t>(p + 4) != magic || load_be<std::uint64_t>(p + 8) != generation) return 0;
    const std::size_t key = load_be<std::uint32_t>(p + 48);
    const std::size_t words = load_be<std::uint32_t>(p + 52);
    if (key > length || words > length / 8 || header_bytes + padded(key) + words * 8 + checksum_bytes != length) return 0;
    if (checksum(p, length - checksum_bytes) != load_be<std::uint64_t>(p + length - checksum_bytes)) return 0;
    return length;
}

std::string_view key_of(const unsigned char* p) noexcept {
    return {reinterpret_cast<const char*>(p + header_bytes), load_be<std::uint32_t>(p + 48)};
}

StoredStream decode(const unsigned char* p) {
    StoredStream s;
    s.stream_id = load_be<std::uint64_t>(p + 16);
    s.highest = load_be<std::uint64_t>(p + 24);
    s.highest_timestamp_ms = static_cast<std::int64_t>(load_be<std::uint64_t>(p + 32));
    s.last_used = load_be<std::uint64_t>(p + 40);
    s.key_id = std::string(key_of(p));
    const unsigned char* w = p + header_bytes + padded(s.key_id.size());
    s.window.resize(load_be<std::uint32_t>(p + 52));
    for (std::size_t i = 0; i < s.window.size(); ++i) s.window[i] = load_be<std::uint64_t>(w + 8 * i);
    return s;
}

}  // namespace

bool ReplayJournal::append(std::uint64_t generation, const StoredStream& s) noexcept {
    const std::size_t length = header_bytes + padded(s.key_id.size()) + s.window.size() * 8 + checksum_bytes;
    if (length > size_ - end_ || length > UINT32_MAX) return false;
    unsigned char* p = map_ + end_;
    store_be(p, static_cast<std::uint32_t>(length));
    store_be(p + 4, magic);
    store_be(p + 8, generation);
    store_be(p + 16, s.stream_id);
    store_be(p + 24, s.highest);
    store_be(p + 32, static_cast<std::uint64_t>(s.highest_timestamp_ms));
    store_be(p + 40, s.last_used);
    store_be(p + 48, static_cast<std::uint32_t>(s.key_id.size()));
    store_be(p + 52, static_cast<std::uint32_t>(s.window.size()));
    unsigned char* k = p + header_bytes;
    std::memcpy(k, s.key_id.data(), s.key_id.size());
    std::memset(k + s.key_id.size(), 0, padded(s.key_id.size()) - s.key_id.size());
    unsigned char* w = k + padded(s.key_id.size());
    for (std::size_t i = 0; i < s.window.size(); ++i) store_be(w + 8 * i, s.window[i]);
    // The checksum last: a record is whole only once everything before it is written.
    store_be(p + length - checksum_bytes, checksum(p, length - checksum_bytes));
    end_ += length;
    return true;
}

std::vector<StoredStream> ReplayJournal::newest(std::uint64_t generation) const {
    std::unordered_map<std::string, std::size_t> latest;  // key id + stream id -> offset
    std::size_t at = 0;
    while (const std::size_t length = whole_record(map_ + at, size_ - at, generation)) {
        std::string id(key_of(map_ + at));
        id.append(reinterpret_cast<const char*>(map_ + at + 16), 8);
        latest[std::move(id)] = at;
        at += length;
    }
    std::vector<std::size_t> offsets;
    offsets.reserve(latest.size());
    for (const auto& entry : latest) offsets.push_back(entry.second);
    std::sort(offsets.begin(), offsets.end());
    std::vector<StoredStream> out;
    out.reserve(offsets.size());
    for (const std::size_t offset : offsets) out.push_back(decode(map_ + offset));
    return out;
}

#if defined(_WIN32)

std::unique_ptr<ReplayJournal> ReplayJournal::open(const std::string&, std::size_t) { return nullptr; }
ReplayJournal::~ReplayJournal() = default;

#else

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
    std::size_t size = static_cast<std::size_t>(st.st_size);
    if (size < capacity) {
        if (const int rc = posix_fallocate(fd, 0, static_cast<off_t>(capacity)); rc != 0) fail(std::strerror(rc));
        size = capacity;
    }
    void* map = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) fail(std::strerror(errno));
    closer.keep = true;
    return std::unique_ptr<ReplayJournal>(new ReplayJournal(fd, static_cast<unsigned char*>(map), size));
}

ReplayJournal::~ReplayJournal() {
    munmap(map_, size_);
    ::close(fd_);
}

#endif

}  // namespace securemqtt::detail
