// SPDX-License-Identifier: Apache-2.0
// What the session tests share: the brokers (one per kind for the whole program, started with
// scripts/local_broker.py), session options for an identity, and an inbox of verified messages.
#pragma once

#include "support/catch.hpp"
#include "support/test_util.hpp"

#include <securemqtt/securemqtt.hpp>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include <stdlib.h>

namespace sessiontest {

using namespace securemqtt;
namespace fs = std::filesystem;

inline std::string shell_quote(const std::string& s) { return "'" + s + "'"; }

// One broker for the whole program (and one with the dynamic security plugin, which, unlike
// the ACL file, refuses subscriptions too).
struct BrokerFixture {
    explicit BrokerFixture(const std::string& options = "") {
        std::string templ = (fs::temp_directory_path() / "securemqtt-session-XXXXXX").string();
        if (::mkdtemp(templ.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
        dir = templ;
        const std::string cmd = std::string(SECUREMQTT_PYTHON) + " " + shell_quote(SECUREMQTT_SOURCE_DIR "/scripts/local_broker.py") +
                                " start " + shell_quote(dir.string()) + " " + options + " > /dev/null";
        if (std::system(cmd.c_str()) != 0) throw std::runtime_error("broker did not start: " + cmd);
        port = std::stoi(testutil::read_file((dir / "port").string()));
        certs = dir / "certs";
    }
    ~BrokerFixture() {
        const std::string cmd = std::string(SECUREMQTT_PYTHON) + " " + shell_quote(SECUREMQTT_SOURCE_DIR "/scripts/local_broker.py") +
                                " stop " + shell_quote(dir.string());
        (void)std::system(cmd.c_str());
        std::error_code ec;
        fs::remove_all(dir, ec);
    }
    TlsOptions tls(const std::string& identity) const {
        TlsOptions t;
        t.ca_file = (certs / "ca.pem").string();
        t.cert_file = (certs / (identity + ".pem")).string();
        t.key_file = (certs / (identity + ".key")).string();
        return t;
    }
    std::string uri() const { return "mqtts://localhost:" + std::to_string(port); }
    fs::path dir;
    fs::path certs;
    int port = 0;
};

inline BrokerFixture& broker();

// Stops the shared broker, or starts it again on a new free port (never the old one, which
// another test running beside this program may have taken meanwhile); later tests use the new.
inline void broker_command(const std::string& action) {
    BrokerFixture& b = broker();
    const std::string cmd = std::string(SECUREMQTT_PYTHON) + " " +
                            shell_quote(SECUREMQTT_SOURCE_DIR "/scripts/local_broker.py") + " " + action + " " +
                            shell_quote(b.dir.string()) + " > /dev/null";
    REQUIRE(std::system(cmd.c_str()) == 0);
    if (action == "start") b.port = std::stoi(testutil::read_file((b.dir / "port").string()));
}

inline BrokerFixture& broker() {
    static BrokerFixture b;
    return b;
}

inline BrokerFixture& small_packet_broker() {
    static BrokerFixture b("--max-packet-size 2048");
    return b;
}

inline BrokerFixture& subscription_checking_broker() {
    static BrokerFixture b("--dynamic-security");
    return b;
}

inline const std::string key_hex = "8f3c2a9d0e7b4f61a5c3d2e1f0b9a8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1";

inline SessionOptions options_for(const std::string& identity, std::vector<std::string>* log = nullptr,
                           std::mutex* log_mutex = nullptr) {
    SessionOptions o;
    o.server_uri = broker().uri();
    o.tls = broker().tls(identity);
    o.keyring = std::make_shared<Keyring>();
    o.keyring->add_key_hex("k1", key_hex);
    o.keyring->set_signing_key("k1");
    o.connect_timeout = std::chrono::milliseconds(5000);
    if (log != nullptr) {
        o.logger = [log, log_mutex](LogLevel level, std::string_view message) {
            std::lock_guard<std::mutex> lock(*log_mutex);
            log->push_back(std::string(level == LogLevel::debug ? "debug" : "other") + ": " + std::string(message));
        };
    }
    return o;
}

// Collects verified payloads; wait() until `n` have arrived.
struct Inbox {
    SecureSession::Handler handler() {
        return [this](const Message& m) {
            std::lock_guard<std::mutex> lock(mutex);
            payloads.emplace_back(m.payload.as_string_view());
            topics.emplace_back(m.topic);
            cv.notify_all();
        };
    }
    bool wait(std::size_t n, std::chrono::seconds timeout = std::chrono::seconds(15)) {
        std::unique_lock<std::mutex> lock(mutex);
        return cv.wait_for(lock, timeout, [&] { return payloads.size() >= n; });
    }
    std::mutex mutex;
    std::condition_variable cv;
    std::vector<std::string> payloads;
    std::vector<std::string> topics;
};

}  // namespace sessiontest
