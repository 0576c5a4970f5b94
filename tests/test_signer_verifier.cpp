// SPDX-License-Identifier: Apache-2.0
#include "support/catch.hpp"
#include "support/test_util.hpp"

#include <securemqtt/securemqtt.hpp>

#include <algorithm>
#include <atomic>
#include <set>
#include <thread>

using namespace securemqtt;

namespace {

constexpr std::int64_t t0 = 1767225600000;

struct Clocked {
    std::atomic<std::int64_t> now{t0};
    Clock clock() {
        return [this] { return now.load(); };
    }
};

std::shared_ptr<Keyring> keyring_with(std::initializer_list<const char*> ids, const char* signing) {
    auto keyring = std::make_shared<Keyring>();
    std::uint8_t seed = 1;
    for (const char* id : ids) keyring->add_key(id, testutil::test_key(seed++));
    if (signing != nullptr) keyring->set_signing_key(signing);
    return keyring;
}

VerifierOptions at_clock(Clock clock) {
    VerifierOptions o;
    o.clock = std::move(clock);
    return o;
}

}  // namespace

TEST_CASE("a verified message carries its payload and metadata", "[verifier]") {
    Clocked c;
    auto keyring = keyring_with({"k1"}, "k1");
    Signer signer(keyring, SignerOptions{c.clock(), std::nullopt, 1});
    Verifier verifier(keyring, nullptr, at_clock(c.clock()));
    const auto env = signer.sign("home/kitchen/temp", std::string("19.0"));
    const VerifyResult r = verifier.verify("home/kitchen/temp", env);
    REQUIRE(r.ok());
    const VerifiedMessage& m = r.message();
    CHECK(m.payload.as_string_view() == "19.0");
    CHECK(m.topic == "home/kitchen/temp");
    CHECK(m.key_id == "k1");
    CHECK(m.stream_id == signer.stream_id());
    CHECK(m.counter == 1);
    CHECK(m.timestamp_ms == t0);
    CHECK_FALSE(m.retained);
}

TEST_CASE("a rejected result never yields a message", "[verifier]") {
    auto keyring = keyring_with({"k1"}, "k1");
    Verifier verifier(keyring);
    const VerifyResult r = verifier.verify("t", std::string("not an envelope"));
    REQUIRE_FALSE(r.ok());
    CHECK(r.reason() == RejectReason::malformed);
    CHECK_THROWS_AS(r.message(), std::logic_error);
}

TEST_CASE("a QoS 1 redelivery of an accepted message is dropped as replayed", "[verifier]") {
    auto keyring = keyring_with({"k1"}, "k1");
    Signer signer(keyring);
    Verifier verifier(keyring);
    const auto env = signer.sign("t", std::string("once"));
    CHECK(verifier.verify("t", env).ok());
    CHECK(verifier.verify("t", env).reason() == RejectReason::replayed);
}

TEST_CASE("a tampered copy does not burn the genuine message's counter", "[verifier]") {
    auto keyring = keyring_with({"k1"}, "k1");
    Signer signer(keyring);
    Verifier verifier(keyring);
    const auto env = signer.sign("t", std::string("genuine"));
    auto forged = env;
    forged[forged.size() - 33] ^= 0x20;  // last payload byte
    CHECK(verifier.verify("t", forged).reason() == RejectReason::bad_mac);
    CHECK(verifier.verify("t", env).ok());
}

TEST_CASE("unknown keys, invalid keys and out-of-scope topics are rejected before the MAC", "[verifier]") {
    Clocked c;
    auto signing = keyring_with({"stranger"}, "stranger");
    auto receiving = std::make_shared<Keyring>();
    KeyOptions expired;
    expired.not_after_ms = t0;
    receiving->add_key("retired", testutil::test_key(9), expired);
    KeyOptions scoped;
    scoped.topic_scope = {"dev/7/#"};
    receiving->add_key("dev7", testutil::test_key(7), scoped);
    Verifier verifier(receiving, nullptr, at_clock(c.clock()));

    Signer stranger(signing, SignerOptions{c.clock(), std::nullopt, 1});
    CHECK(verifier.verify("t", stranger.sign("t", std::string("x"))).reason() == RejectReason::unknown_key);

    auto retired_sender = std::make_shared<Keyring>();
    KeyOptions earlier;
    earlier.not_after_ms = t0 + 1;
    retired_sender->add_key("retired", testutil::test_key(9), earlier);
    retired_sender->set_signing_key("retired");
    Signer retired(retired_sender, SignerOptions{c.clock(), std::nullopt, 1});
    CHECK(verifier.verify("t", retired.sign("t", std::string("x"))).reason() == RejectReason::key_not_valid);

    // A device key signing for someone else's topic: the sender's keyring has no scope, the
    // receiver's does, and the receiver decides.
    auto dev7_unscoped = std::make_shared<Keyring>();
    dev7_unscoped->add_key("dev7", testutil::test_key(7));
    dev7_unscoped->set_signing_key("dev7");
    Signer dev7(dev7_unscoped, SignerOptions{c.clock(), std::nullopt, 1});
    CHECK(verifier.verify("dev/8/temp", dev7.sign("dev/8/temp", std::string("x"))).reason() ==
          RejectReason::key_not_allowed_for_topic);
    CHECK(verifier.verify("dev/7/temp", dev7.sign("dev/7/temp", std::string("x"))).ok());
}

