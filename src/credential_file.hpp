// SPDX-License-Identifier: Apache-2.0
// A file path for PEM text held in memory, because Paho only accepts paths. Linux: an
// anonymous memfd seen as /proc/self/fd/N, never on disk. Elsewhere: a mode-0600 temporary
// file, wiped and removed when this object dies.
#pragma once

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

    const std::string& path() const noexcept { return path_; }

private:
    std::string path_;
    int fd_ = -1;
    bool on_disk_ = false;
    std::size_t size_ = 0;
};

}  // namespace securemqtt::detail
