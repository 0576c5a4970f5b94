// SPDX-License-Identifier: Apache-2.0
// The C++ library against tests/vectors/envelope-v1.json, following its "procedure".
#include "support/catch.hpp"
#include "support/json.hpp"
#include "support/test_util.hpp"

#include <securemqtt/securemqtt.hpp>

#include <memory>
#include <string>

using namespace securemqtt;
using testutil::from_hex;
using testutil::to_hex;

namespace {

const testjson::Value& vectors_doc() {
    static const testjson::Value doc = testjson::parse(testutil::read_file(SECUREMQTT_VECTORS_FILE));
    return doc;
}

std::shared_ptr<Keyring> vector_keyring(const testjson::Value& doc) {
    auto keyring = std::make_shared<Keyring>();
    for (const auto& k : doc["keys"].array) {
        KeyOptions options;
        if (k.has("not_before_ms")) options.not_before_ms = k["not_before_ms"].num();
        if (k.has("not_after_ms")) options.not_after_ms = k["not_after_ms"].num();
        if (k.has("topic_scope")) {
            for (const auto& f : k["topic_scope"].array) options.topic_scope.push_back(f.str());
        }
        keyring->add_key_hex(k["key_id"].str(), k["key_hex"].str(), options);
    }
    return keyring;
}

std::string outcome(const VerifyResult& result) {
    return result.ok() ? std::string("accept") : std::string(to_string(result.reason()));
}

// The doc's "verifier" options with a vector's or sequence's own overriding them.
std::int64_t option(const testjson::Value& doc, const testjson::Value& vec, const std::string& name) {
    if (vec.has("verifier") && vec["verifier"].has(name)) return vec["verifier"][name].num();
    if (name == "max_envelope_size" && vec.has(name)) return vec[name].num();
    return doc["verifier"][name].num();
}

Verifier vector_verifier(const testjson::Value& doc, const testjson::Value& vec, std::shared_ptr<Keyring> keyring) {
    const std::int64_t now = std::stoll(doc["verifier"]["now_ms"].str());
    ReplayGuardOptions guard_options;
    guard_options.window_size = static_cast<std::size_t>(option(doc, vec, "window_size"));
    guard_options.max_streams_per_key = static_cast<std::size_t>(option(doc, vec, "max_streams_per_key"));
    guard_options.max_keys = static_cast<std::size_t>(option(doc, vec, "max_keys"));
    guard_options.max_age_ms = option(doc, vec, "max_age_ms");
    guard_options.max_future_skew_ms = option(doc, vec, "max_future_skew_ms");
    guard_options.max_retained_age_ms = option(doc, vec, "max_retained_age_ms");
    REQUIRE(doc["verifier"]["retained_policy"].str() == "allow_older");
    VerifierOptions options;
    options.clock = [now] { return now; };
    options.max_envelope_size = static_cast<std::size_t>(option(doc, vec, "max_envelope_size"));
    return Verifier(std::move(keyring), std::make_shared<ReplayGuard>(guard_options), options);
}

}  // namespace

TEST_CASE("every envelope vector gives its expected outcome", "[vectors]") {
    const auto& doc = vectors_doc();
    const auto keyring = vector_keyring(doc);
    REQUIRE(doc["vectors"].array.size() >= 30);

    for (const auto& vec : doc["vectors"].array) {
        DYNAMIC_SECTION(vec["name"].str()) {
            Verifier verifier = vector_verifier(doc, vec, keyring);
            if (vec.has("before")) {
                for (const auto& prior : vec["before"].array) {
                    const auto bytes = from_hex(prior["envelope_hex"].str());
                    CHECK(outcome(verifier.verify(prior["topic"].str(), bytes)) == "accept");
                }
            }
            const auto envelope = from_hex(vec["envelope_hex"].str());
            const std::string topic = vec["topic"].str();
            const VerifyResult result = verifier.verify(topic, envelope, vec["retained"].boolean);
            CHECK(outcome(result) == vec["expect"].str());
            if (result.ok()) {
                CHECK(to_hex(result.message().payload) == vec["payload_hex"].str());
                CHECK(result.message().topic == topic);
            }
        }
    }
}

TEST_CASE("every sequence vector gives each step its expected outcome", "[vectors][replay]") {
    const auto& doc = vectors_doc();
    const auto keyring = vector_keyring(doc);
    REQUIRE(doc["sequences"].array.size() >= 3);
    for (const auto& seq : doc["sequences"].array) {
        DYNAMIC_SECTION(seq["name"].str()) {
            Verifier verifier = vector_verifier(doc, seq, keyring);
            std::size_t n = 0;
            for (const auto& step : seq["steps"].array) {
                INFO("step " << ++n);
                const auto bytes = from_hex(step["envelope_hex"].str());
                CHECK(outcome(verifier.verify(step["topic"].str(), bytes, step["retained"].boolean)) ==
                      step["expect"].str());
            }
        }
    }
}

TEST_CASE("signing the vectors' fields reproduces their bytes exactly", "[vectors][signer]") {
    const auto& doc = vectors_doc();
    const auto keyring = vector_keyring(doc);
    int checked = 0;
    for (const auto& vec : doc["vectors"].array) {
        if (!vec.has("fields")) continue;
        DYNAMIC_SECTION(vec["name"].str()) {
            const auto& f = vec["fields"];
            const auto payload = from_hex(vec["payload_hex"].str());
            const auto header = from_hex(vec["header_hex"].str());

            EnvelopeHeader h;
            h.key_id = f["key_id"].str();
            h.stream_id = std::stoull(f["stream_id"].str(), nullptr, 16);
            h.counter = std::stoull(f["counter"].str());
            h.timestamp_ms = std::stoll(f["timestamp_ms"].str());
            h.flags = static_cast<std::uint8_t>(f["flags"].num());
            std::vector<std::uint8_t> encoded(envelope_header_size(h.key_id.size()));
            CHECK(encode_envelope_header(h, payload.size(), encoded.data()) == encoded.size());
            CHECK(to_hex(encoded) == vec["header_hex"].str());
            CHECK(to_hex(envelope_mac_input(header, vec["topic"].str(), payload)) == vec["mac_input_hex"].str());

            keyring->set_signing_key(h.key_id);
            SignerOptions options;
            options.stream_id = h.stream_id;
            options.first_counter = h.counter;
            const std::int64_t ts = h.timestamp_ms;
            options.clock = [ts] { return ts; };
            Signer signer(keyring, options);
            const auto envelope = signer.sign(vec["topic"].str(), payload, (h.flags & envelope_flag_retain) != 0);
            CHECK(to_hex(envelope) == vec["envelope_hex"].str());
            CHECK(to_hex(ByteView(envelope.data() + envelope.size() - 32, 32)) == vec["tag_hex"].str());
        }
        ++checked;
    }
    CHECK(checked >= 8);
}

TEST_CASE("the vectors name every rejection reason", "[vectors]") {
    const auto& doc = vectors_doc();
    for (std::size_t i = 0; i < reject_reason_count; ++i) {
        // A shared store's outage, not a property of any envelope: no vector can show it.
        if (static_cast<RejectReason>(i) == RejectReason::replay_state_unavailable) continue;
        const std::string reason(to_string(static_cast<RejectReason>(i)));
        bool found = false;
        for (const auto& vec : doc["vectors"].array) found = found || vec["expect"].str() == reason;
        INFO(reason);
        CHECK(found);
    }
}
