// SPDX-License-Identifier: Apache-2.0
// A file path for PEM text held in memory, because Paho only accepts paths. Linux: an
// anonymous memfd seen as /proc/self/fd/N, never on disk. Other POSIX systems: a mode-0600
// temporary file, wiped and removed when this object dies. Windows: certificates and CRLs only,
// in a temporary file only the current user can open (see credential_file.cpp); a private key
// is refused there.
#pragma once

#include <memory>
#include <string>
#include <string_view>

namespace securemqtt::detail {

class CredentialFile {
public:
    /// What the PEM text holds: certificates and CRLs are public (their integrity matters, not
    /// their secrecy); a private key is secret.
    enum class Content : unsigned char { public_material, secret };

    /// Throws TlsError when no such file can be made, and on Windows for secret content: the
    /// file would sit on disk under a name, and survive a crash (give a key file path there).
    CredentialFile(std::string_view what, std::string_view pem, Content content);
    ~CredentialFile();
    CredentialFile(const CredentialFile&) = delete;
    CredentialFile& operator=(const CredentialFile&) = delete;

    /// Throws the constructor's TlsError now where `content` would be refused (on Windows,
    /// secret content), so that a session refuses it before it writes or decrypts anything.
    static void require_supported(std::string_view what, Content content);

    /// Only an anonymous in-memory file, never one on disk: null where the platform has none.
    /// For secrets that must not touch a disk, such as a decrypted private key.
    static std::unique_ptr<CredentialFile> in_memory(std::string_view what, std::string_view pem);

    const std::string& path() const noexcept { return path_; }

private:
    CredentialFile() = default;
    bool open_in_memory(std::string_view what, std::string_view pem);
    std::string path_;
#if defined(_WIN32)
    void* handle_ = nullptr;  // the file's HANDLE (no <windows.h> here), open while this lives
    std::wstring wide_path_;
#else
    int fd_ = -1;
#endif
    bool on_disk_ = false;
    std::size_t size_ = 0;
};

}  // namespace securemqtt::detail
