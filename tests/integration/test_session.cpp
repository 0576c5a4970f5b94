// SPDX-License-Identifier: Apache-2.0
// SecureSession's API against a real Mosquitto over mutual TLS (started by this program with
// scripts/local_broker.py): counters, rejection reporting, credentials from memory, handler
// errors, connect failure reasons and what the logger may see.
#include "support/catch.hpp"
#include "support/test_util.hpp"
#include "session_fixture.hpp"

#include <securemqtt/securemqtt.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>
#include <stdlib.h>

using namespace securemqtt;
namespace fs = std::filesystem;

using namespace sessiontest;

TEST_CASE("publish and subscribe through the broker, with counters", "[session][integration]") {
    SecureSession sub(options_for("monitor"));
    Inbox inbox;
    sub.subscribe("devices/device-1/counters/#", QoS::at_least_once, inbox.handler());
    sub.connect();
    SecureSession pub(options_for("device-1"));
    pub.connect();
    for (int i = 0; i < 20; ++i) pub.publish("devices/device-1/counters/x", "m" + std::to_string(i), static_cast<QoS>(i % 3));
    REQUIRE(pub.flush(std::chrono::seconds(10)));
    REQUIRE(inbox.wait(20));
    // Mixed QoS levels may overtake each other; each message arrives once.
    std::vector<std::string> expected;
    for (int i = 0; i < 20; ++i) expected.push_back("m" + std::to_string(i));
    std::vector<std::string> got = inbox.payloads;
    std::sort(got.begin(), got.end());
    std::sort(expected.begin(), expected.end());
    CHECK(got == expected);
    CHECK(pub.stats().published == 20);
    CHECK(sub.stats().verified == 20);
    CHECK(sub.stats().rejected == 0);
    // Paho reports a connection made by connect() after that call may have returned: it must
    // not be taken for a reconnection (which would also subscribe a second time).
    CHECK(sub.stats().reconnects == 0);
    CHECK(pub.stats().reconnects == 0);
    CHECK(sub.preflight().client_subject == "CN=monitor");
}

TEST_CASE("credentials given as PEM text in memory", "[session][integration]") {
    SessionOptions o = options_for("device-1");
    o.tls.ca_pem = testutil::read_file(o.tls.ca_file);
    o.tls.cert_pem = testutil::read_file(o.tls.cert_file);
    o.tls.key_pem = testutil::read_file(o.tls.key_file);
    o.tls.ca_file.clear();
    o.tls.cert_file.clear();
    o.tls.key_file.clear();
    SecureSession session(o);
    session.connect();
    session.publish("devices/device-1/memory", std::string("from memory"), QoS::at_least_once);
    // No limit at all: the deadline saturates (a plain now + max overflowed into "already past").
    CHECK(session.flush(std::chrono::milliseconds::max()));
    session.disconnect();
}

TEST_CASE("rejected messages are counted by reason and reported, never delivered", "[session][integration]") {
    SecureSession sub(options_for("monitor"));
    Inbox inbox;
    std::mutex m;
    std::vector<std::string> rejected;
    sub.on_rejected([&](std::string_view topic, RejectReason reason) {
        std::lock_guard<std::mutex> lock(m);
        rejected.push_back(std::string(to_string(reason)) + " " + std::string(topic));
    });
    sub.subscribe("devices/device-1/rejects", QoS::at_least_once, inbox.handler());
    sub.connect();
    const std::string certs = broker().certs.string();
    const std::string cmd = "mosquitto_pub -h localhost -p " + std::to_string(broker().port) + " --cafile " + certs +
                            "/ca.pem --cert " + certs + "/device-1.pem --key " + certs +
                            "/device-1.key -q 1 -t devices/device-1/rejects -m 'not an envelope'";
    REQUIRE(std::system(cmd.c_str()) == 0);
    SecureSession pub(options_for("device-1"));
    pub.connect();
    pub.publish("devices/device-1/rejects", std::string("genuine"), QoS::at_least_once);
    REQUIRE(inbox.wait(1));
    CHECK(inbox.payloads == std::vector<std::string>{"genuine"});
    CHECK(sub.stats().rejected_for(RejectReason::malformed) == 1);
    CHECK(sub.stats().rejected == 1);
    std::lock_guard<std::mutex> lock(m);
    CHECK(rejected == std::vector<std::string>{"malformed devices/device-1/rejects"});
}

