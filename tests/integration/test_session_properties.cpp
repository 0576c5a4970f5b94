// SPDX-License-Identifier: Apache-2.0
// MQTT 5 properties through a real Mosquitto: published and received, the covered ones signed
// (docs/envelope-v1.md §2.1), so that a client of the broker without the key -- "the attacker"
// here, a plain Paho client -- cannot redirect a reply or change its correlation data; and a
// publisher's topic alias resolved by the broker before verification.
#include "support/catch.hpp"
#include "session_fixture.hpp"

#include <mqtt/async_client.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <vector>

using namespace securemqtt;
using namespace sessiontest;
using namespace std::chrono_literals;

namespace {

// A plain Paho MQTT 5 client over the same mutual TLS as the sessions, without any key:
// it can subscribe, capture and publish whatever bytes and properties it likes.
struct RawClient {
    explicit RawClient(const std::string& identity, const std::string& id)
        : client(broker().uri().replace(0, 5, "ssl"), id, mqtt::create_options(MQTTVERSION_5)) {
        client.set_message_callback([this](mqtt::const_message_ptr m) {
            std::lock_guard<std::mutex> lock(mutex);
            captured.push_back(std::move(m));
            cv.notify_all();
        });
        const TlsOptions t = broker().tls(identity);
        auto ssl = mqtt::ssl_options_builder()
                       .trust_store(t.ca_file)
                       .key_store(t.cert_file)
                       .private_key(t.key_file)
                       .finalize();
        auto options = mqtt::connect_options_builder()
                           .mqtt_version(MQTTVERSION_5)
                           .clean_start(true)
                           .ssl(ssl)
                           .finalize();
        done(client.connect(options), "connect");
    }
    ~RawClient() {
        try {
            (void)client.disconnect()->wait_for(15s);
        } catch (...) {
        }
        client.disable_callbacks();
    }
    void subscribe(const std::string& filter) { done(client.subscribe(filter, 1), "subscribe"); }
    mqtt::const_message_ptr wait_for_message(std::size_t n) {
        std::unique_lock<std::mutex> lock(mutex);
        REQUIRE(cv.wait_for(lock, 15s, [&] { return captured.size() >= n; }));
        return captured[n - 1];
    }
    // Waits (bounded) for `token`. wait_for, not wait(): Paho's wait() locks inside the library,
    // which ThreadSanitizer does not see, and reports the unlock as one of an unlocked mutex.
    static void done(const mqtt::token_ptr& token, const char* what) {
        if (!token->wait_for(15s)) throw std::runtime_error(std::string("raw client: no answer to ") + what);
    }
    // The first captured message `accept` takes (bounded wait).
    template <typename Predicate>
    mqtt::const_message_ptr wait_for_message_where(Predicate accept) {
        std::unique_lock<std::mutex> lock(mutex);
        mqtt::const_message_ptr found;
        (void)cv.wait_for(lock, 15s, [&] {
            for (const auto& m : captured) {
                if (accept(*m)) {
                    found = m;
                    return true;
                }
            }
            return false;
        });
        if (!found) throw std::runtime_error("no such message within 15 s");
        return found;
    }
    void publish(const std::string& topic, const std::string& payload, const mqtt::properties& props) {
        auto msg = mqtt::make_message(topic, payload, 1, false);
        msg->set_properties(props);
        done(client.publish(msg), "publish");
    }
    // The client last: destroyed first, so no callback of its thread finds these gone.
    std::mutex mutex;
    std::condition_variable cv;
    std::vector<mqtt::const_message_ptr> captured;
    mqtt::async_client client;
};

SessionOptions v5(const std::string& identity) {
    SessionOptions o = options_for(identity);
    o.mqtt_version = MqttVersion::v5;
    return o;
}

// Verified messages with their properties.
struct PropertyInbox {
    SecureSession::Handler handler() {
        return [this](const Message& m) {
            std::lock_guard<std::mutex> lock(mutex);
            messages.push_back({std::string(m.topic), std::string(m.payload.as_string_view()), m.properties});
            cv.notify_all();
        };
    }
    bool wait(std::size_t n) {
        std::unique_lock<std::mutex> lock(mutex);
        return cv.wait_for(lock, 15s, [&] { return messages.size() >= n; });
    }
    struct Received {
        std::string topic, payload;
        MessageProperties properties;
    };
    std::mutex mutex;
    std::condition_variable cv;
    std::vector<Received> messages;
};

// Waits until `session` has rejected `n` messages for `reason` (bounded).
bool rejected(SecureSession& session, RejectReason reason, std::uint64_t n) {
    for (int i = 0; i < 300; ++i) {
        if (session.stats().rejected_by_reason[static_cast<std::size_t>(reason)] >= n) return true;
        std::this_thread::sleep_for(50ms);
    }
    return false;
}

ReplyOptions replies_only() {
    ReplyOptions o;
    o.allowed_response_topics = {"devices/device-1/replies/#"};
    return o;
}

RequesterOptions requester_options(std::vector<std::string> responder_keys = {}) {
    RequesterOptions o;
    o.reply_prefix = "devices/device-1/replies";
    o.responder_keys = std::move(responder_keys);
    return o;
}

MessageProperties command_properties() {
    MessageProperties p;
    p.content_type = "application/json";
    p.response_topic = "devices/device-1/replies/app-7";
    p.correlation_data = std::string("\x00\x07\xfe", 3);
    p.user_properties = {{"trace", "t-1"}, {"site", "north"}, {"trace", "t-2"}};
    p.payload_format = PayloadFormat::utf8;
    p.message_expiry = std::chrono::seconds(3600);
    return p;
}

}  // namespace