TEST_CASE("clock skew: accepted inside the windows, rejected outside", "[verifier]") {
    Clocked sender_clock;
    Clocked receiver_clock;
    auto keyring = keyring_with({"k1"}, "k1");
    Signer signer(keyring, SignerOptions{sender_clock.clock(), std::nullopt, 1});
    Verifier verifier(keyring, nullptr, at_clock(receiver_clock.clock()));
    const auto check = [&](std::int64_t skew) {
        sender_clock.now = t0 + skew;
        return verifier.verify("t", signer.sign("t", std::string("x")));
    };
    CHECK(check(59999).ok());
    CHECK(check(60000).ok());
    CHECK(check(60001).reason() == RejectReason::from_future);
    CHECK(check(-300000).ok());
    CHECK(check(-300001).reason() == RejectReason::too_old);
}

TEST_CASE("clocks past 2^31 and 2^32 seconds are judged exactly (no 32-bit time_t inside)", "[verifier]") {
    // 2038-01-19T03:14:08Z, where a signed 32-bit time_t ends, and 2106-02-07T06:28:16Z, where an
    // unsigned one does. Timestamps are u64 milliseconds end to end, also on 32-bit targets.
    for (const std::int64_t epoch_ms : {(std::int64_t{1} << 31) * 1000, (std::int64_t{1} << 32) * 1000}) {
        INFO("now " << epoch_ms << " ms");
        Clocked sender_clock;
        Clocked receiver_clock;
        sender_clock.now = epoch_ms;
        receiver_clock.now = epoch_ms;
        auto keyring = keyring_with({"k1"}, "k1");
        Signer signer(keyring, SignerOptions{sender_clock.clock(), std::nullopt, 1});
        Verifier verifier(keyring, nullptr, at_clock(receiver_clock.clock()));
        const auto check = [&](std::int64_t skew) {
            sender_clock.now = epoch_ms + skew;
            return verifier.verify("t", signer.sign("t", std::string("x")));
        };
        CHECK(check(-1).ok());
        CHECK(check(60000).ok());
        CHECK(check(60001).reason() == RejectReason::from_future);
        CHECK(check(-300000).ok());
        CHECK(check(-300001).reason() == RejectReason::too_old);
        sender_clock.now = epoch_ms;
        const auto env = signer.sign("t", std::string("y"));
        CHECK(verifier.verify("t", env).ok());
        CHECK(verifier.verify("t", env).reason() == RejectReason::replayed);
    }
}

TEST_CASE("the default clock reads the real time in milliseconds", "[clock]") {
    // On 32-bit time_t targets it reads the kernel's 64-bit clock itself: the same time, read
    // another way (a wrong layout or unit would be far off).
    using namespace std::chrono;
    const std::int64_t before = duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
    const std::int64_t ours = system_clock_ms();
    const std::int64_t after = duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
    CHECK(ours >= before - 50);  // the coarse clock lags by up to a kernel tick (1 to 4 ms)
    CHECK(ours <= after);
}

TEST_CASE("signing is refused without a usable key or for a bad topic", "[signer]") {
    auto keyring = keyring_with({"k1"}, nullptr);
    Signer signer(keyring);
    CHECK_THROWS_WITH(signer.sign("t", std::string("x")), Catch::Contains("no signing key"));
    keyring->set_signing_key("k1");
    CHECK_THROWS_AS(signer.sign("a/+", std::string("x")), SigningError);
    CHECK_THROWS_AS(signer.sign("", std::string("x")), SigningError);

    auto scoped = std::make_shared<Keyring>();
    KeyOptions o;
    o.topic_scope = {"mine/#"};
    o.not_before_ms = t0;
    scoped->add_key("s", testutil::test_key(3), o);
    scoped->set_signing_key("s");
    Clocked c;
    Signer s(scoped, SignerOptions{c.clock(), std::nullopt, 1});
    CHECK_NOTHROW(s.sign("mine/x", std::string("x")));
    CHECK_THROWS_WITH(s.sign("yours/x", std::string("x")), Catch::Contains("not allowed to sign for topic 'yours/x'"));
    c.now = t0 - 1;
    CHECK_THROWS_WITH(s.sign("mine/x", std::string("x")), Catch::Contains("outside its validity window"));
}

