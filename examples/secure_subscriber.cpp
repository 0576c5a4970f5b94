// SPDX-License-Identifier: Apache-2.0
// Subscribes over mutual TLS and prints only verified messages, with mosquitto_sub's flags.
//
//   secure_subscriber -h localhost -p 8883 -t 'devices/#' -v -q 1 \
//     --cafile certs/out/ca.pem --cert certs/out/monitor.pem --key certs/out/monitor.key \
//     --key-id device-1 --hmac-key device-1.hex
//
// Verified payloads go to stdout ("topic payload" with -v); each rejected message is one line
// on stderr: "rejected: REASON on topic 'TOPIC'". Exit status: 0 after -C N verified messages
// (or on SIGINT), 1 connection failure, 2 bad usage, 3 bad configuration, 27 timeout (-W).
#include "common/cli.hpp"

#include <atomic>
#include <condition_variable>
#include <csignal>
#include <iostream>
#include <mutex>

namespace {

std::atomic<bool> interrupted{false};
extern "C" void on_signal(int) { interrupted = true; }

void usage() {
    std::cout << "usage: secure_subscriber -t FILTER [-t FILTER...] [options]\n"
                 "  -h HOST -p PORT        broker (default localhost 8883)\n"
                 "  -t FILTER              topic filter to subscribe to (repeatable)\n"
                 "  -q QOS                 0, 1 or 2 (default 0)\n"
                 "  -v                     print 'topic payload'\n"
                 "  -C COUNT               exit after COUNT verified messages\n"
                 "  -W SECONDS             give up after SECONDS (exit 27)\n"
                 "  --max-age SECONDS      oldest acceptable message (default 300)\n"
                 "  --will-max-age FILTER=SECONDS  messages on topics matching FILTER (Last Will\n"
                 "                         topics) may be this old (repeatable)\n"
                 "  --replay-store FILE    keep replay state in this SQLite file, so that nothing\n"
                 "                         delivered before a restart is delivered after it\n"
              << cli::session_usage() << cli::tls_usage();
}

}  // namespace

int main(int argc, char** argv) {
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
    return cli::run("secure_subscriber", argc, argv, false, usage, [](const cli::Options& o) {
        // Declared before the session, so they outlive any handler call it is still making.
        std::mutex mutex;
        std::condition_variable done;
        int received = 0;
        securemqtt::SecureSession session(cli::session_options(o));
        session.on_rejected([](std::string_view topic, securemqtt::RejectReason reason) {
            // One insertion per line: log lines from other threads must not land inside it.
            std::cerr << "rejected: " + std::string(securemqtt::to_string(reason)) + " on topic '" + std::string(topic) + "'\n";
        });
        const auto handler = [&](const securemqtt::Message& m) {
            std::lock_guard<std::mutex> lock(mutex);
            if (o.count > 0 && received >= o.count) return;
            if (o.verbose) std::cout << m.topic << ' ';
            std::cout << m.payload.as_string_view() << std::endl;
            ++received;
            if (o.count > 0 && received >= o.count) done.notify_all();
        };
        for (const auto& t : o.topics) session.subscribe(t, o.qos, handler);
        session.connect();
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(o.wait_seconds);
        std::unique_lock<std::mutex> lock(mutex);
        while (!interrupted && !(o.count > 0 && received >= o.count)) {
            if (o.wait_seconds > 0 && std::chrono::steady_clock::now() >= deadline) {
                std::cerr << "secure_subscriber: timed out after " << o.wait_seconds << " s with " << received
                          << " verified message(s)\n";
                return 27;
            }
            done.wait_for(lock, std::chrono::milliseconds(100));
        }
        lock.unlock();
        session.disconnect();
        return 0;
    });
}