TEST_CASE("MQTT 5 properties travel through the broker, signed, and arrive as sent", "[session][integration][properties]") {
    SecureSession sub(v5("monitor"));
    PropertyInbox inbox;
    sub.subscribe("devices/device-1/props/#", QoS::at_least_once, inbox.handler());
    sub.connect();
    SecureSession pub(v5("device-1"));
    pub.connect();

    PublishOptions options;
    options.properties = command_properties();
    const std::string text = "{\"set\":\"21.5 \xc2\xb0" "C\"}";
    REQUIRE(pub.publish("devices/device-1/props/a", text, options).wait_for(15s).value().ok());
    pub.publish("devices/device-1/props/b", "plain", QoS::at_least_once);  // none: nothing invented on arrival
    REQUIRE(inbox.wait(2));

    std::lock_guard<std::mutex> lock(inbox.mutex);
    const auto& got = inbox.messages[0].properties;
    CHECK(inbox.messages[0].payload == text);
    CHECK(got.content_type == options.properties.content_type);
    CHECK(got.response_topic == options.properties.response_topic);
    CHECK(got.correlation_data == options.properties.correlation_data);
    CHECK(got.user_properties == options.properties.user_properties);
    CHECK(got.payload_format == PayloadFormat::utf8);
    REQUIRE(got.message_expiry.has_value());  // the broker's time remaining: not signed
    CHECK(got.message_expiry->count() > 3500);
    CHECK(got.message_expiry->count() <= 3600);
    CHECK(inbox.messages[1].properties.empty());
    CHECK(sub.stats().rejected == 0);
}

