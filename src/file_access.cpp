// SPDX-License-Identifier: Apache-2.0
#include "file_access.hpp"

#include <securemqtt/errors.hpp>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

#if defined(__unix__) || defined(__APPLE__)
#include <sys/stat.h>
#define SECUREMQTT_HAVE_POSIX_STAT 1
#endif

namespace securemqtt::detail {
namespace {

[[noreturn]] void fail(const std::string& path, std::string_view what, const std::string& cause) {
    throw ConfigError(std::string(what) + " '" + path + "': " + cause);
}

struct FileCloser {
    void operator()(std::FILE* f) const noexcept { std::fclose(f); }
};

}  // namespace

SecureBuffer read_secret_file(const std::string& path, std::string_view what, std::size_t max_size) {
#ifdef SECUREMQTT_HAVE_POSIX_STAT
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) fail(path, what, std::strerror(errno));
    if (!S_ISREG(st.st_mode)) fail(path, what, "not a regular file");
#endif
    std::unique_ptr<std::FILE, FileCloser> file(std::fopen(path.c_str(), "rb"));
    if (!file) fail(path, what, std::strerror(errno));
    std::setvbuf(file.get(), nullptr, _IONBF, 0);  // no stdio buffer holding a copy of the secret

    SecureBuffer buffer(max_size + 1);
    std::size_t total = 0;
    while (total < buffer.size()) {
        const std::size_t n = std::fread(buffer.data() + total, 1, buffer.size() - total, file.get());
        if (n == 0) break;
        total += n;
    }
    if (std::ferror(file.get())) fail(path, what, std::strerror(errno));
    if (total == 0) fail(path, what, "file is empty");
    if (total > max_size) fail(path, what, "file is larger than " + std::to_string(max_size / 1024) + " KiB");
    buffer.truncate(total);
    return buffer;
}

bool readable_by_others(const std::string& path) noexcept {
#ifdef SECUREMQTT_HAVE_POSIX_STAT
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return false;
    return (st.st_mode & (S_IRGRP | S_IROTH)) != 0;
#else
    (void)path;
    return false;
#endif
}

}  // namespace securemqtt::detail