TEST_CASE("the counter refuses to wrap", "[signer]") {
    auto keyring = keyring_with({"k1"}, "k1");
    const std::uint64_t max = ~std::uint64_t{0};
    Signer signer(keyring, SignerOptions{{}, std::nullopt, max - 1});
    CHECK_NOTHROW(signer.sign("t", std::string("a")));
    const auto last = signer.sign("t", std::string("b"));
    CHECK(decode_envelope(last).envelope().header.counter == max);
    CHECK(signer.next_counter() == 0);
    CHECK_THROWS_WITH(signer.sign("t", std::string("c")), Catch::Contains("exhausted"));
    CHECK_THROWS_AS(signer.sign("t", std::string("d")), SigningError);  // stays exhausted
    CHECK_THROWS_AS(Signer(keyring, SignerOptions{{}, std::nullopt, 0}), ConfigError);
}

TEST_CASE("each signer is a new random stream, so restarts need no stored counter", "[signer]") {
    auto keyring = keyring_with({"k1"}, "k1");
    Verifier verifier(keyring);
    std::set<std::uint64_t> ids;
    for (int restart = 0; restart < 50; ++restart) {
        Signer signer(keyring);  // a "restarted" sender: counter starts at 1 again
        ids.insert(signer.stream_id());
        CHECK(verifier.verify("t", signer.sign("t", std::string("boot"))).ok());
    }
    CHECK(ids.size() == 50);
}

TEST_CASE("key rotation without downtime rejects nothing", "[keyring][verifier]") {
    auto sender = keyring_with({"2026-01"}, "2026-01");
    auto receiver = keyring_with({"2026-01"}, nullptr);
    Signer signer(sender);
    Verifier verifier(receiver);
    const auto send = [&] { return verifier.verify("t", signer.sign("t", std::string("m"))); };
    CHECK(send().ok());
    // 1. Distribute the next key everywhere, verify-only.
    sender->add_key("2026-02", testutil::test_key(50));
    receiver->add_key("2026-02", testutil::test_key(50));
    const auto in_flight_old = signer.sign("t", std::string("in flight"));
    CHECK(send().ok());
    // 2. Switch the signer.
    sender->set_signing_key("2026-02");
    const auto first_new = signer.sign("t", std::string("new key"));
    CHECK(decode_envelope(first_new).envelope().header.key_id == "2026-02");
    CHECK(verifier.verify("t", first_new).ok());
    CHECK(verifier.verify("t", in_flight_old).ok());  // old-key message arriving late
    // 3. Retire the old key: its messages are now unknown.
    const auto straggler = [&] {
        auto old_only = keyring_with({}, nullptr);
        old_only->add_key("2026-01", testutil::test_key(1));
        old_only->set_signing_key("2026-01");
        return Signer(old_only).sign("t", std::string("late"));
    }();
    CHECK(receiver->remove_key("2026-01"));
    CHECK(verifier.verify("t", straggler).reason() == RejectReason::unknown_key);
    CHECK(send().ok());
}

TEST_CASE("a key replaced under the same id takes effect from the next message", "[keyring][verifier][signer]") {
    // Signers and verifiers remember the key they used last; a change to the keyring must
    // still reach them at once.
    auto sender = keyring_with({"k1"}, "k1");
    auto receiver = keyring_with({"k1"}, nullptr);
    Signer signer(sender);
    Verifier verifier(receiver);
    REQUIRE(verifier.verify("t", signer.sign("t", std::string("old key"))).ok());
    const auto signed_with_old = signer.sign("t", std::string("old key, late"));

    receiver->remove_key("k1");
    receiver->add_key("k1", testutil::test_key(99));
    CHECK(verifier.verify("t", signed_with_old).reason() == RejectReason::bad_mac);

    sender->remove_key("k1");
    CHECK_THROWS_AS(signer.sign("t", std::string("no key")), SigningError);
    sender->add_key("k1", testutil::test_key(99));
    sender->set_signing_key("k1");
    CHECK(verifier.verify("t", signer.sign("t", std::string("new key"))).ok());
}