TEST_CASE("a captured request re-published with another response topic or correlation data is bad_mac",
          "[session][integration][properties][security]") {
    SecureSession device(v5("device-1"));
    PropertyInbox inbox;
    device.subscribe("devices/device-1/cmd", QoS::at_least_once, inbox.handler());
    device.connect();
    RawClient attacker("device-1", "attacker-props");
    attacker.subscribe("devices/device-1/cmd");

    SecureSession app(v5("device-1"));
    app.connect();
    PublishOptions request;
    request.properties.response_topic = "devices/device-1/replies/app-7";
    request.properties.correlation_data = "req-0001";
    app.publish("devices/device-1/cmd", "unlock-door", request);
    REQUIRE(inbox.wait(1));
    const mqtt::const_message_ptr capture = attacker.wait_for_message(1);
    REQUIRE(capture->get_properties().contains(mqtt::property::RESPONSE_TOPIC));

    // Redirected: the same envelope, the reply sent to the attacker's topic.
    attacker.publish("devices/device-1/cmd", capture->get_payload_str(),
                     {{mqtt::property::RESPONSE_TOPIC, "devices/device-1/attacker"},
                      {mqtt::property::CORRELATION_DATA, "req-0001"}});
    REQUIRE(rejected(device, RejectReason::bad_mac, 1));
    // Other correlation data (a reply matched to another request).
    attacker.publish("devices/device-1/cmd", capture->get_payload_str(),
                     {{mqtt::property::RESPONSE_TOPIC, "devices/device-1/replies/app-7"},
                      {mqtt::property::CORRELATION_DATA, "req-0002"}});
    REQUIRE(rejected(device, RejectReason::bad_mac, 2));
    // Stripped of its properties.
    attacker.publish("devices/device-1/cmd", capture->get_payload_str(), {});
    REQUIRE(rejected(device, RejectReason::bad_mac, 3));
    // Unchanged: the MAC holds, and the replay guard catches the copy.
    attacker.publish("devices/device-1/cmd", capture->get_payload_str(), capture->get_properties());
    REQUIRE(rejected(device, RejectReason::replayed, 1));

    // A message signed without properties, given a response topic on the way.
    app.publish("devices/device-1/cmd", "status?", QoS::at_least_once);
    REQUIRE(inbox.wait(2));
    const mqtt::const_message_ptr plain = attacker.wait_for_message(2);
    attacker.publish("devices/device-1/cmd", plain->get_payload_str(),
                     {{mqtt::property::RESPONSE_TOPIC, "devices/device-1/attacker"}});
    REQUIRE(rejected(device, RejectReason::bad_mac, 4));

    std::lock_guard<std::mutex> lock(inbox.mutex);
    REQUIRE(inbox.messages.size() == 2);  // the two genuine ones, nothing else
    CHECK(inbox.messages[0].properties.response_topic == "devices/device-1/replies/app-7");
    CHECK(device.stats().verified == 2);
}

TEST_CASE("a topic alias is resolved by the broker before verification: the aliased message verifies",
          "[session][integration][properties]") {
    SecureSession device(v5("monitor"));
    PropertyInbox inbox;
    device.subscribe("devices/device-1/alias/#", QoS::at_least_once, inbox.handler());
    device.connect();

    // The envelope is signed for the full topic name; the publisher then abbreviates it.
    auto keyring = std::make_shared<Keyring>();
    keyring->add_key_hex("k1", key_hex);
    keyring->set_signing_key("k1");
    Signer signer(keyring);
    RawClient publisher("device-1", "aliasing-publisher");
    const std::string topic = "devices/device-1/alias/temperature";
    const auto first = signer.sign(topic, std::string("20.0"));
    const auto second = signer.sign(topic, std::string("20.5"));
    publisher.publish(topic, std::string(first.begin(), first.end()), {{mqtt::property::TOPIC_ALIAS, 1}});
    publisher.publish("", std::string(second.begin(), second.end()), {{mqtt::property::TOPIC_ALIAS, 1}});
    REQUIRE(inbox.wait(2));
    std::lock_guard<std::mutex> lock(inbox.mutex);
    CHECK(inbox.messages[0].topic == topic);
    CHECK(inbox.messages[1].topic == topic);
    CHECK(inbox.messages[1].payload == "20.5");
    CHECK(device.stats().rejected == 0);
}

