// SPDX-License-Identifier: Apache-2.0
#include "credential_file.hpp"

#include <securemqtt/errors.hpp>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <utility>
#include <vector>

#if defined(__unix__) || defined(__APPLE__)
#include <sys/stat.h>
#include <unistd.h>
#define SECUREMQTT_POSIX_FILES 1
#endif
#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace securemqtt::detail {
namespace {

[[noreturn]] void fail(std::string_view what, const char* cause) {
    throw TlsError(std::string(what) + " (PEM in memory): cannot hand it to the MQTT client: " + cause);
}

}  // namespace

#ifdef SECUREMQTT_POSIX_FILES
namespace {
bool write_all(int fd, std::string_view data) {
    while (!data.empty()) {
        const ssize_t n = ::write(fd, data.data(), data.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            return false;
        }
        data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
}
}  // namespace

bool CredentialFile::open_in_memory(std::string_view what, std::string_view pem) {
#if defined(__linux__) && defined(MFD_CLOEXEC)
    fd_ = ::memfd_create("securemqtt-credential", MFD_CLOEXEC);
    if (fd_ < 0) return false;
    if (!write_all(fd_, pem)) {
        const int err = errno;
        ::close(std::exchange(fd_, -1));
        fail(what, std::strerror(err));
    }
    path_ = "/proc/self/fd/" + std::to_string(fd_);
    return true;
#else
    (void)what;
    (void)pem;
    return false;
#endif
}

std::unique_ptr<CredentialFile> CredentialFile::in_memory(std::string_view what, std::string_view pem) {
    std::unique_ptr<CredentialFile> f(new CredentialFile());
    f->size_ = pem.size();
    if (!f->open_in_memory(what, pem)) return nullptr;
    return f;
}

CredentialFile::CredentialFile(std::string_view what, std::string_view pem) : size_(pem.size()) {
    if (open_in_memory(what, pem)) return;
    const char* tmp = std::getenv("TMPDIR");
    std::string templ = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/securemqtt-XXXXXX";
    std::vector<char> name(templ.begin(), templ.end());
    name.push_back('\0');
    fd_ = ::mkstemp(name.data());  // creates the file with mode 0600
    if (fd_ < 0) fail(what, std::strerror(errno));
    path_ = name.data();
    on_disk_ = true;
    if (!write_all(fd_, pem)) {
        const int err = errno;
        ::close(fd_);
        ::unlink(path_.c_str());
        fail(what, std::strerror(err));
    }
}

CredentialFile::~CredentialFile() {
    if (fd_ < 0) return;
    if (on_disk_) {
        // Overwrite before unlinking so the key does not linger in freed disk blocks' page cache.
        std::vector<char> zeros(size_, 0);
        if (::lseek(fd_, 0, SEEK_SET) == 0) (void)write_all(fd_, std::string_view(zeros.data(), zeros.size()));
        ::unlink(path_.c_str());
    }
    ::close(fd_);
}
#else
std::unique_ptr<CredentialFile> CredentialFile::in_memory(std::string_view, std::string_view) { return nullptr; }

CredentialFile::CredentialFile(std::string_view what, std::string_view pem) : size_(pem.size()) {
    // Portable fallback: a temporary file in the current user's temp directory.
    char name[L_tmpnam];
    if (std::tmpnam(name) == nullptr) fail(what, "no temporary file name");
    std::FILE* f = std::fopen(name, "wb");
    if (f == nullptr) fail(what, std::strerror(errno));
    const bool ok = std::fwrite(pem.data(), 1, pem.size(), f) == pem.size();
    std::fclose(f);
    path_ = name;
    on_disk_ = true;
    if (!ok) {
        std::remove(name);
        fail(what, "write failed");
    }
}

CredentialFile::~CredentialFile() {
    if (on_disk_) std::remove(path_.c_str());
}
#endif

}  // namespace securemqtt::detail
