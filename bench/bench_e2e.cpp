// SPDX-License-Identifier: Apache-2.0
// End to end: publisher -> Mosquitto (mTLS, loopback) -> subscriber, signed and verified with
// SecureSession, against raw Paho async clients with the same TLS settings and no signing,
// in alternating rounds of the same run.
//
//   securemqtt_e2e_bench [-n 20000] [-s 256] [-q 0|1] [-r 3]        (starts its own broker)
//   securemqtt_e2e_bench -h HOST -p PORT --cafile CA --certdir DIR   (an existing broker; DIR holds
//                                                                    device-1.pem/.key, monitor.pem/.key)
//
// Publisher and subscriber run in separate processes (the subscriber is a forked child), as they
// would in practice: Paho C serves all clients of a process from the same threads, and two busy
// clients in one process slow each other down (QoS 1 fell to ~1,000 msg/s here). Both read the
// same monotonic clock, so latency is measured across the processes.
//
// Prints a table; the last line is one JSON object with signed_msgs_per_s, raw_msgs_per_s,
// ratio, p50_us, p99_us, connect_ms and more. A round's msg/s is the subscriber's: messages
// over its first to last arrival (signed_e2e_msgs_per_s: from the first publish instead). Both
// publishers use an in-flight window of the round's messages (--window W to choose; see
// publisher_window() for why a full window stalls a round by ~1 s).
//
//   securemqtt_e2e_bench --replay-store LOCATION [--shared K] [--replay-window W] [--stream]
//                        [-n] [-s] [-q] [-r] [--window W]
//
// compares instead the subscriber's replay guard backed by the store at LOCATION (anything
// open_replay_store() takes: a file path, "redis://HOST:PORT") with the in-memory guard, both
// signed and verified, in alternating rounds (store first in even rounds, memory first in odd
// ones). Each round starts fresh subscriber processes (this program again, with --subscriber),
// so each round's guard starts empty; "{n}" in LOCATION becomes the round number, e.g.
// /tmp/d/round-{n}.db for a fresh database per round, and "{i}" the subscriber's index. With
// --shared K, K subscriber processes share the subscription $share/bench/TOPIC (and the store)
// and the rate is the group's total. The subscribers hold their first message until the
// publisher has every PUBACK and then work through the backlog queued at the broker: msg/s is
// verified messages from that "go" to the last arrival, what they sustain (--stream: no hold,
// first to last arrival while the publisher sends). --replay-window sets the subscribers'
// ReplayGuardOptions::window_size. For redis:// it counts the server's EVALSHA calls per verified
// message (redis-cli INFO commandstats before and after each store round). The last line is one
// JSON object with store_msgs_per_s, memory_msgs_per_s, ratio (median of the paired rounds),
// evalsha_per_msg, the rejections and the per-round figures. When the store cannot be opened
// (e.g. "not supported yet") it prints the library's error and exits with status 1.
#include <securemqtt/securemqtt.hpp>

#include <mqtt/async_client.h>

#include <fcntl.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <limits>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

using namespace securemqtt;
using SteadyClock = std::chrono::steady_clock;

