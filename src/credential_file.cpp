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
#if defined(_WIN32) && !defined(SECUREMQTT_POSIX_FILES)
#ifndef NOMINMAX
#define NOMINMAX
#endif
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>
#include <sddl.h>

#include <openssl/rand.h>

#include <algorithm>
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

void CredentialFile::require_supported(std::string_view, Content) {}

std::unique_ptr<CredentialFile> CredentialFile::in_memory(std::string_view what, std::string_view pem) {
    std::unique_ptr<CredentialFile> f(new CredentialFile());
    f->size_ = pem.size();
    if (!f->open_in_memory(what, pem)) return nullptr;
    return f;
}

CredentialFile::CredentialFile(std::string_view what, std::string_view pem, Content) : size_(pem.size()) {
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
#elif defined(_WIN32)
// Windows has no anonymous file that can be opened by name. Paho and OpenSSL open the file
// with fopen(), whose sharing mode lacks FILE_SHARE_DELETE, so a file opened here with
// FILE_FLAG_DELETE_ON_CLOSE (which needs DELETE access) could not be opened by them at all: the
// file keeps its name on disk until this object dies, and a crash leaves it there. So no secret
// goes to it (a private key is refused: give its path). Certificates and CRLs do: public, but
// whoever could change them would choose whom the session trusts. The file is created afresh
// under a random name (CREATE_NEW: never one that exists, nor a link planted in its place) in
// the user's temporary directory, with a protected DACL that lets the current user alone open
// it; it stays open here without write sharing, so no one can change it while the session may
// read it (Paho reads it at every connect); it is overwritten and deleted when this object dies.
namespace {

struct LocalFreer {
    void operator()(void* p) const noexcept { LocalFree(p); }
};

std::string windows_error(DWORD code) {
    char* text = nullptr;
    const DWORD n = FormatMessageA(
        FORMAT_MESSAGE_ALLOCATE_BUFFER | FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS, nullptr, code, 0,
        reinterpret_cast<char*>(&text), 0, nullptr);
    std::string words = n > 0 && text != nullptr ? std::string(text, n) : "error " + std::to_string(code);
    if (text != nullptr) LocalFree(text);
    while (!words.empty() && (words.back() == '\n' || words.back() == '\r' || words.back() == ' ' || words.back() == '.')) {
        words.pop_back();
    }
    return words;
}

[[noreturn]] void fail_windows(std::string_view what, const char* step) {
    const DWORD code = GetLastError();
    fail(what, (std::string(step) + ": " + windows_error(code)).c_str());
}

// "O:<user>D:P(A;;FA;;;<user>)": owned by the current user, whose full access is the DACL's
// only entry; P(rotected): nothing inherited from the directory.
std::unique_ptr<void, LocalFreer> owner_only_descriptor(std::string_view what) {
    HANDLE token = nullptr;
    if (!OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &token)) fail_windows(what, "OpenProcessToken");
    DWORD size = 0;
    GetTokenInformation(token, TokenUser, nullptr, 0, &size);
    std::vector<unsigned char> user(size);
    const BOOL got = size > 0 && GetTokenInformation(token, TokenUser, user.data(), size, &size);
    const DWORD got_error = GetLastError();
    CloseHandle(token);
    SetLastError(got_error);
    if (!got) fail_windows(what, "GetTokenInformation");
    wchar_t* sid = nullptr;
    if (!ConvertSidToStringSidW(reinterpret_cast<const TOKEN_USER*>(user.data())->User.Sid, &sid)) {
        fail_windows(what, "ConvertSidToStringSid");
    }
    const std::wstring sddl = L"O:" + std::wstring(sid) + L"D:P(A;;FA;;;" + std::wstring(sid) + L")";
    LocalFree(sid);
    PSECURITY_DESCRIPTOR descriptor = nullptr;
    if (!ConvertStringSecurityDescriptorToSecurityDescriptorW(sddl.c_str(), SDDL_REVISION_1, &descriptor, nullptr)) {
        fail_windows(what, "ConvertStringSecurityDescriptorToSecurityDescriptor");
    }
    return std::unique_ptr<void, LocalFreer>(descriptor);
}

std::wstring random_file_name(std::string_view what) {
    unsigned char random[16] = {};
    if (RAND_bytes(random, sizeof random) != 1) fail(what, "no random file name (RAND_bytes failed)");
    static constexpr wchar_t hex[] = L"0123456789abcdef";
    std::wstring name = L"securemqtt-";
    for (const unsigned char b : random) {
        name += hex[b >> 4];
        name += hex[b & 0x0f];
    }
    return name + L".pem";
}

std::string utf8(const std::wstring& wide) {
    const int n = WideCharToMultiByte(CP_UTF8, WC_ERR_INVALID_CHARS, wide.data(), static_cast<int>(wide.size()),
                                      nullptr, 0, nullptr, nullptr);
    if (n <= 0) return {};
    std::string narrow(static_cast<std::size_t>(n), '\0');
    WideCharToMultiByte(CP_UTF8, WC_ERR_INVALID_CHARS, wide.data(), static_cast<int>(wide.size()), narrow.data(), n,
                        nullptr, nullptr);
    return narrow;
}

bool write_all(HANDLE file, std::string_view data) {
    while (!data.empty()) {
        DWORD written = 0;
        const DWORD chunk = static_cast<DWORD>(std::min<std::size_t>(data.size(), 1u << 30));
        if (!WriteFile(file, data.data(), chunk, &written, nullptr) || written == 0) return false;
        data.remove_prefix(written);
    }
    return true;
}

}  // namespace