TEST_CASE("signing and verifying from several threads accepts every message once", "[verifier][threads]") {
    auto keyring = keyring_with({"k1"}, "k1");
    Signer signer(keyring);
    Verifier verifier(keyring);
    constexpr int per_thread = 3000;
    std::vector<std::vector<std::vector<std::uint8_t>>> made(2);
    std::vector<std::thread> threads;
    for (int t = 0; t < 2; ++t) {
        threads.emplace_back([&, t] {
            std::vector<std::uint8_t> buf;
            for (int i = 0; i < per_thread; ++i) {
                signer.sign_into("t/" + std::to_string(t), std::to_string(i), buf);
                made[static_cast<std::size_t>(t)].push_back(buf);
            }
        });
    }
    for (auto& th : threads) th.join();
    threads.clear();
    // All messages in counter order, as a broker would deliver one stream.
    std::vector<std::pair<std::string, std::vector<std::uint8_t>>> all;
    for (int t = 0; t < 2; ++t) {
        for (auto& m : made[static_cast<std::size_t>(t)]) all.emplace_back("t/" + std::to_string(t), std::move(m));
    }
    std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) {
        return decode_envelope(a.second).envelope().header.counter < decode_envelope(b.second).envelope().header.counter;
    });
    std::atomic<int> ok{0};
    std::atomic<int> replayed{0};
    for (int t = 0; t < 2; ++t) {
        // Both threads verify every message: each must be accepted exactly once overall.
        threads.emplace_back([&] {
            for (const auto& m : all) {
                const VerifyResult r = verifier.verify(m.first, m.second);
                if (r.ok()) {
                    ok.fetch_add(1);
                } else if (r.reason() == RejectReason::replayed) {
                    replayed.fetch_add(1);
                }
            }
        });
    }
    for (auto& th : threads) th.join();
    CHECK(ok.load() == 2 * per_thread);
    CHECK(replayed.load() == 2 * per_thread);
}

TEST_CASE("version() reports the library version", "[version]") {
    CHECK(version() == SECUREMQTT_VERSION_STRING);
    CHECK(version().find('.') != std::string_view::npos);
}

TEST_CASE("an age allowance lets a Last Will topic be older than max_age, and nothing else", "[verifier]") {
    Clocked c;
    auto keyring = keyring_with({"device-1"}, "device-1");
    Signer signer(keyring, SignerOptions{c.clock(), std::nullopt, 1});
    VerifierOptions options = at_clock(c.clock());
    options.age_allowances.push_back(AgeAllowance{"devices/+/status", 60 * 60 * 1000});
    Verifier verifier(keyring, nullptr, options);
    const auto will = signer.sign("devices/device-1/status", std::string("offline"));
    const auto reading = signer.sign("devices/device-1/temp", std::string("21.5"));
    c.now += 30 * 60 * 1000;  // half an hour later: past the default 5 minutes
    CHECK(verifier.verify("devices/device-1/temp", ByteView(reading)).reason() == RejectReason::too_old);
    REQUIRE(verifier.verify("devices/device-1/status", ByteView(will)).ok());
    CHECK(verifier.verify("devices/device-1/status", ByteView(will)).reason() == RejectReason::replayed);
    const auto late_will = signer.sign("devices/device-1/status", std::string("offline"));
    c.now += 61 * 60 * 1000;  // beyond the allowance
    CHECK(verifier.verify("devices/device-1/status", ByteView(late_will)).reason() == RejectReason::too_old);
    VerifierOptions bad = options;
    bad.age_allowances.push_back(AgeAllowance{"devices/#/x", 1000});
    CHECK_THROWS_AS(Verifier(keyring, nullptr, bad), ConfigError);
}

TEST_CASE("an arrival topic that is not a topic name is refused for scoped and unscoped keys alike",
          "[verifier]") {
    Clocked c;
    auto keyring = std::make_shared<Keyring>();
    keyring->add_key("open", testutil::test_key(1));
    KeyOptions everything;
    everything.topic_scope = {"#"};
    keyring->add_key("scoped", testutil::test_key(2), everything);
    Verifier verifier(keyring, nullptr, at_clock(c.clock()));
    const std::string longest(65535, 'a');
    const std::vector<std::string> invalid = {"", "a/+", "a/#", "#", std::string("a\0b", 3), longest + "a"};
    for (const char* id : {"open", "scoped"}) {
        keyring->set_signing_key(id);
        Signer signer(keyring, SignerOptions{c.clock(), std::nullopt, 1});
        for (const std::string& topic : invalid) {
            INFO(id << ", topic of " << topic.size() << " bytes");
            // Signed for a valid topic: were the scope check passed, the MAC would fail instead.
            CHECK(verifier.verify(topic, signer.sign("a/b", std::string("x"))).reason() ==
                  RejectReason::key_not_allowed_for_topic);
        }
        CHECK(verifier.verify(longest, signer.sign(longest, std::string("x"))).ok());
    }
}
