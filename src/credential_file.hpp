// SPDX-License-Identifier: Apache-2.0
// A file path for PEM text held in memory, because Paho only accepts paths. Linux: an
// anonymous memfd seen as /proc/self/fd/N, never on disk. Elsewhere: a mode-0600 temporary
// file, wiped and removed when this object dies.
#pragma once

#include <memory>
#include <string>
#include <string_view>

namespace securemqtt::detail {

class CredentialFile {
public:
    /// Throws TlsError when no such file can be made.
    CredentialFile(std::string_view what, std::string_view pem);
    ~CredentialFile();
    CredentialFile(const CredentialFile&) = delete;
    CredentialFile& operator=(const CredentialFile&) = delete;

    /// Only an anonymous in-memory file, never one on disk: null where the platform has none.
    /// For secrets that must not touch a disk, such as a decrypted private key.
    static std::unique_ptr<CredentialFile> in_memory(std::string_view what, std::string_view pem);

    const std::string& path() const noexcept { return path_; }

private:
    CredentialFile() = default;
    bool open_in_memory(std::string_view what, std::string_view pem);
    std::string path_;
    int fd_ = -1;
    bool on_disk_ = false;
    std::size_t size_ = 0;
};

}  // namespace securemqtt::detail