TEST_CASE("properties the protocol cannot carry are refused before anything is sent", "[session][integration][properties]") {
    SessionOptions o = options_for("device-1");  // MQTT 3.1.1
    SecureSession v4(o);
    PublishOptions with_topic;
    with_topic.properties.response_topic = "devices/device-1/r";
    CHECK_THROWS_AS(v4.publish("devices/device-1/x", "p", with_topic), ConfigError);
    PublishOptions expiring;
    expiring.properties.message_expiry = std::chrono::seconds(5);
    CHECK_THROWS_AS(v4.publish("devices/device-1/x", "p", expiring), ConfigError);

    SecureSession s(v5("device-1"));
    const auto refused = [&](const MessageProperties& p) {
        PublishOptions options;
        options.properties = p;
        try {
            s.publish("devices/device-1/x", "p", options);
        } catch (const ConfigError& e) {
            return std::string(e.what());
        }
        return std::string("accepted");
    };
    MessageProperties wildcard;
    wildcard.response_topic = "devices/+/r";
    CHECK(refused(wildcard).find("not a topic name") != std::string::npos);
    MessageProperties not_utf8;
    not_utf8.content_type = std::string("\xc0\xaf");
    CHECK(refused(not_utf8).find("not well-formed UTF-8") != std::string::npos);
    MessageProperties nul;
    nul.user_properties = {{"a", std::string("b\0c", 3)}};
    CHECK(refused(nul).find("U+0000") != std::string::npos);
    MessageProperties control;  // MQTT 5 §1.5.4: a receiver may refuse control characters; Mosquitto does
    control.user_properties = {{"note", "line1\nline2"}};
    CHECK(refused(control).find("control character") != std::string::npos);
    MessageProperties noncharacter;
    noncharacter.content_type = "text/\xef\xbf\xbf";  // U+FFFF
    CHECK(refused(noncharacter).find("non-character") != std::string::npos);
    MessageProperties too_long;
    too_long.correlation_data = std::string(65536, 'x');
    CHECK(refused(too_long).find("65,535") != std::string::npos);
    CHECK(s.stats().published == 0);

    // The UTF-8 flag is the envelope's own: it needs no MQTT 5, and refuses what is not UTF-8.
    PublishOptions text;
    text.properties.payload_format = PayloadFormat::utf8;
    CHECK_THROWS_AS(v4.publish("devices/device-1/x", std::string("\xff"), text), SigningError);
    SecureSession sub(options_for("monitor"));
    PropertyInbox inbox;
    sub.subscribe("devices/device-1/utf8v4", QoS::at_least_once, inbox.handler());
    sub.connect();
    v4.connect();
    v4.publish("devices/device-1/utf8v4", "caf\xc3\xa9", text);
    REQUIRE(inbox.wait(1));
    std::lock_guard<std::mutex> lock(inbox.mutex);
    CHECK(inbox.messages[0].properties.payload_format == PayloadFormat::utf8);
}

