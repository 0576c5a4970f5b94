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
// ratio, p50_us, p99_us, connect_ms and more.
#include <securemqtt/securemqtt.hpp>

#include <mqtt/async_client.h>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

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
};

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
        last_us = t;
        if (++count >= expected) cv.notify_all();
    }
    void reset(int n, bool latency) {
        std::lock_guard<std::mutex> lock(mutex);
        count = 0;
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
    double last_us = 0;
    std::vector<double> latencies;
};

std::string payload_with_time(std::size_t size) {
    std::string p(std::max(size, sizeof(double)), 'x');
    const double t = now_us();
    std::memcpy(&p[0], &t, sizeof t);
    return p;
}

SessionOptions session_options(const Config& c, const std::string& who, int buffer) {
    SessionOptions o;
    o.server_uri = "mqtts://" + c.host + ":" + std::to_string(c.port);
    o.tls.ca_file = c.cafile;
    o.tls.cert_file = c.certdir + "/" + who + ".pem";
    o.tls.key_file = c.certdir + "/" + who + ".key";
    o.keyring = std::make_shared<Keyring>();
    o.keyring->add_key_hex("bench", std::string(64, 'a'));
    o.keyring->set_signing_key("bench");
    o.offline_buffer = buffer;
    return o;
}

mqtt::connect_options raw_options(const Config& c, const std::string& who) {
    mqtt::ssl_options ssl;
    ssl.set_trust_store(c.cafile);
    ssl.set_key_store(c.certdir + "/" + who + ".pem");
    ssl.set_private_key(c.certdir + "/" + who + ".key");
    ssl.set_verify(true);
    mqtt::connect_options o;
    o.set_ssl(std::move(ssl));
    o.set_clean_session(true);
    o.set_max_inflight(SessionOptions{}.max_inflight);  // the same window as the session
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
        sub.subscribe(c.topic, c.qos, [this](const Message& m) { signed_rx.arrived(m.payload.data(), m.payload.size()); });
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
            out << (all ? 1 : 0) << ' ' << rx.count << ' ' << rx.last_us;
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

struct RoundResult {
    double msgs_per_s = 0;
    std::vector<double> latencies;
};

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
    double last = 0;
    in >> all >> count >> last;
    RoundResult r;
    double v = 0;
    while (in >> v) r.latencies.push_back(v);
    if (!all) std::cerr << "warning: " << count << " of " << n << " " << kind << " messages arrived\n";
    r.msgs_per_s = last > t0 ? count / ((last - t0) / 1e6) : 0;
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

}  // namespace

int main(int argc, char** argv) try {
    Config c;
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
        else if (a == "--help") {
            std::cout << "usage: securemqtt_e2e_bench [-n N] [-s BYTES] [-q 0|1] [-r ROUNDS] "
                         "[-h HOST -p PORT --cafile CA --certdir DIR]\n";
            return 0;
        } else throw std::runtime_error("unknown option " + a);
    }
    if (c.port == 0) start_broker(c);
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
    double connect_ms = 0;
    double raw_connect_ms = 0;
    std::vector<double> signed_rates, raw_rates;
    std::pair<double, double> signed_lat, raw_lat;
    {
        // Paho C 1.3.12 makes every client after the first in a process wait ~2 s to connect
        // (eclipse-paho/paho.mqtt.c#1430): connect times are each process's first client.
        SecureSession pub(session_options(c, "device-1", buffer));
        const auto t0 = SteadyClock::now();
        pub.connect();
        connect_ms = std::chrono::duration<double, std::milli>(SteadyClock::now() - t0).count();
        mqtt::async_client raw(raw_uri(c), "raw-pub", mqtt::create_options(MQTTVERSION_3_1_1, buffer), nullptr);
        const auto t1 = SteadyClock::now();
        raw.connect(raw_options(c, "device-1"))->wait();
        raw_connect_ms = std::chrono::duration<double, std::milli>(SteadyClock::now() - t1).count();

        const auto signed_publish = [&](const std::string& p) { pub.publish(c.topic, p, c.qos); };
        const auto signed_flush = [&] { pub.flush(std::chrono::seconds(60)); };
        const auto raw_publish = [&](const std::string& p) { raw.publish(c.raw_topic, p.data(), p.size(), c.qos, false); };
        const auto raw_flush = [&] {
            for (const auto& t : raw.get_pending_delivery_tokens()) t->wait_for(std::chrono::seconds(60));
        };
        for (int r = 0; r < c.rounds; ++r) {  // alternate which goes first, so drift affects both alike
            const auto raw_round = [&] {
                raw_rates.push_back(round_trip(child, "raw", c.n, false, c, raw_publish, raw_flush).msgs_per_s);
            };
            const auto signed_round = [&] {
                signed_rates.push_back(round_trip(child, "signed", c.n, false, c, signed_publish, signed_flush).msgs_per_s);
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
    std::printf("end to end, %d messages of %zu bytes at QoS %d, median of %d rounds, mTLS over loopback\n", c.n,
                c.size, c.qos, c.rounds);
    std::printf("  %-28s %12.0f msg/s   latency p50 %7.0f us  p99 %7.0f us  (at %d msg/s)\n", "securemqtt signed+verified",
                s, signed_lat.first, signed_lat.second, c.latency_rate);
    std::printf("  %-28s %12.0f msg/s   latency p50 %7.0f us  p99 %7.0f us\n", "raw Paho, no signing", r,
                raw_lat.first, raw_lat.second);
    std::printf("  ratio signed/raw (median of paired rounds): %.3f   connect: %.1f ms (raw Paho %.1f ms)   peak RSS %ld KiB\n",
                ratio, connect_ms, raw_connect_ms, peak_rss_kb());
    std::printf("{\"qos\":%d,\"size\":%zu,\"messages\":%d,\"signed_msgs_per_s\":%.0f,\"raw_msgs_per_s\":%.0f,"
                "\"ratio\":%.3f,\"p50_us\":%.0f,\"p99_us\":%.0f,\"raw_p50_us\":%.0f,\"raw_p99_us\":%.0f,"
                "\"connect_ms\":%.1f,\"raw_connect_ms\":%.1f,\"peak_rss_kb\":%ld}\n",
                c.qos, c.size, c.n, s, r, ratio, signed_lat.first, signed_lat.second, raw_lat.first,
                raw_lat.second, connect_ms, raw_connect_ms, peak_rss_kb());
    return 0;
} catch (const std::exception& e) {
    stop_broker();
    std::cerr << "securemqtt_e2e_bench: " << e.what() << '\n';
    return 1;
}
