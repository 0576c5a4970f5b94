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
#include "common/format.hpp"

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
                 "  -F FORMAT              print each message as FORMAT says (mosquitto_sub's):\n"
                 "                         %t topic, %p payload, %q QoS, %r retained, %l length,\n"
                 "                         %x/%X payload in hex, %C content type, %D correlation\n"
                 "                         data, %E expiry, %F payload format, %R response topic,\n"
                 "                         %P user properties (name:value ...), %%; \\n \\t escapes\n"
                 "  -C COUNT               exit after COUNT verified messages\n"
                 "  -W SECONDS             give up after SECONDS (exit 27)\n"
                 "  --max-age SECONDS      oldest acceptable message (default 300)\n"
                 "  --will-max-age FILTER=SECONDS  messages on topics matching FILTER (Last Will\n"
                 "                         topics) may be this old (repeatable)\n"
                 "  --replay-store FILE    keep replay state in this SQLite file, so that nothing\n"
                 "                         delivered before a restart is delivered after it\n"
                 "  --replay-store redis://HOST:PORT[/DB]\n"
                 "                         share replay state in Redis (or a Redis Cluster) with\n"
                 "                         every subscriber of a consumer group ($share/GROUP/...)\n"
                 "  --replay-window N      counters a message may lag behind the newest of its\n"
                 "                         stream (default 1024; in a consumer group, at least how\n"
                 "                         far members may fall behind each other)\n"
                 "  --store-hold SECONDS   with Redis: how long a message waits for the store\n"
                 "                         before it is rejected as replay_state_unavailable (20)\n"
                 "  --store-lease SECONDS  with Redis: how long a message being handled here is\n"
                 "                         kept from the other subscribers (10)\n"
                 "  --kill-in-handler N    for tests of crash recovery: the process kills itself\n"
                 "                         (SIGKILL) in the handler of the Nth verified message,\n"
                 "                         before printing, recording or acknowledging it\n"
              << cli::session_usage() << cli::tls_usage();
}

// One line on stderr when the subscriber ends, for operators and tests: what was delivered and
// what was not, and why.
void print_totals(const securemqtt::SessionStats& st) {
    std::string line = "secure_subscriber: " + std::to_string(st.verified) + " verified, " +
                       std::to_string(st.rejected) + " rejected";
    for (std::size_t i = 0; i < securemqtt::reject_reason_count; ++i) {
        if (st.rejected_by_reason[i] == 0) continue;
        line += " " + std::string(securemqtt::to_string(static_cast<securemqtt::RejectReason>(i))) + "=" +
                std::to_string(st.rejected_by_reason[i]);
    }
    if (st.replay_store_failures > 0) line += ", " + std::to_string(st.replay_store_failures) + " store failures";
    if (st.replay_lease_overruns > 0) line += ", " + std::to_string(st.replay_lease_overruns) + " lease overruns";
    std::cerr << line + "\n";
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
        if (const std::string problem = cli::format_problem(o.format); !problem.empty()) {
            throw cli::UsageError(problem);
        }
        securemqtt::SecureSession session(cli::session_options(o));
        session.on_rejected([](std::string_view topic, securemqtt::RejectReason reason) {
            // One insertion per line: log lines from other threads must not land inside it.
            std::cerr << "rejected: " + std::string(securemqtt::to_string(reason)) + " on topic '" + std::string(topic) + "'\n";
        });
        const auto handler = [&](const securemqtt::Message& m) {
            std::lock_guard<std::mutex> lock(mutex);
            if (o.count > 0 && received >= o.count) return;
            if (o.kill_in_handler > 0 && received + 1 == o.kill_in_handler) std::raise(SIGKILL);
            if (!o.format.empty()) {
                std::cout << cli::format_message(o.format, m) << std::endl;
            } else {
                if (o.verbose) std::cout << m.topic << ' ';
                std::cout << m.payload.as_string_view() << std::endl;
            }
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
        print_totals(session.stats());
        return 0;
    });
}