TEST_CASE("a handler that throws is counted and logged; delivery goes on", "[session][integration]") {
    std::vector<std::string> log;
    std::mutex log_mutex;
    SecureSession sub(options_for("monitor", &log, &log_mutex));
    std::atomic<int> calls{0};
    sub.subscribe("devices/device-1/throws", QoS::at_least_once, [&](const Message&) {
        if (calls.fetch_add(1) == 0) throw std::runtime_error("handler failure");
    });
    sub.connect();
    SecureSession pub(options_for("device-1"));
    pub.connect();
    pub.publish("devices/device-1/throws", std::string("1"), QoS::at_least_once);
    pub.publish("devices/device-1/throws", std::string("2"), QoS::at_least_once);
    for (int i = 0; i < 100 && calls.load() < 2; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    CHECK(calls.load() == 2);
    CHECK(sub.stats().handler_errors == 1);
    std::lock_guard<std::mutex> lock(log_mutex);
    bool logged = false;
    for (const auto& line : log) logged = logged || line.find("handler failure") != std::string::npos;
    CHECK(logged);
}

TEST_CASE("publishes made while disconnected wait in a bounded buffer; overflow is refused loudly",
          "[session][integration]") {
    SecureSession sub(options_for("monitor"));
    Inbox inbox;
    sub.subscribe("devices/device-1/offline", QoS::at_least_once, inbox.handler());
    sub.connect();
    SessionOptions o = options_for("device-1");
    o.offline_buffer = 5;
    SecureSession pub(o);
    for (int i = 0; i < 5; ++i) pub.publish("devices/device-1/offline", "queued-" + std::to_string(i), QoS::at_least_once);
    try {
        pub.publish("devices/device-1/offline", std::string("one too many"), QoS::at_least_once);
        FAIL("the sixth publish was accepted into a buffer of five");
    } catch (const PublishError& e) {
        CHECK(e.status() == OutcomeStatus::buffer_full);
        CHECK(e.reason() == ConnectFailure::buffer_full);  // as a ConnectionError, for older code
        CHECK(dynamic_cast<const ConnectionError*>(&e) != nullptr);
    }
    CHECK(pub.stats().publish_failures == 1);
    pub.connect();  // the buffered messages go out now
    REQUIRE(inbox.wait(5));
    CHECK(inbox.payloads == std::vector<std::string>{"queued-0", "queued-1", "queued-2", "queued-3", "queued-4"});
}

TEST_CASE("a certificate renewed on disk is taken up by reload() without losing queued messages",
          "[session][integration][fault]") {
    const std::string certs = broker().certs.string();
    const auto make_cert = [&](const char* days) {
        const std::string cmd = std::string(SECUREMQTT_SOURCE_DIR "/certs/generate_client_cert.sh") + " rotating --out " +
                                certs + " --days " + days + " > /dev/null";
        REQUIRE(std::system(cmd.c_str()) == 0);
    };
    make_cert("10");
    SecureSession sub(options_for("monitor"));
    Inbox inbox;
    sub.subscribe("devices/rotating/#", QoS::at_least_once, inbox.handler());
    sub.connect();
    SecureSession pub(options_for("rotating"));
    CHECK(pub.preflight().warnings.size() == 1);  // expires within 30 days
    const std::int64_t old_expiry = pub.preflight().client_not_after_ms;
    pub.connect();
    for (int i = 0; i < 100; ++i) pub.publish("devices/rotating/t", "before-" + std::to_string(i), QoS::at_least_once);
    make_cert("365");  // renewed on disk: new key, new certificate
    pub.reload();      // some of the 100 may still be unacknowledged: carried over
    CHECK(pub.preflight().client_not_after_ms > old_expiry);
    CHECK(pub.preflight().warnings.empty());
    CHECK(pub.is_connected());
    for (int i = 0; i < 100; ++i) pub.publish("devices/rotating/t", "after-" + std::to_string(i), QoS::at_least_once);
    REQUIRE(pub.flush(std::chrono::seconds(20)));
    // A marker published last: the broker delivers one publisher's QoS 1 messages in order, so
    // once it is in, any duplicate of the 200 is in too.
    pub.publish("devices/rotating/t", std::string("marker"), QoS::at_least_once);
    REQUIRE(pub.flush(std::chrono::seconds(20)));
    REQUIRE(inbox.wait(201));
    std::lock_guard<std::mutex> lock(inbox.mutex);
    REQUIRE(inbox.payloads.back() == "marker");
    std::vector<std::string> got(inbox.payloads.begin(), inbox.payloads.end() - 1);
    std::sort(got.begin(), got.end());
    CHECK(std::unique(got.begin(), got.end()) == got.end());
    CHECK(got.size() == 200);
    CHECK(sub.stats().rejected == sub.stats().rejected_for(RejectReason::replayed));  // only dropped copies
}

TEST_CASE("reload() with credentials that fail the preflight keeps the current connection", "[session][integration]") {
    SecureSession pub(options_for("device-1"));
    pub.connect();
    TlsOptions bad = broker().tls("device-1");
    bad.key_file = (broker().certs / "monitor.key").string();
    CHECK_THROWS_WITH(pub.reload(bad), Catch::Contains("does not match certificate"));
    CHECK(pub.is_connected());
    pub.publish("devices/device-1/still", std::string("ok"), QoS::at_least_once);
    CHECK(pub.flush(std::chrono::seconds(10)));
}

TEST_CASE("preflight() may be read while reload() replaces the report on another thread",
          "[session][integration]") {
    // Run under TSan (label concurrency): a reference into the session's report would race here.
    SecureSession pub(options_for("device-1"));
    std::atomic<bool> stop{false};
    std::atomic<int> reads{0};
    std::thread reader([&] {
        while (!stop) {
            const PreflightReport r = pub.preflight();
            if (r.client_subject == "CN=device-1") ++reads;
        }
    });
    for (int i = 0; i < 5; ++i) pub.reload();
    while (reads < 10) std::this_thread::yield();
    stop = true;
    reader.join();
    CHECK(pub.preflight().client_subject == "CN=device-1");
}

TEST_CASE("a shared subscription delivers each message to one member of the group, MQTT 3.1.1 and 5",
          "[session][integration]") {
    for (const int version : {4, 5}) {
        SECTION("MQTT version " + std::to_string(version)) {
            const std::string topic = "devices/device-1/shared/v" + std::to_string(version);
            const std::string filter = "$share/workers/devices/device-1/shared/#";
            SessionOptions a_options = options_for("monitor");
            a_options.mqtt_version = static_cast<MqttVersion>(version);
            SessionOptions b_options = a_options;
            SecureSession a(std::move(a_options));
            SecureSession b(std::move(b_options));
            Inbox inbox_a, inbox_b;
            a.subscribe(filter, QoS::at_least_once, inbox_a.handler());
            b.subscribe(filter, QoS::at_least_once, inbox_b.handler());
            a.connect();
            b.connect();
            SessionOptions p_options = options_for("device-1");
            p_options.mqtt_version = static_cast<MqttVersion>(version);
            SecureSession pub(std::move(p_options));
            pub.connect();
            const int n = 40;
            for (int i = 0; i < n; ++i) pub.publish(topic, "m" + std::to_string(i), QoS::at_least_once);
            REQUIRE(pub.flush(std::chrono::seconds(30)));
            // Every message reaches exactly one member: wait until all n are in, then for strays.
            for (int spins = 0; spins < 3000 && a.stats().verified + b.stats().verified < n; ++spins) {
                std::this_thread::sleep_for(std::chrono::milliseconds(10));
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(300));
            std::vector<std::string> got;
            for (Inbox* inbox : {&inbox_a, &inbox_b}) {
                std::lock_guard<std::mutex> lock(inbox->mutex);
                got.insert(got.end(), inbox->payloads.begin(), inbox->payloads.end());
                for (const auto& t : inbox->topics) CHECK(t == topic);
            }
            std::sort(got.begin(), got.end());
            CHECK(got.size() == n);
            CHECK(std::unique(got.begin(), got.end()) == got.end());
            CHECK(a.stats().verified + b.stats().verified == n);
            CHECK(a.stats().unrouted + b.stats().unrouted == 0);
            CHECK(a.stats().rejected + b.stats().rejected == 0);
        }
    }
}

TEST_CASE("a verified message that matches no subscription is counted and logged once per topic",
          "[session][integration]") {
    const std::string id = "unrouted-" + std::to_string(std::chrono::steady_clock::now().time_since_epoch().count());
    const std::string topic = "devices/device-1/unrouted/x";
    {  // an earlier run of the program subscribed in a persistent session
        SessionOptions o = options_for("monitor");
        o.client_id = id;
        o.clean_session = false;
        SecureSession earlier(std::move(o));
        earlier.subscribe("devices/device-1/unrouted/#", QoS::at_least_once, [](const Message&) {});
        earlier.connect();
        earlier.disconnect();
    }
    std::vector<std::string> log;
    std::mutex log_mutex;
    SessionOptions o = options_for("monitor", &log, &log_mutex);
    o.client_id = id;
    o.clean_session = false;
    SecureSession now(std::move(o));
    Inbox inbox;
    now.subscribe("devices/device-1/elsewhere", QoS::at_least_once, inbox.handler());  // not the topic published to
    now.connect();
    SecureSession pub(options_for("device-1"));
    pub.connect();
    for (int i = 0; i < 3; ++i) pub.publish(topic, "m" + std::to_string(i), QoS::at_least_once);
    REQUIRE(pub.flush(std::chrono::seconds(30)));
    for (int spins = 0; spins < 3000 && now.stats().unrouted < 3; ++spins) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    CHECK(now.stats().verified == 3);
    CHECK(now.stats().unrouted == 3);
    std::lock_guard<std::mutex> lock(log_mutex);
    CHECK(std::count_if(log.begin(), log.end(), [&](const std::string& line) {
              return line.find("'" + topic + "' matches no subscription") != std::string::npos;
          }) == 1);
    CHECK(inbox.payloads.empty());
}

TEST_CASE("overlapping subscriptions deliver a message once per session, or to each handler if asked",
          "[session][integration]") {
    for (const Delivery delivery : {Delivery::once, Delivery::every_matching_subscription}) {
        SECTION(delivery == Delivery::once ? "once" : "every matching subscription") {
            const std::string topic = std::string("devices/device-1/overlap/") +
                                      (delivery == Delivery::once ? "once" : "every");
            SessionOptions o = options_for("monitor");
            o.delivery = delivery;
            SecureSession sub(std::move(o));
            Inbox wide, narrow;
            sub.subscribe("devices/device-1/overlap/#", QoS::at_least_once, wide.handler());
            sub.subscribe(topic, QoS::at_least_once, narrow.handler());
            sub.connect();
            SecureSession pub(options_for("device-1"));
            pub.connect();
            for (int i = 0; i < 5; ++i) pub.publish(topic, "m" + std::to_string(i), QoS::at_least_once);
            // Then a marker on a topic only the wide filter matches: delivered in order after
            // every copy of the five, so once it is in, any extra copy is in too.
            pub.publish("devices/device-1/overlap/marker", std::string("marker"), QoS::at_least_once);
            REQUIRE(pub.flush(std::chrono::seconds(30)));
            REQUIRE(wide.wait(6));
            CHECK(sub.stats().verified == 6);
            std::lock_guard<std::mutex> lock_wide(wide.mutex);
            std::lock_guard<std::mutex> lock_narrow(narrow.mutex);
            CHECK(wide.payloads.size() == 6);
            CHECK(wide.payloads.back() == "marker");
            CHECK(narrow.payloads.size() == (delivery == Delivery::once ? 0u : 5u));
            // Copies the broker sent per matching subscription were dropped as replays.
            CHECK(sub.stats().rejected == sub.stats().rejected_for(RejectReason::replayed));
        }
    }
}

TEST_CASE("rotating the HMAC key under traffic rejects nothing", "[session][integration][fault]") {
    SessionOptions so = options_for("monitor");
    SessionOptions po = options_for("device-1");
    SecureSession sub(so);
    Inbox inbox;
    sub.subscribe("devices/device-1/rotation", QoS::at_least_once, inbox.handler());
    sub.connect();
    SecureSession pub(po);
    pub.connect();
    std::atomic<bool> stop{false};
    std::atomic<int> sent{0};
    std::thread sender([&] {
        while (!stop.load()) {
            pub.publish("devices/device-1/rotation", "m" + std::to_string(sent.fetch_add(1)), QoS::at_least_once);
            std::this_thread::sleep_for(std::chrono::milliseconds(2));
        }
    });
    const std::string next = "1f1e1d1c1b1a191817161514131211100f0e0d0c0b0a09080706050403020100";
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    so.keyring->add_key_hex("k2", next);  // 1. everywhere, verify-only
    po.keyring->add_key_hex("k2", next);
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    po.keyring->set_signing_key("k2");  // 2. switch the signer
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    REQUIRE(pub.flush(std::chrono::seconds(10)));  // nothing signed with k1 in flight any more
    so.keyring->remove_key("k1");       // 3. retire the old key
    po.keyring->remove_key("k1");
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    stop = true;
    sender.join();
    REQUIRE(pub.flush(std::chrono::seconds(10)));
    REQUIRE(inbox.wait(static_cast<std::size_t>(sent.load())));
    CHECK(sub.stats().rejected == 0);
    CHECK(sub.stats().verified == static_cast<std::uint64_t>(sent.load()));
}

TEST_CASE("connect failures carry a reason", "[session][integration]") {
    SessionOptions o = options_for("device-1");
    o.server_uri = "mqtts://localhost:1";
    SecureSession session(o);
    try {
        session.connect();
        FAIL("connected to a closed port");
    } catch (const ConnectionError& e) {
        CHECK(e.reason() == ConnectFailure::network_unreachable);
        CHECK(std::string(e.what()).find("Connection refused") != std::string::npos);
    }
}

TEST_CASE("a server that accepts TCP and never answers is a timeout", "[session][integration]") {
    // A listening socket nobody accepts from: the TCP handshake completes (the kernel's
    // backlog), the TLS handshake never does.
    const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(listener >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(listener, 8) == 0);
    socklen_t len = sizeof addr;
    REQUIRE(::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    struct Close {
        int fd;
        ~Close() { ::close(fd); }
    } close_listener{listener};

    SessionOptions o = options_for("device-1");
    o.server_uri = "mqtts://127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
    o.tls.verify_hostname = false;
    o.connect_timeout = std::chrono::milliseconds(1500);
    SecureSession session(o);
    try {
        session.connect();
        FAIL("connected to a server that never answers");
    } catch (const ConnectionError& e) {
        INFO(e.what());
        CHECK(e.reason() == ConnectFailure::timeout);
    }
}

TEST_CASE("bad session options are refused before any network I/O", "[session]") {
    SessionOptions o = options_for("device-1");
    o.server_uri = "tcp://localhost:1883";
    CHECK_THROWS_WITH(SecureSession(o), Catch::Contains("malformed broker URI 'tcp://localhost:1883'"));
    o.server_uri = "mqtts://localhost:99999";
    CHECK_THROWS_WITH(SecureSession(o), Catch::Contains("port must be a number from 1 to 65535"));
    o.server_uri = "mqtts://::1:8883";
    CHECK_THROWS_WITH(SecureSession(o), Catch::Contains("IPv6 addresses go in brackets"));
    o = options_for("device-1");
    o.clean_session = false;
    CHECK_THROWS_WITH(SecureSession(o), Catch::Contains("needs a fixed client_id"));
    o = options_for("device-1");
    o.tls.key_file = (broker().certs / "monitor.key").string();
    CHECK_THROWS_WITH(SecureSession(o), Catch::Contains("monitor.key': does not match certificate"));
    CHECK_THROWS_WITH(parse_tls_version("tlsv1.1"), "unknown TLS version 'tlsv1.1' (use tlsv1.2 or tlsv1.3)");
    o = options_for("device-1");
    for (const auto bad : {std::chrono::milliseconds(0), std::chrono::milliseconds(-5),
                           std::chrono::milliseconds(std::chrono::hours(24)) + std::chrono::milliseconds(1)}) {
        o.connect_timeout = bad;
        CHECK_THROWS_WITH(SecureSession(o), Catch::Contains("connect_timeout must be 1 ms to 24 h, got " +
                                                            std::to_string(bad.count()) + " ms"));
    }
    o = options_for("device-1");
    o.reconnect_max = std::chrono::hours(25);
    CHECK_THROWS_WITH(SecureSession(o), Catch::Contains("reconnect_max must be at most 24 h, got 90000 s"));
    o.auto_reconnect = false;  // not used then, so not judged
    CHECK_NOTHROW(SecureSession(o));
}

TEST_CASE("sessions with and without a CRL never share a process; the CRL switch ends with the last one",
          "[session][integration][tls]") {
    SessionOptions with_crl = options_for("device-1");
    with_crl.tls.crl_file = (broker().certs / "crl.pem").string();
    const auto mixing = Catch::Contains("give every session in a process a CRL or none (see docs/tls.md, Revocation)");
    {
        SecureSession checking(with_crl);
        checking.connect();  // the CAs and the CRL reach Paho in one trust store
        SecureSession another(with_crl);  // any number of sessions with a CRL
        CHECK_THROWS_AS(SecureSession(options_for("monitor")), ConfigError);
        CHECK_THROWS_WITH(SecureSession(options_for("monitor")),
                          Catch::Contains("has turned on CRL checking for every TLS client in this process") && mixing);
        TlsOptions without = with_crl.tls;
        without.crl_file.clear();
        CHECK_THROWS_WITH(checking.reload(without), Catch::Contains("reload() cannot remove the CRL file"));
        CHECK(checking.is_connected());
    }
    // The last session with a CRL is gone: a session without one connects, which it could not
    // if CRL checking were still on (its trust store holds no CRL: "unable to get certificate CRL").
    SecureSession plain(options_for("device-1"));
    plain.connect();
    CHECK_THROWS_WITH(SecureSession(with_crl), Catch::Contains("and a session without one exists") && mixing);
    CHECK_THROWS_WITH(plain.reload(with_crl.tls), Catch::Contains("reload() cannot add a CRL file"));
    CHECK(plain.is_connected());
}

TEST_CASE("the logger never sees key material or envelopes, even at debug level", "[session][integration]") {
    std::vector<std::string> log;
    std::mutex log_mutex;
    {
        SessionOptions so = options_for("monitor", &log, &log_mutex);
        SecureSession sub(so);
        Inbox inbox;
        sub.subscribe("devices/device-1/secret", QoS::at_least_once, inbox.handler());
        sub.connect();
        SessionOptions po = options_for("device-1", &log, &log_mutex);
        po.tls.key_pem = testutil::read_file(po.tls.key_file);
        po.tls.key_file.clear();
        SecureSession pub(po);
        pub.connect();
        pub.publish("devices/device-1/secret", std::string("payload-marker"), QoS::at_least_once);
        REQUIRE(inbox.wait(1));
    }
    const std::string key_pem = testutil::read_file((broker().certs / "device-1.key").string());
    const std::string key_body = key_pem.substr(key_pem.find('\n') + 1, 40);
    std::lock_guard<std::mutex> lock(log_mutex);
    REQUIRE_FALSE(log.empty());
    for (const auto& line : log) {
        INFO(line);
        CHECK(line.find(key_hex.substr(0, 16)) == std::string::npos);
        CHECK(line.find(key_body) == std::string::npos);
        CHECK(line.find("payload-marker") == std::string::npos);
        CHECK(line.find("PRIVATE KEY") == std::string::npos);
    }
}

TEST_CASE("after a connection loss, disconnect() stops the reconnection attempts", "[session][integration][fault]") {
    std::vector<std::string> log;
    std::mutex log_mutex;
    SessionOptions o = options_for("device-1", &log, &log_mutex);
    o.reconnect_min = std::chrono::seconds(1);
    o.reconnect_max = std::chrono::seconds(1);
    SecureSession session(std::move(o));
    session.connect();
    broker_command("stop");  // the session's broker is gone for good: every attempt fails
    const auto attempts = [&] {
        std::lock_guard<std::mutex> lock(log_mutex);
        return std::count_if(log.begin(), log.end(), [](const std::string& l) {
            return l.find("reconnection attempt") != std::string::npos;
        });
    };
    for (int spins = 0; spins < 6000 && attempts() < 2; ++spins) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    CHECK(attempts() >= 2);  // it was trying, once a second
    session.disconnect();    // waits for an attempt under way, which logs before it ends
    const auto after_disconnect = attempts();
    broker_command("start");
    std::this_thread::sleep_for(std::chrono::seconds(3));  // three reconnection intervals
    CHECK(attempts() == after_disconnect);
    CHECK_FALSE(session.is_connected());
    CHECK(session.stats().reconnects == 0);
}

TEST_CASE("every publish, subscribe and unsubscribe has an outcome: success, or the broker's reason",
          "[session][integration][outcome]") {
    using namespace std::chrono_literals;
    const auto need = [](const Completion& c) {
        const std::optional<Outcome> o = c.wait_for(15s);
        REQUIRE(o.has_value());
        return *o;
    };
    Inbox inbox;
    // This broker refuses subscriptions outside a client's own tree (and publishes, as always).
    BrokerFixture& checking = subscription_checking_broker();
    const auto options = [&] {
        SessionOptions o = options_for("device-1");
        o.server_uri = checking.uri();
        o.tls = checking.tls("device-1");
        return o;
    };
    SECTION("MQTT 5: the broker's reason codes by name") {
        SessionOptions o = options();
        o.mqtt_version = MqttVersion::v5;
        SecureSession s(o);
        s.connect();
        const Completion subscribed = s.subscribe_async("devices/device-1/outcome5/#", QoS::at_least_once, inbox.handler());
        const Completion forbidden = s.subscribe_async("devices/device-2/#", QoS::at_least_once, inbox.handler());
        const Outcome sub_ok = need(subscribed);
        CHECK(sub_ok.ok());
        CHECK(sub_ok.reason == ReasonCode::granted_qos_1);
        const Outcome sub_refused = need(forbidden);
        CHECK(sub_refused.status == OutcomeStatus::refused);
        CHECK(sub_refused.reason == ReasonCode::not_authorized);
        CHECK(to_string(sub_refused.reason) == "not_authorized");

        const Completion delivered = s.publish("devices/device-1/outcome5/a", "fine", QoS::at_least_once);
        const Completion at_most_once = s.publish("devices/device-1/outcome5/a", "fine too", QoS::at_most_once);
        const Completion refused = s.publish("devices/device-2/outcome5/a", "not mine", QoS::at_least_once);
        CHECK(need(delivered).ok());
        CHECK(need(at_most_once).ok());
        const Outcome no = need(refused);
        CHECK(no.status == OutcomeStatus::refused);
        CHECK(no.reason == ReasonCode::not_authorized);
        CHECK(no.detail.find("devices/device-2/outcome5/a") != std::string::npos);
        CHECK_FALSE(no);
        REQUIRE(inbox.wait(2));
        CHECK(s.stats().publish_failures == 1);  // the refusal counts as a failure
        CHECK(s.stats().published == 3);

        // A callback added after the outcome runs at once, on this thread; one added before runs
        // once, with the same outcome.
        std::atomic<int> calls{0};
        const auto here = std::this_thread::get_id();
        std::thread::id ran_on;
        refused.then([&](const Outcome& outcome) {
            ran_on = std::this_thread::get_id();
            if (outcome.reason == ReasonCode::not_authorized) ++calls;
        });
        CHECK(calls == 1);
        CHECK(ran_on == here);
        std::mutex m;
        std::condition_variable cv;
        Outcome seen;
        bool called = false;
        s.publish("devices/device-2/outcome5/b", "not mine either", QoS::at_least_once).then([&](const Outcome& outcome) {
            std::lock_guard<std::mutex> lock(m);
            seen = outcome;
            called = true;
            cv.notify_all();
        });
        {
            std::unique_lock<std::mutex> lock(m);
            REQUIRE(cv.wait_for(lock, 15s, [&] { return called; }));
        }
        CHECK(seen.status == OutcomeStatus::refused);

        try {
            s.subscribe("devices/device-3/#", QoS::at_least_once, inbox.handler());
            FAIL("a refused subscription was taken");
        } catch (const ConnectionError& e) {
            CHECK(e.reason() == ConnectFailure::not_authorized);
            CHECK(std::string(e.what()).find("not_authorized") != std::string::npos);
        }
        CHECK(need(s.unsubscribe_async("devices/device-1/outcome5/#")).ok());
    }
    SECTION("MQTT 3.1.1: a SUBACK failure; a refused publish is not reported by the protocol") {
        SecureSession s(options());
        s.connect();
        const Outcome sub_refused = need(s.subscribe_async("devices/device-2/#", QoS::at_least_once, inbox.handler()));
        CHECK(sub_refused.status == OutcomeStatus::refused);
        CHECK(sub_refused.reason == ReasonCode::unspecified_error);
        const Outcome sub_ok = need(s.subscribe_async("devices/device-1/outcome4/#", QoS::exactly_once, inbox.handler()));
        CHECK(sub_ok.reason == ReasonCode::granted_qos_2);
        // MQTT 3.1.1 has no negative PUBACK: the broker drops it and acknowledges.
        CHECK(need(s.publish("devices/device-2/outcome4/a", "not mine", QoS::at_least_once)).ok());
        CHECK(need(s.publish("devices/device-1/outcome4/a", "fine", QoS::at_least_once)).ok());
        REQUIRE(inbox.wait(1));
        CHECK(need(s.unsubscribe_async("devices/device-1/outcome4/#")).ok());
    }
}

TEST_CASE("a subscription the broker refuses makes connect() fail, naming the filter", "[session][integration][outcome]") {
    BrokerFixture& checking = subscription_checking_broker();
    for (const int version : {4, 5}) {
        SessionOptions o = options_for("device-1");
        o.server_uri = checking.uri();
        o.tls = checking.tls("device-1");
        o.mqtt_version = static_cast<MqttVersion>(version);
        SecureSession s(o);
        Inbox inbox;
        s.subscribe("devices/device-1/fine/#", QoS::at_least_once, inbox.handler());  // not connected: returns
        const Completion forbidden = s.subscribe_async("devices/device-2/#", QoS::at_least_once, inbox.handler());
        CHECK_FALSE(forbidden.done());
        try {
            s.connect();
            FAIL("connect() returned with a refused subscription");
        } catch (const ConnectionError& e) {
            CHECK(e.reason() == ConnectFailure::not_authorized);
            CHECK(std::string(e.what()).find("subscribe 'devices/device-2/#' refused by the broker") != std::string::npos);
        }
        const std::optional<Outcome> outcome = forbidden.wait_for(std::chrono::seconds(15));
        REQUIRE(outcome.has_value());
        CHECK(outcome->status == OutcomeStatus::refused);
        CHECK_FALSE(s.is_connected());
    }
}

TEST_CASE("an operation the session ends before is completed as session_closed", "[session][integration][outcome]") {
    Completion pending;
    {
        SecureSession s(options_for("device-1"));  // never connected: the publish waits in the buffer
        pending = s.publish("devices/device-1/closed", "never sent", QoS::at_least_once);
        CHECK_FALSE(pending.done());
    }
    const std::optional<Outcome> outcome = pending.wait_for(std::chrono::seconds(15));
    REQUIRE(outcome.has_value());
    CHECK(outcome->status == OutcomeStatus::session_closed);
    CHECK(to_string(outcome->status) == "session_closed");
}

namespace {

// Collects lifecycle events; wait() until one satisfies `pred`.
struct Events {
    SecureSession::EventHandler handler() {
        return [this](const SessionEvent& e) {
            std::lock_guard<std::mutex> lock(mutex);
            seen.push_back(e);
            cv.notify_all();
        };
    }
    template <typename Pred>
    bool wait(Pred pred, std::chrono::seconds timeout = std::chrono::seconds(30)) {
        std::unique_lock<std::mutex> lock(mutex);
        return cv.wait_for(lock, timeout, [&] { return std::any_of(seen.begin(), seen.end(), pred); });
    }
    std::vector<SessionEvent> all() {
        std::lock_guard<std::mutex> lock(mutex);
        return seen;
    }
    std::mutex mutex;
    std::condition_variable cv;
    std::vector<SessionEvent> seen;
};

}  // namespace

TEST_CASE("lifecycle events: connected, taken over by the broker, lost, reconnecting, connected again, disconnected",
          "[session][integration][events]") {
    for (const int version : {5, 4}) {
        INFO("MQTT version " << version);
        const std::string id = "events-" + std::to_string(version);
        SessionOptions o = options_for("device-1");
        o.mqtt_version = static_cast<MqttVersion>(version);
        o.client_id = id;
        o.clean_session = false;  // so that the reconnection finds the session present
        o.reconnect_min = std::chrono::seconds(1);
        o.reconnect_max = std::chrono::seconds(1);
        Events events;
        SecureSession s(o);
        s.on_event(events.handler());
        s.connect();
        REQUIRE(events.wait([](const SessionEvent& e) { return e.type == SessionEventType::connected; }));
        {
            const auto first = events.all();
            REQUIRE(first.size() == 1);
            CHECK(first[0].type == SessionEventType::connected);
            CHECK_FALSE(first[0].reconnect);
        }
        {
            // Another connection with our client id: the broker ends ours (MQTT 5: a DISCONNECT
            // saying why), and leaves at once, so that our reconnection gets back in.
            SessionOptions other = o;
            other.auto_reconnect = false;
            SecureSession intruder(other);
            intruder.connect();
            REQUIRE(events.wait([](const SessionEvent& e) { return e.type == SessionEventType::connection_lost; }));
            intruder.disconnect();
        }
        REQUIRE(events.wait([](const SessionEvent& e) { return e.type == SessionEventType::connected && e.reconnect; }));
        s.disconnect();
        REQUIRE(events.wait([](const SessionEvent& e) { return e.type == SessionEventType::disconnected && !e.by_broker; }));
        const auto seen = events.all();
        std::vector<SessionEventType> types;
        std::string trace;
        for (const auto& e : seen) {
            types.push_back(e.type);
            trace += std::string(to_string(e.type)) + (e.by_broker ? "(by broker, " + std::string(to_string(e.reason)) + ")" : "") +
                     (e.detail.empty() ? "" : " [" + e.detail + "]") + "; ";
        }
        INFO("events: " << trace);
        const auto at = [&](SessionEventType t) { return std::find(types.begin(), types.end(), t) - types.begin(); };
        const auto reconnecting = std::find_if(seen.begin(), seen.end(), [](const SessionEvent& e) {
            return e.type == SessionEventType::reconnecting;
        });
        REQUIRE(reconnecting != seen.end());
        CHECK(reconnecting->attempt == 1);
        CHECK(reconnecting->delay == std::chrono::seconds(1));
        CHECK(at(SessionEventType::connection_lost) < at(SessionEventType::reconnecting));
        const auto again = std::find_if(seen.begin(), seen.end(), [](const SessionEvent& e) {
            return e.type == SessionEventType::connected && e.reconnect;
        });
        CHECK(again->session_present);
        CHECK(at(SessionEventType::reconnecting) < again - seen.begin());
        CHECK(seen.back().type == SessionEventType::disconnected);
        CHECK_FALSE(seen.back().by_broker);
        // Mosquitto 2.0 closes a taken-over connection without a DISCONNECT, MQTT 5 or not.
        CHECK(std::none_of(seen.begin(), seen.end(), [](const SessionEvent& e) { return e.by_broker; }));
        CHECK(s.stats().handler_errors == 0);
    }
}

TEST_CASE("an MQTT 5 DISCONNECT from the broker is an event with its reason", "[session][integration][events]") {
    BrokerFixture& small = small_packet_broker();
    SessionOptions o = options_for("device-1");
    o.server_uri = small.uri();
    o.tls = small.tls("device-1");
    o.mqtt_version = MqttVersion::v5;
    o.reconnect_min = std::chrono::seconds(1);
    Events events;
    SecureSession s(o);
    s.on_event(events.handler());
    s.connect();
    s.publish("devices/device-1/big", std::string(4096, 'x'), QoS::at_most_once);  // over the broker's 2048 bytes
    REQUIRE(events.wait([](const SessionEvent& e) { return e.type == SessionEventType::disconnected; }));
    REQUIRE(events.wait([](const SessionEvent& e) { return e.type == SessionEventType::connected && e.reconnect; }));
    s.disconnect();
    REQUIRE(events.wait([](const SessionEvent& e) { return e.type == SessionEventType::disconnected && !e.by_broker; }));
    const auto seen = events.all();
    const auto by_broker = std::find_if(seen.begin(), seen.end(), [](const SessionEvent& e) {
        return e.type == SessionEventType::disconnected;
    });
    REQUIRE(by_broker != seen.end());
    CHECK(by_broker->by_broker);
    CHECK(by_broker->reason == ReasonCode::packet_too_large);
    // One loss, reported once, after the DISCONNECT; then the session reconnected by itself.
    CHECK(std::count_if(seen.begin(), seen.end(), [](const SessionEvent& e) {
              return e.type == SessionEventType::connection_lost;
          }) == 1);
    CHECK(s.stats().connection_losses == 1);
}

TEST_CASE("an event handler that throws is counted and logged; the session goes on", "[session][integration][events]") {
    std::vector<std::string> log;
    std::mutex log_mutex;
    std::atomic<int> calls{0};
    SecureSession s(options_for("device-1", &log, &log_mutex));
    s.on_event([&calls](const SessionEvent&) {
        ++calls;
        throw std::runtime_error("boom");
    });
    s.connect();
    CHECK(s.is_connected());
    s.disconnect();
    for (int spins = 0; spins < 3000 && calls < 2; ++spins) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    REQUIRE(calls == 2);  // connected, disconnected: the first exception stopped nothing
    for (int spins = 0; spins < 3000 && s.stats().handler_errors < 2; ++spins) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    CHECK(s.stats().handler_errors == 2);
    std::lock_guard<std::mutex> lock(log_mutex);
    CHECK(std::any_of(log.begin(), log.end(), [](const std::string& l) { return l.find("event handler threw: boom") != std::string::npos; }));
}

TEST_CASE("a subscription the broker refused is dropped: it does not fail the next connect()", "[session][integration][outcome]") {
    BrokerFixture& checking = subscription_checking_broker();
    SessionOptions o = options_for("device-1");
    o.server_uri = checking.uri();
    o.tls = checking.tls("device-1");
    SecureSession s(o);
    s.connect();
    Inbox inbox;
    CHECK_THROWS_AS(s.subscribe("devices/device-2/#", QoS::at_least_once, inbox.handler()), ConnectionError);
    s.disconnect();
    CHECK_NOTHROW(s.connect());
    CHECK(s.is_connected());
}

TEST_CASE("publishes a connection loss or the session's end cuts short complete as such, never as failed",
          "[session][integration][outcome][fault]") {
    Events events;
    std::vector<Completion> completions;
    {
        SessionOptions o = options_for("device-1");
        o.auto_reconnect = false;
        SecureSession s(o);
        s.on_event(events.handler());
        s.connect();
        // The broker frozen, so that none of these is answered, then killed: the loss finds
        // them all in flight or queued.
        const pid_t broker_pid = std::stoi(testutil::read_file((broker().dir / "mosquitto.pid").string()));
        REQUIRE(::kill(broker_pid, SIGSTOP) == 0);
        for (int i = 0; i < 2000; ++i) {
            completions.push_back(s.publish("devices/device-1/outcome/loss", std::string(512, 'x'), QoS::at_least_once));
        }
        REQUIRE(::kill(broker_pid, SIGKILL) == 0);
        REQUIRE(events.wait([](const SessionEvent& e) { return e.type == SessionEventType::connection_lost; }));
        broker_command("stop");  // tidies up after the killed broker
    }  // what the loss left pending ends with the session
    broker_command("start");
    std::map<OutcomeStatus, int> by_status;
    for (const Completion& c : completions) {
        const std::optional<Outcome> o = c.wait_for(std::chrono::seconds(0));
        REQUIRE(o.has_value());  // every one completed, by the session's end at the latest
        ++by_status[o->status];
    }
    INFO("success " << by_status[OutcomeStatus::success] << ", connection_lost " << by_status[OutcomeStatus::connection_lost]
                    << ", session_closed " << by_status[OutcomeStatus::session_closed] << ", failed "
                    << by_status[OutcomeStatus::failed]);
    CHECK(by_status[OutcomeStatus::failed] == 0);
    CHECK(by_status[OutcomeStatus::success] + by_status[OutcomeStatus::connection_lost] +
              by_status[OutcomeStatus::session_closed] == 2000);
    CHECK(by_status[OutcomeStatus::success] == 0);  // the broker answered none
}

TEST_CASE("an event handler may call connect() and disconnect(): events come from the session's own thread",
          "[session][integration][events]") {
    // Declared before the session, so that they outlive its event thread.
    std::mutex m;
    std::condition_variable cv;
    std::vector<SessionEventType> seen;
    int connections = 0;
    SessionOptions o = options_for("device-1");
    SecureSession s(o);
    s.on_event([&](const SessionEvent& e) {
        {
            std::lock_guard<std::mutex> lock(m);
            seen.push_back(e.type);
        }
        // Once connected, disconnect from inside the handler; once disconnected the first
        // time, connect again, from inside the handler too.
        if (e.type == SessionEventType::connected && ++connections <= 2) s.disconnect();
        if (e.type == SessionEventType::disconnected && connections == 1) s.connect();
        cv.notify_all();
    });
    s.connect();
    std::unique_lock<std::mutex> lock(m);
    REQUIRE(cv.wait_for(lock, std::chrono::seconds(30), [&] { return seen.size() >= 4; }));
    CHECK(seen == std::vector<SessionEventType>{SessionEventType::connected, SessionEventType::disconnected,
                                                SessionEventType::connected, SessionEventType::disconnected});
}