std::unique_ptr<CredentialFile> CredentialFile::in_memory(std::string_view, std::string_view) { return nullptr; }

void CredentialFile::require_supported(std::string_view what, Content content) {
    if (content == Content::secret) {
        throw TlsError(std::string(what) +
                       " (PEM in memory): not supported on Windows, where the MQTT client could read it only from a "
                       "file on disk: give the key's path (TlsOptions::key_file) instead");
    }
}

CredentialFile::CredentialFile(std::string_view what, std::string_view pem, Content content) : size_(pem.size()) {
    require_supported(what, content);
    const std::unique_ptr<void, LocalFreer> descriptor = owner_only_descriptor(what);
    SECURITY_ATTRIBUTES attributes{};
    attributes.nLength = sizeof attributes;
    attributes.lpSecurityDescriptor = descriptor.get();
    attributes.bInheritHandle = FALSE;
    const DWORD length = GetTempPathW(0, nullptr);
    std::wstring directory(length, L'\0');
    const DWORD written = length == 0 ? 0 : GetTempPathW(length, directory.data());
    if (written == 0 || written >= length) fail_windows(what, "GetTempPath");
    directory.resize(written);  // ends with a backslash
    wide_path_ = directory + random_file_name(what);
    path_ = utf8(wide_path_);  // OpenSSL opens file names as UTF-8 on Windows
    if (path_.empty()) fail(what, "the temporary directory's name is not valid UTF-16");
    // GENERIC_WRITE without DELETE: fopen's sharing mode (read and write, not delete) admits it.
    HANDLE file = CreateFileW(wide_path_.c_str(), GENERIC_WRITE, FILE_SHARE_READ, &attributes, CREATE_NEW,
                              FILE_ATTRIBUTE_TEMPORARY | FILE_ATTRIBUTE_NOT_CONTENT_INDEXED, nullptr);
    if (file == INVALID_HANDLE_VALUE) fail_windows(what, "CreateFile");
    handle_ = file;
    on_disk_ = true;
    if (!write_all(file, pem)) {
        const DWORD code = GetLastError();
        CloseHandle(file);
        DeleteFileW(wide_path_.c_str());
        SetLastError(code);
        fail_windows(what, "WriteFile");
    }
}

CredentialFile::~CredentialFile() {
    if (handle_ == nullptr) return;
    HANDLE file = static_cast<HANDLE>(handle_);
    LARGE_INTEGER start{};
    if (SetFilePointerEx(file, start, nullptr, FILE_BEGIN)) {
        const std::vector<char> zeros(size_, 0);
        (void)write_all(file, std::string_view(zeros.data(), zeros.size()));
        FlushFileBuffers(file);
    }
    CloseHandle(file);  // first: the handle does not share delete access
    DeleteFileW(wide_path_.c_str());
}
#else
// Neither POSIX nor Windows: no file that could be kept from other users. Fail closed.
void CredentialFile::require_supported(std::string_view what, Content) {
    fail(what, "no private temporary file on this platform: give a file path instead");
}

std::unique_ptr<CredentialFile> CredentialFile::in_memory(std::string_view, std::string_view) { return nullptr; }

CredentialFile::CredentialFile(std::string_view what, std::string_view, Content) {
    fail(what, "no private temporary file on this platform: give a file path instead");
}

CredentialFile::~CredentialFile() = default;
#endif

}  // namespace securemqtt::detail