namespace {

struct Config {
    int n = 20000;
    std::size_t size = 256;
    int qos = 0;
    int rounds = 3;
    int latency_rate = 2000;  // messages per second for the latency run
    int latency_count = 4000;
    std::string host = "localhost";
    int port = 0;
    std::string cafile;
    std::string certdir;
    std::string topic = "devices/device-1/bench";
    std::string raw_topic = "devices/device-1/bench-raw";
    std::string store;  // --replay-store: compare this store with the in-memory guard
    int shared = 0;     // --shared K: K subscribers on $share/bench/TOPIC
    int window = 0;     // --window W: the publishers' in-flight window; 0: the messages of a round
    std::size_t replay_window = 0;  // --replay-window W: the subscribers' counter window; 0: the default
    bool stream = false;  // --stream: store rounds without the backlog (see store_round)
};

// The publishers' in-flight window (Paho's max_inflight), the same for the signed and the raw
// publisher. Paho C 1.3.11/1.3.12's send thread is woken only when the application queues a
// command (MQTTAsync_addCommand signals send_cond), not when a PUBACK frees a slot of a full
// window: once the application has queued its last publish with the window full, the send
// thread sleeps out its 1 s wait (Thread_wait_cond(send_cond, 1)) while the acknowledgements
// drain the window, and the round stalls ~1 s (docs/performance.md). A window of at least the
// round's messages never fills, so the throughput rounds measure the pipeline, not that timer.
int publisher_window(const Config& c) {
    if (c.window > 0) return c.window;
    return std::min(65535, std::max(c.n, SessionOptions{}.max_inflight));
}

std::string broker_dir;

void start_broker(Config& c) {
    char templ[] = "/tmp/securemqtt-bench-XXXXXX";
    if (::mkdtemp(templ) == nullptr) throw std::runtime_error("mkdtemp failed");
    broker_dir = templ;
    const std::string cmd = std::string("python3 '") + SECUREMQTT_SOURCE_DIR + "/scripts/local_broker.py' start " +
                            broker_dir + " --clients device-1,monitor > /dev/null";
    if (std::system(cmd.c_str()) != 0) throw std::runtime_error("could not start mosquitto: " + cmd);
    std::ifstream port_file(broker_dir + "/port");
    port_file >> c.port;
    c.cafile = broker_dir + "/certs/ca.pem";
    c.certdir = broker_dir + "/certs";
}

void stop_broker() {
    if (broker_dir.empty()) return;
    const std::string cmd = std::string("python3 '") + SECUREMQTT_SOURCE_DIR + "/scripts/local_broker.py' stop " +
                            broker_dir + " > /dev/null; rm -rf " + broker_dir;
    (void)std::system(cmd.c_str());
}

double now_us() {
    return std::chrono::duration<double, std::micro>(SteadyClock::now().time_since_epoch()).count();
}

// Counts arrivals; records per-message latency from the send time carried in the payload.
struct Receiver {
    void arrived(const void* data, std::size_t size) {
        double sent = 0;
        if (size >= sizeof sent) std::memcpy(&sent, data, sizeof sent);
        const double t = now_us();
        std::lock_guard<std::mutex> lock(mutex);
        if (record_latency) latencies.push_back(t - sent);
        if (count == 0) first_us = t;
        last_us = t;
        if (++count >= expected) cv.notify_all();
    }
    void reset(int n, bool latency) {
        std::lock_guard<std::mutex> lock(mutex);
        count = 0;
        first_us = last_us = 0;
        expected = n;
        record_latency = latency;
        latencies.clear();
    }
    bool wait(std::chrono::seconds timeout) {
        std::unique_lock<std::mutex> lock(mutex);
        return cv.wait_for(lock, timeout, [&] { return count >= expected; });
    }
    std::mutex mutex;
    std::condition_variable cv;
    int count = 0;
    int expected = 0;
    bool record_latency = false;
    double first_us = 0;  // arrival of the first message since reset()
    double last_us = 0;
    std::vector<double> latencies;
};

std::string payload_with_time(std::size_t size) {
    std::string p(std::max(size, sizeof(double)), 'x');
    const double t = now_us();
    std::memcpy(&p[0], &t, sizeof t);
    return p;
}

SessionOptions session_options(const Config& c, const std::string& who, int buffer, int window = 0) {
    SessionOptions o;
    o.server_uri = "mqtts://" + c.host + ":" + std::to_string(c.port);
    o.tls.ca_file = c.cafile;
    o.tls.cert_file = c.certdir + "/" + who + ".pem";
    o.tls.key_file = c.certdir + "/" + who + ".key";
    o.keyring = std::make_shared<Keyring>();
    o.keyring->add_key_hex("bench", std::string(64, 'a'));
    o.keyring->set_signing_key("bench");
    o.offline_buffer = buffer;
    if (window > 0) o.max_inflight = window;
    return o;
}

mqtt::connect_options raw_options(const Config& c, const std::string& who, int window = 0) {
    mqtt::ssl_options ssl;
    ssl.set_trust_store(c.cafile);
    ssl.set_key_store(c.certdir + "/" + who + ".pem");
    ssl.set_private_key(c.certdir + "/" + who + ".key");
    ssl.set_verify(true);
    mqtt::connect_options o;
    o.set_ssl(std::move(ssl));
    o.set_clean_session(true);
    o.set_max_inflight(window > 0 ? window : SessionOptions{}.max_inflight);  // the same window as the session
    return o;
}

std::string raw_uri(const Config& c) { return "ssl://" + c.host + ":" + std::to_string(c.port); }

// The subscriber process: both kinds of subscriber, connected once; for each round it is told
// (over a pipe) which kind to count and how many, and answers with the last arrival time and
// the latencies.
struct SubscriberProcess {
    Receiver signed_rx, raw_rx;
    void run(const Config& c, int in_fd, int out_fd) {
        SecureSession sub(session_options(c, "monitor", c.n + 1000));
        sub.subscribe(c.topic, static_cast<QoS>(c.qos), [this](const Message& m) { signed_rx.arrived(m.payload.data(), m.payload.size()); });
        sub.connect();
        mqtt::async_client raw(raw_uri(c), "raw-sub", mqtt::create_options(MQTTVERSION_3_1_1), nullptr);
        raw.set_message_callback([this](mqtt::const_message_ptr m) {
            const std::string& p = m->get_payload();
            raw_rx.arrived(p.data(), p.size());
        });
        raw.connect(raw_options(c, "monitor"))->wait();
        raw.subscribe(c.raw_topic, c.qos)->wait();
        reply(out_fd, "ready");
        char line[128];
        FILE* in = fdopen(in_fd, "r");
        while (std::fgets(line, sizeof line, in) != nullptr) {
            char kind[16] = {};
            int n = 0;
            int lat = 0;
            if (std::sscanf(line, "%15s %d %d", kind, &n, &lat) != 3) break;
            Receiver& rx = std::strcmp(kind, "signed") == 0 ? signed_rx : raw_rx;
            rx.reset(n, lat != 0);
            reply(out_fd, "armed");
            const bool all = rx.wait(std::chrono::seconds(120));
            std::lock_guard<std::mutex> lock(rx.mutex);
            std::ostringstream out;
            out.precision(17);
            out << (all ? 1 : 0) << ' ' << rx.count << ' ' << rx.first_us << ' ' << rx.last_us;
            for (double v : rx.latencies) out << ' ' << v;
            reply(out_fd, out.str());
        }
        raw.disconnect()->wait();
    }
    static void reply(int fd, const std::string& text) {
        const std::string line = text + "\n";
        if (::write(fd, line.data(), line.size()) < 0) std::_Exit(3);
    }
};

// The publisher side's view of the child.
struct Child {
    FILE* to = nullptr;
    FILE* from = nullptr;
    pid_t pid = -1;
    std::string ask(const std::string& command) {
        if (!command.empty()) {
            std::fprintf(to, "%s\n", command.c_str());
            std::fflush(to);
        }
        std::string line;
        int ch = 0;
        while ((ch = std::fgetc(from)) != EOF && ch != '\n') line += static_cast<char>(ch);
        if (ch == EOF) throw std::runtime_error("the subscriber process ended");
        return line;
    }
};

// A throughput round's rates. msgs_per_s: what the subscriber sustained, from its first to its
// last arrival ((count - 1) messages over that window); e2e_msgs_per_s: from the first publish
// to the last arrival (includes the first message's latency and any stall of the publisher).
struct RoundResult {
    double msgs_per_s = 0;
    double e2e_msgs_per_s = 0;
    std::vector<double> latencies;
};

double rate(double messages, double from_us, double to_us) {
    return to_us > from_us && messages > 0 ? messages / ((to_us - from_us) / 1e6) : 0;
}

// One round: arm the child, publish, and read back when the last message arrived.
template <typename Publish, typename Flush>
RoundResult round_trip(Child& child, const char* kind, int n, bool latency, const Config& c, Publish publish,
                       Flush flush) {
    if (child.ask(std::string(kind) + " " + std::to_string(n) + " " + (latency ? "1" : "0")) != "armed") {
        throw std::runtime_error("subscriber not armed");
    }
    const double t0 = now_us();
    if (latency) {
        const auto interval = std::chrono::nanoseconds(1000000000LL / c.latency_rate);
        auto next = SteadyClock::now();
        for (int i = 0; i < n; ++i) {
            std::this_thread::sleep_until(next);
            next += interval;
            publish(payload_with_time(c.size));
        }
    } else {
        const std::string payload(c.size, 'x');
        for (int i = 0; i < n; ++i) publish(payload);
    }
    flush();
    std::istringstream in(child.ask(""));
    int all = 0;
    int count = 0;
    double first = 0;
    double last = 0;
    in >> all >> count >> first >> last;
    RoundResult r;
    double v = 0;
    while (in >> v) r.latencies.push_back(v);
    if (!all) std::cerr << "warning: " << count << " of " << n << " " << kind << " messages arrived\n";
    r.msgs_per_s = rate(count - 1, first, last);
    r.e2e_msgs_per_s = rate(count, t0, last);
    return r;
}

std::pair<double, double> percentiles(std::vector<double> v) {
    if (v.empty()) return {0, 0};
    std::sort(v.begin(), v.end());
    return {v[v.size() / 2], v[std::min(v.size() - 1, v.size() * 99 / 100)]};
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0 : v[v.size() / 2];
}

long peak_rss_kb() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return u.ru_maxrss;
}