TEST_CASE("request/response: a verified reply to a fresh correlation id on a private topic",
          "[session][integration][properties][request]") {
    SecureSession device(v5("device-1"));
    std::atomic<int> served{0};
    device.subscribe("devices/device-1/cmd", QoS::at_least_once, [&](const Message& m) {
        if (m.payload.as_string_view() == "silent") return;  // a device that does not answer
        ++served;
        reply_to(device, m, "done: " + std::string(m.payload.as_string_view()), replies_only());
    });
    device.connect();
    SecureSession app(v5("device-1"));
    app.connect();
    Requester requester(app, requester_options());
    CHECK(requester.reply_topic().rfind("devices/device-1/replies/", 0) == 0);
    CHECK(requester.reply_topic().size() == std::string("devices/device-1/replies/").size() + 32);

    SECTION("the reply comes, verified, with its request's correlation id") {
        MessageProperties extra;
        extra.content_type = "text/plain";
        const std::optional<Reply> reply = requester.request("devices/device-1/cmd", "unlock-door", 15s, extra);
        REQUIRE(reply.has_value());
        CHECK(reply->payload == "done: unlock-door");
        CHECK(reply->topic == requester.reply_topic());
        CHECK(reply->key_id == "k1");
        REQUIRE(reply->properties.correlation_data.has_value());
        CHECK(reply->properties.correlation_data->size() == 16);
        // Each request draws its own id.
        const std::optional<Reply> again = requester.request("devices/device-1/cmd", "lock-door", 15s);
        REQUIRE(again.has_value());
        CHECK(again->payload == "done: lock-door");
        CHECK(again->properties.correlation_data != reply->properties.correlation_data);
        CHECK(served == 2);
    }
    SECTION("no reply within the time: nothing, and the request stops waiting") {
        CHECK_FALSE(requester.request("devices/device-1/cmd", "silent", 200ms).has_value());
        CHECK(requester.request("devices/device-1/cmd", "after", 15s).has_value());
    }
    SECTION("a request the broker refuses fails at once with the broker's reason") {
        try {
            (void)requester.request("devices/device-2/cmd", "not mine", 60s);
            FAIL("a refused request was taken");
        } catch (const PublishError& e) {
            CHECK(e.status() == OutcomeStatus::refused);
            INFO(e.what());
            CHECK(std::string(e.what()).find("not_authorized") != std::string::npos);
        }
    }
    SECTION("the Requester's own fields cannot be overridden") {
        MessageProperties p;
        p.response_topic = "devices/device-1/elsewhere";
        CHECK_THROWS_AS(requester.request("devices/device-1/cmd", "x", 1s, p), ConfigError);
        Message no_response_topic;
        no_response_topic.topic = "devices/device-1/cmd";
        CHECK_THROWS_AS(reply_to(device, no_response_topic, "x", replies_only()), ConfigError);
        CHECK_THROWS_AS(reply_to(device, no_response_topic, "x", ReplyOptions{}), ConfigError);
    }
}

TEST_CASE("request/response: a redirected request gets no reply, a forged reply is not taken",
          "[session][integration][properties][request][security]") {
    SecureSession device(v5("device-1"));
    std::atomic<int> served{0};
    device.subscribe("devices/device-1/cmd", QoS::at_least_once, [&](const Message& m) {
        ++served;
        reply_to(device, m, "opened", replies_only());
    });
    device.connect();
    SecureSession app(v5("device-1"));
    app.connect();
    Requester requester(app, requester_options());
    RawClient attacker("device-1", "attacker-request");
    attacker.subscribe("devices/device-1/cmd");
    attacker.subscribe(requester.reply_topic());  // the ACL lets it read: replies are signed, not secret

    REQUIRE(requester.request("devices/device-1/cmd", "unlock-door", 15s).has_value());
    const mqtt::const_message_ptr request = attacker.wait_for_message(1);
    const mqtt::const_message_ptr reply = attacker.wait_for_message(2);
    REQUIRE(request->get_topic() == "devices/device-1/cmd");
    REQUIRE(reply->get_topic() == requester.reply_topic());

    // The captured request, its reply sent to the attacker instead: the device rejects it.
    attacker.publish("devices/device-1/cmd", request->get_payload_str(),
                     {{mqtt::property::RESPONSE_TOPIC, "devices/device-1/attacker"},
                      {mqtt::property::CORRELATION_DATA,
                       mqtt::get<std::string>(request->get_properties(), mqtt::property::CORRELATION_DATA)}});
    REQUIRE(rejected(device, RejectReason::bad_mac, 1));
    CHECK(served == 1);

    // The captured reply, given the correlation id of a request now waiting: not taken.
    device.disconnect();  // the device answers nothing more
    const auto correlation_of = [](const mqtt::message& m) {
        return mqtt::get<std::string>(m.get_properties(), mqtt::property::CORRELATION_DATA);
    };
    const std::string first_id = correlation_of(*request);
    std::atomic<bool> forged{false};
    std::thread forger([&] {
        // The new request (the attacker also sees its own re-publication, with the first id).
        // No REQUIRE on this thread: its outcome is checked after the join.
        try {
            const mqtt::const_message_ptr next = attacker.wait_for_message_where([&](const mqtt::message& m) {
                return m.get_topic() == "devices/device-1/cmd" && correlation_of(m) != first_id;
            });
            const std::string id = correlation_of(*next);
            attacker.publish(requester.reply_topic(), reply->get_payload_str(), {{mqtt::property::CORRELATION_DATA, id}});
            forged = true;
        } catch (...) {
        }
    });
    CHECK_FALSE(requester.request("devices/device-1/cmd", "unlock-door", 3s).has_value());
    forger.join();
    REQUIRE(forged);
    REQUIRE(rejected(app, RejectReason::bad_mac, 1));
    // And the genuine reply re-sent as it was: a replay.
    attacker.publish(requester.reply_topic(), reply->get_payload_str(), reply->get_properties());
    REQUIRE(rejected(app, RejectReason::replayed, 1));
    CHECK(requester.unmatched_replies() == 0);
}

