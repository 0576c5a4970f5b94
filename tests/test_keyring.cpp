// SPDX-License-Identifier: Apache-2.0
#include "support/catch.hpp"
#include "support/test_util.hpp"

#include <securemqtt/securemqtt.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <vector>

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace securemqtt;
namespace fs = std::filesystem;

namespace {

const std::string hex32 = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

struct TempDir {
    TempDir() {
        std::string templ = (fs::temp_directory_path() / "securemqtt-keyring-XXXXXX").string();
        REQUIRE(::mkdtemp(templ.data()) != nullptr);
        path = templ;
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
    std::string write(const std::string& name, const std::string& text, fs::perms perms = fs::perms::owner_read | fs::perms::owner_write) const {
        const std::string p = (path / name).string();
        std::ofstream(p, std::ios::binary) << text;
        fs::permissions(p, perms);
        return p;
    }
    fs::path path;
};

struct CapturedLog {
    Logger logger() {
        return [this](LogLevel level, std::string_view message) {
            std::lock_guard<std::mutex> lock(mutex);
            lines.emplace_back(level, std::string(message));
        };
    }
    std::mutex mutex;
    std::vector<std::pair<LogLevel, std::string>> lines;
};

std::string message_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const ConfigError& e) {
        return e.what();
    }
    return "(no exception)";
}

}  // namespace

TEST_CASE("a key shorter than 32 bytes is refused with a clear error", "[keyring]") {
    Keyring keyring;
    const std::vector<std::uint8_t> short_key(31, 7);
    const std::string msg = message_of([&] { keyring.add_key("k", short_key); });
    CHECK(msg.find("key 'k'") != std::string::npos);
    CHECK(msg.find("31 bytes, at least 32") != std::string::npos);
    CHECK_FALSE(keyring.contains("k"));
}

TEST_CASE("hex keys ignore whitespace and reject anything else", "[keyring]") {
    Keyring keyring;
    keyring.add_key_hex("spaced", "  0001 0203\n" + hex32.substr(8) + "\r\n\t");
    CHECK(keyring.contains("spaced"));
    CHECK_THROWS_WITH(keyring.add_key_hex("bad", hex32 + "zz"), Catch::Contains("not hexadecimal"));
    CHECK_THROWS_WITH(keyring.add_key_hex("odd", hex32 + "0"), Catch::Contains("not hexadecimal"));
    CHECK_THROWS_AS(keyring.add_key_hex("spaced", hex32), ConfigError);  // duplicate id
}

TEST_CASE("invalid key ids, scopes and windows are refused", "[keyring]") {
    Keyring keyring;
    const auto key = testutil::test_key(0);
    CHECK_THROWS_AS(keyring.add_key("", key), ConfigError);
    CHECK_THROWS_AS(keyring.add_key("has space", key), ConfigError);
    CHECK_THROWS_AS(keyring.add_key(std::string(65, 'a'), key), ConfigError);
    KeyOptions scope;
    scope.topic_scope = {"a/#/b"};
    CHECK_THROWS_WITH(keyring.add_key("k", key, scope), Catch::Contains("invalid topic scope filter 'a/#/b'"));
    KeyOptions window;
    window.not_before_ms = 10;
    window.not_after_ms = 10;
    CHECK_THROWS_AS(keyring.add_key("k", key, window), ConfigError);
    CHECK(keyring.key_ids().empty());
}