// CPU time (user + system, all threads) this process has used, in microseconds.
double cpu_us() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) * 1e6 +
           static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

// ---- Replay store against the in-memory guard (--replay-store) ----

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
    for (std::size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) {
        s.replace(at, from.size(), to);
    }
    return s;
}

// One subscriber process of a store round (--subscriber FILTER): its guard uses the store at
// c.store, or memory when empty. Talks over stdin/stdout: "ready" (or "error WHAT") once
// subscribed, then answers each "count" with the messages verified so far, the first and last
// arrival times, the time it was told "go", the CPU time used since "ready", the store's failed
// writes, the rejected messages and the rejections by reason ("reason=N,..." or "-"); ends at
// end of input. Unless --stream, the handler holds the first message it is given until "go":
// Paho's receive thread waits in it, so the broker keeps the rest queued for this subscriber
// (Mosquitto sends a client at most max_inflight_messages unacknowledged) and, from "go", the
// subscriber works through a backlog at its own pace.
int subscriber_process(const Config& c, const std::string& filter) {
    // A Paho trace (MQTT_C_CLIENT_TRACE=FILE) of a store run covers the publisher only: every
    // process would otherwise write the same file.
    ::unsetenv("MQTT_C_CLIENT_TRACE");
    std::string error;
    try {
        SessionOptions o = session_options(c, "monitor", 1000);
        o.replay.store = open_replay_store(c.store);
        if (c.replay_window > 0) o.replay.window_size = c.replay_window;
        SecureSession sub(std::move(o));
        Receiver rx;
        rx.reset(std::numeric_limits<int>::max(), false);  // counts until the input ends
        std::mutex gate_mutex;
        std::condition_variable gate_cv;
        std::atomic<bool> open{c.stream};
        double go_us = 0;
        sub.subscribe(filter, static_cast<QoS>(c.qos), [&](const Message& m) {
            rx.arrived(m.payload.data(), m.payload.size());
            if (open.load(std::memory_order_acquire)) return;
            std::unique_lock<std::mutex> lock(gate_mutex);
            gate_cv.wait_for(lock, std::chrono::seconds(120), [&] { return open.load(); });
        });
        sub.connect();
        const double cpu0 = cpu_us();
        std::printf("ready\n");
        std::fflush(stdout);
        char line[64];
        while (std::fgets(line, sizeof line, stdin) != nullptr) {
            if (std::strncmp(line, "go", 2) == 0) {
                {
                    std::lock_guard<std::mutex> lock(gate_mutex);
                    go_us = now_us();
                    open.store(true, std::memory_order_release);
                }
                gate_cv.notify_all();
                continue;  // no answer
            }
            const SessionStats stats = sub.stats();
            const double cpu = cpu_us() - cpu0;
            std::string reasons;
            for (std::size_t i = 0; i < reject_reason_count; ++i) {
                if (stats.rejected_by_reason[i] == 0) continue;
                reasons += (reasons.empty() ? "" : ",") + std::string(to_string(static_cast<RejectReason>(i))) + "=" +
                           std::to_string(stats.rejected_by_reason[i]);
            }
            std::lock_guard<std::mutex> lock(rx.mutex);
            double go = 0;
            {
                std::lock_guard<std::mutex> gate(gate_mutex);
                go = go_us;
            }
            std::printf("%d %.17g %.17g %.17g %.0f %llu %llu %s\n", rx.count, rx.first_us, rx.last_us, go, cpu,
                        static_cast<unsigned long long>(stats.replay_store_failures),
                        static_cast<unsigned long long>(stats.rejected), reasons.empty() ? "-" : reasons.c_str());
            std::fflush(stdout);
        }
        sub.disconnect();
        return 0;
    } catch (const std::exception& e) {
        error = e.what();
    }
    std::printf("error %s\n", replace_all(error, "\n", " ").c_str());
    std::fflush(stdout);
    return 1;
}