TEST_CASE("request/response: the responder answers only to allowed response topics, the requester only to its "
          "responders' keys", "[session][integration][properties][request][security]") {
    SecureSession device(v5("device-1"));
    std::atomic<int> commands{0};
    device.subscribe("devices/device-1/cmd", QoS::at_least_once, [&](const Message& m) {
        ++commands;
        reply_to(device, m, "done: " + std::string(m.payload.as_string_view()), replies_only());
    });
    device.connect();

    SECTION("a request naming the device's own command topic as its response topic gets no reply there") {
        SecureSession app(v5("device-1"));
        app.connect();
        PublishOptions loop;
        loop.properties.response_topic = "devices/device-1/cmd";
        loop.properties.correlation_data = "c-1";
        REQUIRE(app.publish("devices/device-1/cmd", "open-valve", loop).wait_for(15s).value().ok());
        for (int i = 0; i < 300 && device.stats().handler_errors == 0; ++i) std::this_thread::sleep_for(50ms);
        CHECK(device.stats().handler_errors == 1);  // reply_to refused (SigningError), counted
        // Nothing was published to the command topic: the handler ran for the request alone.
        Requester requester(app, requester_options());
        REQUIRE(requester.request("devices/device-1/cmd", "ping", 15s).has_value());
        CHECK(commands == 2);
    }
    SECTION("a reply signed with another key is not taken when responders are named") {
        // A second key the app's keyring holds, allowed on the reply topic, used by a rogue.
        const std::string other_key = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
        SessionOptions app_options = v5("device-1");
        app_options.keyring->add_key_hex("k2", other_key);
        SecureSession app(app_options);
        app.connect();
        SessionOptions rogue_options = v5("device-1");
        rogue_options.keyring->add_key_hex("k2", other_key);  // verifies with k1, signs with k2
        rogue_options.keyring->set_signing_key("k2");
        SecureSession rogue(rogue_options);
        rogue.subscribe("devices/device-1/cmd", QoS::at_least_once, [&](const Message& m) {
            reply_to(rogue, m, "forged answer", replies_only());
        });
        rogue.connect();
        device.disconnect();  // only the rogue answers now

        Requester picky(app, requester_options({"k1"}));
        CHECK_FALSE(picky.request("devices/device-1/cmd", "unlock-door", 2s).has_value());
        for (int i = 0; i < 300 && picky.unmatched_replies() == 0; ++i) std::this_thread::sleep_for(50ms);
        CHECK(picky.unmatched_replies() == 1);
        Requester trusting(app, requester_options());  // any key allowed on the reply topic
        const std::optional<Reply> forged = trusting.request("devices/device-1/cmd", "unlock-door", 15s);
        REQUIRE(forged.has_value());
        CHECK(forged->key_id == "k2");  // why responder_keys exists
    }
    SECTION("waiting for ever is waiting, not an overflow that returns at once") {
        SecureSession app(v5("device-1"));
        app.connect();
        Requester requester(app, requester_options());
        const std::optional<Reply> reply =
            requester.request("devices/device-1/cmd", "slow", std::chrono::milliseconds::max());
        REQUIRE(reply.has_value());
        CHECK(reply->payload == "done: slow");
    }
}