TEST_CASE("key files: hex text is loaded, problems name the file and the cause", "[keyring]") {
    TempDir dir;
    Keyring keyring;
    keyring.add_key_file("good", dir.write("good.hex", hex32 + "\n"));
    CHECK(keyring.contains("good"));

    const std::string missing = (dir.path / "missing.hex").string();
    CHECK(message_of([&] { keyring.add_key_file("m", missing); }) ==
          "HMAC key file '" + missing + "': No such file or directory");
    const std::string empty = dir.write("empty.hex", "");
    CHECK(message_of([&] { keyring.add_key_file("e", empty); }) == "HMAC key file '" + empty + "': file is empty");
    const std::string garbage = dir.write("garbage.hex", "this is not hex\n");
    CHECK(message_of([&] { keyring.add_key_file("g", garbage); })
              .find("HMAC key file '" + garbage + "': not hexadecimal text") == 0);
    const std::string short_file = dir.write("short.hex", hex32.substr(0, 62));
    CHECK(message_of([&] { keyring.add_key_file("s", short_file); }) ==
          "HMAC key file '" + short_file + "': key is 31 bytes, at least 32 are required (openssl rand -hex 32)");
    CHECK(message_of([&] { keyring.add_key_file("d", dir.path.string()); }) ==
          "HMAC key file '" + dir.path.string() + "': not a regular file");
    CHECK(keyring.key_ids() == std::vector<std::string>{"good"});
}

TEST_CASE("an unreadable key file is an error", "[keyring]") {
    TempDir dir;
    fs::permissions(dir.path, fs::perms::owner_all | fs::perms::group_exec | fs::perms::others_exec);
    const std::string p = dir.write("locked.hex", hex32, fs::perms::none);
    const auto attempt = [&p]() -> bool {
        Keyring keyring;
        return message_of([&] { keyring.add_key_file("l", p); }) ==
               "HMAC key file '" + p + "': Permission denied";
    };
    if (::geteuid() != 0) {
        CHECK(attempt());
        return;
    }
    // Root reads any file, so check from a child process that has dropped to 'nobody'.
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        const bool ok = ::setgid(65534) == 0 && ::setuid(65534) == 0 && attempt();
        ::_exit(ok ? 0 : 1);
    }
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
}

TEST_CASE("a key file readable by others loads with a warning that names it", "[keyring]") {
    TempDir dir;
    CapturedLog log;
    Keyring keyring(log.logger());
    keyring.add_key_file("private", dir.write("private.hex", hex32));
    CHECK(log.lines.empty());
    const std::string open_file =
        dir.write("open.hex", hex32, fs::perms::owner_read | fs::perms::owner_write | fs::perms::others_read);
    keyring.add_key_file("open", open_file);
    REQUIRE(log.lines.size() == 1);
    CHECK(log.lines[0].first == LogLevel::warning);
    CHECK(log.lines[0].second.find(open_file) != std::string::npos);
    CHECK(log.lines[0].second.find("readable by group or others") != std::string::npos);
    CHECK(log.lines[0].second.find(hex32.substr(0, 8)) == std::string::npos);  // never the key
}

TEST_CASE("signing key: set, switched, removed", "[keyring]") {
    Keyring keyring;
    CHECK(keyring.signing_key_id().empty());
    keyring.add_key("old", testutil::test_key(1));
    keyring.add_key("new", testutil::test_key(2));
    CHECK_THROWS_AS(keyring.set_signing_key("absent"), ConfigError);
    keyring.set_signing_key("old");
    CHECK(keyring.signing_key_id() == "old");
    keyring.set_signing_key("new");
    CHECK(keyring.signing_key_id() == "new");
    CHECK(keyring.contains("old"));  // stays, verify-only
    CHECK(keyring.remove_key("new"));
    CHECK(keyring.signing_key_id().empty());
    CHECK_FALSE(keyring.remove_key("new"));
    CHECK(keyring.key_ids() == std::vector<std::string>{"old"});
}

TEST_CASE("error messages never contain key material", "[keyring]") {
    Keyring keyring;
    // A secret pasted where the key id goes is not echoed back.
    const std::string msg = message_of([&] { keyring.add_key(hex32 + hex32 + "x", testutil::test_key(0)); });
    CHECK(msg.find(hex32.substr(0, 16)) == std::string::npos);
    const std::string msg2 = message_of([&] { keyring.add_key_hex("k", "abcdef0123456789abcdefZZ"); });
    CHECK(msg2.find("abcdef0123456789") == std::string::npos);
}