std::string self_path() {
    char path[4096];
    const ssize_t n = ::readlink("/proc/self/exe", path, sizeof path - 1);
    if (n <= 0) throw std::runtime_error("cannot find this program's path");
    return std::string(path, static_cast<std::size_t>(n));
}

// A subscriber process as the publisher's side sees it: this program started again with
// --subscriber (posix_spawn, safe with Paho's threads running here), its stdin and stdout
// on pipes.
struct SubscriberHandle {
    pid_t pid = -1;
    FILE* to = nullptr;
    FILE* from = nullptr;

    SubscriberHandle(const Config& c, const std::string& location, const std::string& filter) {
        std::vector<std::string> args = {"securemqtt_e2e_bench", "--subscriber", filter, "-h", c.host,
                                         "-p", std::to_string(c.port), "--cafile", c.cafile, "--certdir",
                                         c.certdir, "-q", std::to_string(c.qos)};
        if (!location.empty()) args.insert(args.end(), {"--replay-store", location});
        if (c.replay_window > 0) args.insert(args.end(), {"--replay-window", std::to_string(c.replay_window)});
        if (c.stream) args.push_back("--stream");
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(&a[0]);
        argv.push_back(nullptr);
        int down[2];
        int up[2];
        if (::pipe2(down, O_CLOEXEC) != 0 || ::pipe2(up, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        posix_spawn_file_actions_adddup2(&actions, down[0], 0);
        posix_spawn_file_actions_adddup2(&actions, up[1], 1);
        const int rc = ::posix_spawn(&pid, self_path().c_str(), &actions, nullptr, argv.data(), environ);
        posix_spawn_file_actions_destroy(&actions);
        ::close(down[0]);
        ::close(up[1]);
        to = fdopen(down[1], "w");
        from = fdopen(up[0], "r");
        if (rc != 0) {
            std::fclose(to);
            std::fclose(from);
            throw std::runtime_error("could not start a subscriber process");
        }
    }
    ~SubscriberHandle() {
        if (to != nullptr) std::fclose(to);  // end of input: the subscriber disconnects and ends
        if (from != nullptr) std::fclose(from);
        int status = 0;
        if (pid > 0) ::waitpid(pid, &status, 0);
    }
    SubscriberHandle(const SubscriberHandle&) = delete;
    SubscriberHandle& operator=(const SubscriberHandle&) = delete;

    std::string ask(const char* command) {
        if (command != nullptr) {
            std::fprintf(to, "%s\n", command);
            std::fflush(to);
        }
        std::string line;
        int ch = 0;
        while ((ch = std::fgetc(from)) != EOF && ch != '\n') line += static_cast<char>(ch);
        if (ch == EOF && line.empty()) throw std::runtime_error("a subscriber process ended");
        return line;
    }
};

// Calls of EVALSHA the Redis server at a redis://HOST:PORT location has served so far (from
// `redis-cli INFO commandstats`), or -1 when that cannot be read (not Redis, no redis-cli).
// The store runs each reservation and each commit as one EVALSHA; commands its scripts run
// inside Redis are counted apart (cmdstat_hget, ...) and are not requests.
long long redis_evalsha_calls(const std::string& location) {
    static const std::string scheme = "redis://";
    if (location.rfind(scheme, 0) != 0) return -1;
    std::string hostport = location.substr(scheme.size());
    hostport = hostport.substr(0, hostport.find_first_of("/,?"));
    const std::size_t colon = hostport.rfind(':');
    if (colon == std::string::npos) return -1;
    std::string host = hostport.substr(0, colon);
    const std::string port = hostport.substr(colon + 1);
    if (!host.empty() && host.front() == '[') host = host.substr(1, host.size() - 2);
    if (host.empty() || port.empty() || host.find_first_of("'\"\\ ") != std::string::npos ||
        port.find_first_not_of("0123456789") != std::string::npos) {
        return -1;
    }
    const std::string cmd = "redis-cli -h '" + host + "' -p " + port + " INFO commandstats 2>/dev/null";
    FILE* out = ::popen(cmd.c_str(), "r");
    if (out == nullptr) return -1;
    long long calls = -1;
    char line[512];
    while (std::fgets(line, sizeof line, out) != nullptr) {
        if (std::strncmp(line, "cmdstat_evalsha:calls=", 22) == 0) calls = std::atoll(line + 22);
    }
    const int status = ::pclose(out);
    if (status != 0) return -1;
    return calls < 0 ? 0 : calls;  // no line yet: no EVALSHA served
}

// One round: start the subscribers (store at `location`, or memory when empty), publish c.n
// messages and wait for the publisher's PUBACKs, so all of them are at the broker (each
// subscriber holding the first one it was given, the rest queued at the broker); then "go" to
// every subscriber, and measure the group's verified messages per second from "go" to the last
// arrival at any subscriber: what the subscribers sustain working through a backlog, whatever
// the publisher's pace. With --stream, no hold: the rate is taken from the first arrival to the
// last, while the publisher is still sending (bounded by the publisher's pace). Also the
// subscribers' CPU time per message and, for Redis, the EVALSHA calls per verified message.
struct StoreRound {
    double msgs_per_s = 0;      // verified / (last arrival - go), or (verified - 1) / (last - first arrival)
    double e2e_msgs_per_s = 0;  // verified / (last arrival - first publish): includes the hold
    double cpu_us_per_msg = 0;
    double published_s = 0;     // when the publish loop returned, seconds after the first publish
    double flushed_s = 0;       // when the publisher had every PUBACK, seconds after the first publish
    double evalsha_per_msg = -1;  // Redis requests per verified message; -1: not counted
    long long verified = 0;
    long long rejected = 0;
    std::string reasons;  // rejections by reason, summed over the subscribers
};

void add_reasons(std::vector<std::pair<std::string, long long>>& sum, const std::string& text) {
    if (text == "-") return;
    std::istringstream in(text);
    std::string item;
    while (std::getline(in, item, ',')) {
        const std::size_t eq = item.find('=');
        if (eq == std::string::npos) continue;
        const std::string name = item.substr(0, eq);
        const long long n = std::atoll(item.c_str() + eq + 1);
        auto it = std::find_if(sum.begin(), sum.end(), [&](const auto& p) { return p.first == name; });
        if (it == sum.end()) sum.emplace_back(name, n);
        else it->second += n;
    }
}

StoreRound store_round(const Config& c, const std::string& location, SecureSession& pub) {
    const int count = std::max(1, c.shared);
    const std::string filter = c.shared > 0 ? "$share/bench/" + c.topic : c.topic;
    std::vector<std::unique_ptr<SubscriberHandle>> subs;
    for (int i = 0; i < count; ++i) {
        subs.push_back(std::make_unique<SubscriberHandle>(c, replace_all(location, "{i}", std::to_string(i)), filter));
    }
    for (auto& s : subs) {
        const std::string line = s->ask(nullptr);
        if (line.rfind("error ", 0) == 0) throw std::runtime_error(line.substr(6));
        if (line != "ready") throw std::runtime_error("subscriber did not start: " + line);
    }
    const long long evalsha0 = location.empty() ? -1 : redis_evalsha_calls(location);
    const std::string payload(c.size, 'x');
    const double t0 = now_us();
    for (int i = 0; i < c.n; ++i) pub.publish(c.topic, payload, static_cast<QoS>(c.qos));
    const double published = now_us();
    pub.flush(std::chrono::seconds(60));
    const double flushed = now_us();
    // Ask for the counts until every message is accounted for, verified or rejected (the rates
    // are taken from the arrival times, so the polling does not enter them).
    long long received = 0;
    if (!c.stream) {
        for (auto& s : subs) {
            std::fprintf(s->to, "go\n");
            std::fflush(s->to);
        }
    }
    double first = 0;
    double last = 0;
    double go = 0;
    double cpu = 0;
    unsigned long long failures = 0;
    long long rejected = 0;
    std::vector<std::pair<std::string, long long>> reasons;
    const double deadline = now_us() + 120e6;
    for (;;) {
        received = rejected = 0;
        first = go = std::numeric_limits<double>::max();
        last = cpu = 0;
        failures = 0;
        reasons.clear();
        for (auto& s : subs) {
            std::istringstream in(s->ask("count"));
            long long n = 0;
            double f = 0;
            double l = 0;
            double g = 0;
            double u = 0;
            unsigned long long fails = 0;
            long long r = 0;
            std::string why;
            in >> n >> f >> l >> g >> u >> fails >> r >> why;
            received += n;
            if (n > 0) first = std::min(first, f);
            go = std::min(go, g);
            last = std::max(last, l);
            cpu += u;
            failures += fails;
            rejected += r;
            add_reasons(reasons, why);
        }
        if (received + rejected >= c.n || now_us() > deadline) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    const long long evalsha1 = evalsha0 < 0 ? -1 : redis_evalsha_calls(location);
    StoreRound r;
    for (const auto& p : reasons) r.reasons += (r.reasons.empty() ? "" : ",") + p.first + "=" + std::to_string(p.second);
    if (received + rejected < c.n) {
        std::cerr << "warning: " << received << " of " << c.n << " messages arrived, " << rejected << " rejected\n";
    }
    if (failures != 0) std::cerr << "warning: " << failures << " replay store writes failed\n";
    if (rejected != 0) std::cerr << "warning: messages rejected (" << r.reasons << ")\n";
    r.verified = received;
    r.rejected = rejected;
    r.msgs_per_s = c.stream ? (received > 1 ? rate(static_cast<double>(received - 1), first, last) : 0)
                            : rate(static_cast<double>(received), go, last);
    r.e2e_msgs_per_s = rate(static_cast<double>(received), t0, last);
    r.cpu_us_per_msg = received > 0 ? cpu / static_cast<double>(received) : 0;
    r.published_s = (published - t0) / 1e6;
    r.flushed_s = (flushed - t0) / 1e6;
    if (evalsha0 >= 0 && evalsha1 >= evalsha0 && received > 0) {
        r.evalsha_per_msg = static_cast<double>(evalsha1 - evalsha0) / static_cast<double>(received);
    }
    return r;
}

std::string json_list(const std::vector<double>& v, int decimals) {
    std::string out;
    char number[32];
    for (double x : v) {
        std::snprintf(number, sizeof number, "%.*f", decimals, x);
        out += (out.empty() ? "" : ",") + std::string(number);
    }
    return "[" + out + "]";
}

std::string json_string(const std::string& s) {
    std::string out = "\"";
    for (char ch : s) {
        if (ch == '"' || ch == '\\') out += '\\';
        if (static_cast<unsigned char>(ch) >= 0x20) out += ch;
    }
    return out + "\"";
}

int compare_store(const Config& c) {
    std::signal(SIGPIPE, SIG_IGN);  // a subscriber that ended is reported, not fatal here
    const int buffer = c.n + 1000;
    const int window = publisher_window(c);
    SecureSession pub(session_options(c, "device-1", buffer, window));
    pub.connect();
    std::vector<StoreRound> store, memory;
    std::vector<double> pair_ratios;
    for (int r = 0; r < c.rounds; ++r) {  // alternate which goes first, so drift affects both alike
        const std::string location = replace_all(c.store, "{n}", std::to_string(r));
        if (r % 2 == 0) {
            store.push_back(store_round(c, location, pub));
            memory.push_back(store_round(c, "", pub));
        } else {
            memory.push_back(store_round(c, "", pub));
            store.push_back(store_round(c, location, pub));
        }
        if (memory.back().msgs_per_s > 0) pair_ratios.push_back(store.back().msgs_per_s / memory.back().msgs_per_s);
        std::this_thread::sleep_for(std::chrono::milliseconds(200));  // let the broker drain
    }
    pub.disconnect();
    const auto field = [](const std::vector<StoreRound>& rounds, double StoreRound::*f) {
        std::vector<double> v;
        for (const auto& r : rounds) v.push_back(r.*f);
        return v;
    };
    const auto store_rates = field(store, &StoreRound::msgs_per_s);
    const auto memory_rates = field(memory, &StoreRound::msgs_per_s);
    const double s = median(store_rates);
    const double m = median(memory_rates);
    const double s_e2e = median(field(store, &StoreRound::e2e_msgs_per_s));
    const double m_e2e = median(field(memory, &StoreRound::e2e_msgs_per_s));
    const double s_cpu = median(field(store, &StoreRound::cpu_us_per_msg));
    const double m_cpu = median(field(memory, &StoreRound::cpu_us_per_msg));
    const auto evalsha = field(store, &StoreRound::evalsha_per_msg);
    const double evalsha_median = median(evalsha);
    const double ratio = median(pair_ratios);
    long long store_rejected = 0;
    long long memory_rejected = 0;
    std::vector<std::pair<std::string, long long>> store_reasons;
    for (const auto& r : store) {
        store_rejected += r.rejected;
        add_reasons(store_reasons, r.reasons.empty() ? "-" : r.reasons);
    }
    for (const auto& r : memory) memory_rejected += r.rejected;
    std::string reasons;
    for (const auto& p : store_reasons) reasons += (reasons.empty() ? "" : ",") + p.first + "=" + std::to_string(p.second);
    const int subscribers = std::max(1, c.shared);
    std::printf("end to end with a replay store, %d messages of %zu bytes at QoS %d, %d subscriber process%s%s, "
                "median of %d rounds, mTLS over loopback; msg/s: verified messages %s; publisher in-flight window %d%s\n",
                c.n, c.size, c.qos, subscribers, subscribers > 1 ? "es" : "", c.shared > 0 ? " on $share/bench/" : "",
                c.rounds,
                c.stream ? "from the first arrival to the last (streaming)"
                         : "from \"go\" to the last arrival, working through a backlog queued at the broker",
                window, c.replay_window > 0 ? (", replay window " + std::to_string(c.replay_window)).c_str() : "");
    std::printf("  %-12s %10.0f msg/s   subscriber CPU %6.1f us/msg   (%s)\n", "store", s, s_cpu, c.store.c_str());
    std::printf("  %-12s %10.0f msg/s   subscriber CPU %6.1f us/msg\n", "in memory", m, m_cpu);
    std::printf("  ratio store/memory (median of paired rounds): %.3f\n", ratio);
    if (evalsha_median >= 0) std::printf("  Redis EVALSHA calls per verified message: %.2f\n", evalsha_median);
    if (store_rejected + memory_rejected > 0) {
        std::printf("  rejected: store rounds %lld (%s), memory rounds %lld\n", store_rejected, reasons.c_str(),
                    memory_rejected);
    }
    std::printf("{\"qos\":%d,\"size\":%zu,\"messages\":%d,\"subscribers\":%d,\"rounds\":%d,\"window\":%d,"
                "\"replay_window\":%zu,\"backlog\":%s,"
                "\"store_msgs_per_s\":%.0f,\"memory_msgs_per_s\":%.0f,\"ratio\":%.3f,\"store_e2e_msgs_per_s\":%.0f,"
                "\"memory_e2e_msgs_per_s\":%.0f,\"store_cpu_us_per_msg\":%.1f,\"memory_cpu_us_per_msg\":%.1f,"
                "\"evalsha_per_msg\":%.3f,\"store_rejected\":%lld,\"memory_rejected\":%lld,\"store_reject_reasons\":%s,"
                "\"store_rounds\":%s,\"memory_rounds\":%s,\"pair_ratios\":%s,\"store_published_s\":%s,"
                "\"memory_published_s\":%s,\"store_flushed_s\":%s,\"memory_flushed_s\":%s,\"store_evalsha_per_msg\":%s}\n",
                c.qos, c.size, c.n, subscribers, c.rounds, window, c.replay_window, c.stream ? "false" : "true", s, m, ratio, s_e2e, m_e2e, s_cpu, m_cpu,
                evalsha_median, store_rejected, memory_rejected, json_string(reasons).c_str(),
                json_list(store_rates, 0).c_str(), json_list(memory_rates, 0).c_str(), json_list(pair_ratios, 3).c_str(),
                json_list(field(store, &StoreRound::published_s), 2).c_str(),
                json_list(field(memory, &StoreRound::published_s), 2).c_str(),
                json_list(field(store, &StoreRound::flushed_s), 2).c_str(),
                json_list(field(memory, &StoreRound::flushed_s), 2).c_str(), json_list(evalsha, 3).c_str());
    return 0;
}

}  // namespace

int main(int argc, char** argv) try {
    Config c;
    std::string subscriber_filter;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        const auto next = [&]() -> std::string {
            if (i + 1 >= argc) throw std::runtime_error(a + " needs a value");
            return argv[++i];
        };
        if (a == "-n") c.n = std::stoi(next());
        else if (a == "-s") c.size = std::stoul(next());
        else if (a == "-q") c.qos = std::stoi(next());
        else if (a == "-r") c.rounds = std::stoi(next());
        else if (a == "-h") c.host = next();
        else if (a == "-p") c.port = std::stoi(next());
        else if (a == "--cafile") c.cafile = next();
        else if (a == "--certdir") c.certdir = next();
        else if (a == "--replay-store") c.store = next();
        else if (a == "--shared") c.shared = std::stoi(next());
        else if (a == "--window") c.window = std::stoi(next());
        else if (a == "--replay-window") c.replay_window = std::stoul(next());
        else if (a == "--stream") c.stream = true;
        else if (a == "--subscriber") subscriber_filter = next();
        else if (a == "--help") {
            std::cout << "usage: securemqtt_e2e_bench [-n N] [-s BYTES] [-q 0|1] [-r ROUNDS] [--window W] "
                         "[-h HOST -p PORT --cafile CA --certdir DIR] [--replay-store LOCATION [--shared K] [--replay-window W] "
                         "[--stream]]\n";
            return 0;
        } else throw std::runtime_error("unknown option " + a);
    }
    if (!subscriber_filter.empty()) return subscriber_process(c, subscriber_filter);
    if (c.port == 0) start_broker(c);
    if (!c.store.empty()) {
        const int status = compare_store(c);
        stop_broker();
        return status;
    }
    // Fork the subscriber before any Paho thread exists in this process.
    int down[2];
    int up[2];
    if (::pipe(down) != 0 || ::pipe(up) != 0) throw std::runtime_error("pipe failed");
    const pid_t pid = ::fork();
    if (pid < 0) throw std::runtime_error("fork failed");
    if (pid == 0) {
        ::close(down[1]);
        ::close(up[0]);
        try {
            SubscriberProcess().run(c, down[0], up[1]);
        } catch (const std::exception& e) {
            std::cerr << "subscriber: " << e.what() << '\n';
            std::_Exit(1);
        }
        std::_Exit(0);
    }
    ::close(down[0]);
    ::close(up[1]);
    Child child{fdopen(down[1], "w"), fdopen(up[0], "r"), pid};
    if (child.ask("") != "ready") throw std::runtime_error("subscriber did not start");

    const int buffer = c.n + 1000;  // both kinds alike: the whole burst fits Paho's buffer
    const int window = publisher_window(c);
    double connect_ms = 0;
    double raw_connect_ms = 0;
    std::vector<double> signed_rates, raw_rates, signed_e2e, raw_e2e;
    std::pair<double, double> signed_lat, raw_lat;
    {
        // Paho C 1.3.12 makes every client after the first in a process wait ~2 s to connect
        // (eclipse-paho/paho.mqtt.c#1430): connect times are each process's first client.
        SecureSession pub(session_options(c, "device-1", buffer, window));
        const auto t0 = SteadyClock::now();
        pub.connect();
        connect_ms = std::chrono::duration<double, std::milli>(SteadyClock::now() - t0).count();
        mqtt::async_client raw(raw_uri(c), "raw-pub", mqtt::create_options(MQTTVERSION_3_1_1, buffer), nullptr);
        const auto t1 = SteadyClock::now();
        raw.connect(raw_options(c, "device-1", window))->wait();
        raw_connect_ms = std::chrono::duration<double, std::milli>(SteadyClock::now() - t1).count();

        const auto signed_publish = [&](const std::string& p) { pub.publish(c.topic, p, static_cast<QoS>(c.qos)); };
        const auto signed_flush = [&] { pub.flush(std::chrono::seconds(60)); };
        const auto raw_publish = [&](const std::string& p) { raw.publish(c.raw_topic, p.data(), p.size(), c.qos, false); };
        const auto raw_flush = [&] {
            for (const auto& t : raw.get_pending_delivery_tokens()) t->wait_for(std::chrono::seconds(60));
        };
        for (int r = 0; r < c.rounds; ++r) {  // alternate which goes first, so drift affects both alike
            const auto raw_round = [&] {
                const RoundResult rr = round_trip(child, "raw", c.n, false, c, raw_publish, raw_flush);
                raw_rates.push_back(rr.msgs_per_s);
                raw_e2e.push_back(rr.e2e_msgs_per_s);
            };
            const auto signed_round = [&] {
                const RoundResult rr = round_trip(child, "signed", c.n, false, c, signed_publish, signed_flush);
                signed_rates.push_back(rr.msgs_per_s);
                signed_e2e.push_back(rr.e2e_msgs_per_s);
            };
            if (r % 2 == 0) {
                raw_round();
                signed_round();
            } else {
                signed_round();
                raw_round();
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(200));  // let the broker drain
        }
        signed_lat = percentiles(round_trip(child, "signed", c.latency_count, true, c, signed_publish, signed_flush).latencies);
        raw_lat = percentiles(round_trip(child, "raw", c.latency_count, true, c, raw_publish, raw_flush).latencies);
        raw.disconnect()->wait();
    }
    std::fclose(child.to);
    int status = 0;
    ::waitpid(child.pid, &status, 0);
    std::fclose(child.from);
    stop_broker();
    const double s = median(signed_rates);
    const double r = median(raw_rates);
    // The ratio pairs each signed round with the raw round next to it: the machine's speed
    // drifts over seconds, and a ratio of two medians taken apart would carry that drift.
    std::vector<double> pair_ratios;
    for (std::size_t i = 0; i < signed_rates.size() && i < raw_rates.size(); ++i) {
        if (raw_rates[i] > 0) pair_ratios.push_back(signed_rates[i] / raw_rates[i]);
    }
    const double ratio = median(pair_ratios);
    std::printf("end to end, %d messages of %zu bytes at QoS %d, median of %d rounds, mTLS over loopback; msg/s: the\n"
                "subscriber's first to last arrival (first publish to last arrival: signed %.0f, raw %.0f); publisher "
                "in-flight window %d\n",
                c.n, c.size, c.qos, c.rounds, median(signed_e2e), median(raw_e2e), window);
    std::printf("  %-28s %12.0f msg/s   latency p50 %7.0f us  p99 %7.0f us  (at %d msg/s)\n", "securemqtt signed+verified",
                s, signed_lat.first, signed_lat.second, c.latency_rate);
    std::printf("  %-28s %12.0f msg/s   latency p50 %7.0f us  p99 %7.0f us\n", "raw Paho, no signing", r,
                raw_lat.first, raw_lat.second);
    std::printf("  ratio signed/raw (median of paired rounds): %.3f   connect: %.1f ms (raw Paho %.1f ms)   peak RSS %ld KiB\n",
                ratio, connect_ms, raw_connect_ms, peak_rss_kb());
    std::printf("{\"qos\":%d,\"size\":%zu,\"messages\":%d,\"signed_msgs_per_s\":%.0f,\"raw_msgs_per_s\":%.0f,"
                "\"ratio\":%.3f,\"p50_us\":%.0f,\"p99_us\":%.0f,\"raw_p50_us\":%.0f,\"raw_p99_us\":%.0f,"
                "\"connect_ms\":%.1f,\"raw_connect_ms\":%.1f,\"peak_rss_kb\":%ld,\"window\":%d,"
                "\"signed_e2e_msgs_per_s\":%.0f,\"raw_e2e_msgs_per_s\":%.0f,\"signed_rounds\":%s,\"raw_rounds\":%s,"
                "\"pair_ratios\":%s}\n",
                c.qos, c.size, c.n, s, r, ratio, signed_lat.first, signed_lat.second, raw_lat.first,
                raw_lat.second, connect_ms, raw_connect_ms, peak_rss_kb(), window, median(signed_e2e), median(raw_e2e),
                json_list(signed_rates, 0).c_str(), json_list(raw_rates, 0).c_str(), json_list(pair_ratios, 3).c_str());
    return 0;
} catch (const std::exception& e) {
    stop_broker();
    std::cerr << "securemqtt_e2e_bench: " << e.what() << '\n';
    return 1;
}
