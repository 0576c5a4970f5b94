// SPDX-License-Identifier: Apache-2.0
// Micro benchmarks: signing and verifying against raw OpenSSL HMAC-SHA256 in the same run.
//
//   build/bench/bench/securemqtt_bench            (scripts/bench prints the ratios)
//
// BM_RawHmac is the floor: a pre-keyed EVP_MAC_CTX re-initialised per message over the payload
// alone. BM_RawHmacOneShot is the naive HMAC() call, which re-derives the key pads each time.
#include <securemqtt/securemqtt.hpp>

#include <benchmark/benchmark.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <cstdio>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

using namespace securemqtt;

namespace {

const std::vector<std::uint8_t> key_bytes(32, 0x5a);
const std::string topic = "plant/line-1/temperature";

std::string payload_of(std::size_t size) { return std::string(size, 'p'); }

std::shared_ptr<Keyring> make_keyring() {
    auto k = std::make_shared<Keyring>();
    k->add_key("bench", key_bytes);
    k->set_signing_key("bench");
    return k;
}

void sizes(benchmark::internal::Benchmark* b) {
    for (int s : {32, 256, 1024, 16384, 65536}) b->Arg(s);
}

// The floor: HMAC-SHA256 of the payload alone, keyed once, re-initialised per message.
class RawHmac {
public:
    RawHmac() : mac_(EVP_MAC_fetch(nullptr, OSSL_MAC_NAME_HMAC, nullptr)), ctx_(EVP_MAC_CTX_new(mac_)) {
        char digest[] = OSSL_DIGEST_NAME_SHA2_256;
        const OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                                     OSSL_PARAM_construct_end()};
        EVP_MAC_init(ctx_, key_bytes.data(), key_bytes.size(), params);
    }
    ~RawHmac() {
        EVP_MAC_CTX_free(ctx_);
        EVP_MAC_free(mac_);
    }
    RawHmac(const RawHmac&) = delete;
    RawHmac& operator=(const RawHmac&) = delete;

    void operator()(const std::string& payload) {
        std::size_t len = 0;
        EVP_MAC_init(ctx_, nullptr, 0, nullptr);
        EVP_MAC_update(ctx_, reinterpret_cast<const unsigned char*>(payload.data()), payload.size());
        EVP_MAC_final(ctx_, out_, &len, sizeof out_);
        benchmark::DoNotOptimize(out_);
    }

private:
    EVP_MAC* mac_;
    EVP_MAC_CTX* ctx_;
    unsigned char out_[32];
};

void one_shot_hmac(const std::string& payload) {
    unsigned char out[32];
    unsigned int len = 0;
    HMAC(EVP_sha256(), key_bytes.data(), static_cast<int>(key_bytes.size()),
         reinterpret_cast<const unsigned char*>(payload.data()), payload.size(), out, &len);
    benchmark::DoNotOptimize(out);
}

void BM_RawHmac(benchmark::State& state) {
    const std::string payload = payload_of(static_cast<std::size_t>(state.range(0)));
    RawHmac raw;
    for (auto _ : state) raw(payload);
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
}
BENCHMARK(BM_RawHmac)->Apply(sizes);

void BM_RawHmacOneShot(benchmark::State& state) {
    const std::string payload = payload_of(static_cast<std::size_t>(state.range(0)));
    for (auto _ : state) one_shot_hmac(payload);
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
}
BENCHMARK(BM_RawHmacOneShot)->Apply(sizes);

void BM_Sign(benchmark::State& state) {
    static std::shared_ptr<Keyring> keyring = make_keyring();
    const std::string payload = payload_of(static_cast<std::size_t>(state.range(0)));
    Signer signer(keyring);  // one stream per thread
    std::vector<std::uint8_t> buffer;
    for (auto _ : state) {
        signer.sign_into(topic, payload, buffer);
        benchmark::DoNotOptimize(buffer.data());
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
}
BENCHMARK(BM_Sign)->Apply(sizes);
BENCHMARK(BM_Sign)->Arg(256)->Threads(2)->UseRealTime();

// Verify needs a fresh counter per message: each thread verifies a batch of envelopes from its
// own stream and, between batches (timing paused), signs the next batch.
struct VerifyFixture {
    std::shared_ptr<Keyring> keyring = make_keyring();
    std::shared_ptr<Verifier> verifier = std::make_shared<Verifier>(keyring);  // shared by threads
};

void BM_Verify(benchmark::State& state) {
    static VerifyFixture shared;
    const std::size_t size = static_cast<std::size_t>(state.range(0));
    // Batches small enough to stay in cache, as a message just read from the socket is; the
    // raw HMAC reads one hot payload too.
    const std::size_t batch = std::max<std::size_t>(8, (512u << 10) / (size + 100));
    Signer signer(shared.keyring);
    const std::string payload = payload_of(size);
    std::vector<std::vector<std::uint8_t>> envelopes(batch);
    for (auto& e : envelopes) signer.sign_into(topic, payload, e);
    std::size_t i = 0;
    std::size_t accepted = 0;
    for (auto _ : state) {
        if (i == batch) {
            state.PauseTiming();
            for (auto& e : envelopes) signer.sign_into(topic, payload, e);  // next counters, same guard
            i = 0;
            state.ResumeTiming();
        }
        const VerifyResult r = shared.verifier->verify(topic, envelopes[i++]);
        accepted += r.ok() ? 1u : 0u;
        benchmark::DoNotOptimize(r);
    }
    if (accepted != static_cast<std::size_t>(state.iterations())) state.SkipWithError("a genuine envelope was rejected");
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
}
BENCHMARK(BM_Verify)->Apply(sizes);
BENCHMARK(BM_Verify)->Arg(256)->Threads(2)->UseRealTime();

void BM_ReplayGuard(benchmark::State& state) {
    ReplayGuard guard;
    const std::int64_t now = system_clock_ms();
    StreamPosition p;
    p.key_id = "bench";
    p.stream_id = 42;
    p.timestamp_ms = now;
    std::uint64_t counter = 0;
    for (auto _ : state) {
        p.counter = ++counter;
        benchmark::DoNotOptimize(guard.admit(p, now));
    }
}
BENCHMARK(BM_ReplayGuard);

// Paired ratios. On a shared machine the speed drifts between benchmarks run seconds apart, and
// a ratio of two medians inherits that drift. Here each iteration times a batch of the
// operation and a batch of its baseline back to back (alternating which goes first), and the
// counter `ratio` is the median of the per-batch ratios: the figure the budgets are judged by.
class PairedRatio {
public:
    // Times `op` and `base`, one after the other, and records op / base.
    template <typename Op, typename Base>
    void measure(Op&& op, Base&& base) {
        op_first_ = !op_first_;
        if (op_first_) {
            const Nanos o = timed(op);
            ratios_.push_back(o / timed(base));
        } else {
            const Nanos b = timed(base);
            ratios_.push_back(timed(op) / b);
        }
    }
    void report(benchmark::State& state) {
        if (ratios_.empty()) return;
        const auto middle = ratios_.begin() + static_cast<std::ptrdiff_t>(ratios_.size() / 2);
        std::nth_element(ratios_.begin(), middle, ratios_.end());
        state.counters["ratio"] = *middle;
    }

private:
    using Nanos = std::chrono::duration<double, std::nano>;
    template <typename Batch>
    static Nanos timed(Batch& batch) {
        const auto start = std::chrono::steady_clock::now();
        batch();
        return std::chrono::steady_clock::now() - start;
    }
    std::vector<double> ratios_;
    bool op_first_ = false;
};

std::size_t batch_for(std::size_t size) { return std::max<std::size_t>(4, (64u << 10) / (size + 100)); }

void BM_SignVsRaw(benchmark::State& state) {
    const std::string payload = payload_of(static_cast<std::size_t>(state.range(0)));
    const std::size_t batch = batch_for(payload.size());
    Signer signer(make_keyring());
    RawHmac raw;
    std::vector<std::uint8_t> buffer;
    PairedRatio ratio;
    for (auto _ : state) {
        ratio.measure([&] { for (std::size_t i = 0; i < batch; ++i) signer.sign_into(topic, payload, buffer); },
                      [&] { for (std::size_t i = 0; i < batch; ++i) raw(payload); });
    }
    ratio.report(state);
}
BENCHMARK(BM_SignVsRaw)->Arg(256)->Arg(16384);

void BM_VerifyVsRaw(benchmark::State& state) {
    const std::string payload = payload_of(static_cast<std::size_t>(state.range(0)));
    auto keyring = make_keyring();
    Signer signer(keyring);
    Verifier verifier(keyring);
    RawHmac raw;
    std::vector<std::vector<std::uint8_t>> envelopes(batch_for(payload.size()));
    std::size_t rejected = 0;
    PairedRatio ratio;
    for (auto _ : state) {
        state.PauseTiming();
        for (auto& e : envelopes) signer.sign_into(topic, payload, e);  // fresh counters
        state.ResumeTiming();
        ratio.measure([&] { for (const auto& e : envelopes) rejected += verifier.verify(topic, e).ok() ? 0u : 1u; },
                      [&] { for (std::size_t i = 0; i < envelopes.size(); ++i) raw(payload); });
    }
    if (rejected != 0) state.SkipWithError("a genuine envelope was rejected");
    ratio.report(state);
}
BENCHMARK(BM_VerifyVsRaw)->Arg(256)->Arg(16384);

// Signing and verifying with typical MQTT 5 covered properties (a request: content type,
// response topic, 16-byte correlation data, two user properties; their canonical encoding built
// on each side, as SecureSession does) against the same without properties: the ratio is the
// properties' cost per message.
void BM_PropertiesVsPlain(benchmark::State& state) {
    const std::string payload = payload_of(static_cast<std::size_t>(state.range(0)));
    auto keyring = make_keyring();
    Signer signer(keyring);
    Verifier verifier(keyring);
    MessageProperties props;
    props.content_type = "application/json";
    props.response_topic = "devices/app-1/replies/0123456789abcdef0123456789abcdef";
    props.correlation_data = std::string(16, '\x5a');
    props.user_properties = {{"trace", "4bf92f3577b34da6"}, {"unit", "C"}};
    const std::size_t batch = batch_for(payload.size());
    std::vector<std::uint8_t> envelope, covered;
    std::size_t rejected = 0;
    PairedRatio ratio;
    for (auto _ : state) {
        ratio.measure(
            [&] {
                for (std::size_t i = 0; i < batch; ++i) {
                    signer.sign_into(topic, payload, envelope, false, props);
                    encode_covered_properties(props, covered);
                    rejected += verifier.verify(topic, envelope, false, covered).ok() ? 0u : 1u;
                }
            },
            [&] {
                for (std::size_t i = 0; i < batch; ++i) {
                    signer.sign_into(topic, payload, envelope);
                    rejected += verifier.verify(topic, envelope).ok() ? 0u : 1u;
                }
            });
    }
    if (rejected != 0) state.SkipWithError("a genuine envelope was rejected");
    ratio.report(state);
}
BENCHMARK(BM_PropertiesVsPlain)->Arg(256);

// Verify and confirm with the durable SQLite replay store against the in-memory guard: the ratio
// is time per message with the store over time without (1 / 0.85 = 1.18 is the budget
// for throughput; this is the micro figure, without the network). WAL, synchronous=NORMAL: one
// write per confirmed message, no fsync per message. The counter store_extra_us is what the
// store adds per message in microseconds: (store time - in-memory time) / messages.
void BM_StoreVsMemory(benchmark::State& state) {
    const std::string payload = payload_of(static_cast<std::size_t>(state.range(0)));
    auto keyring = make_keyring();
    const std::string file = "/tmp/securemqtt-bench-" + std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()) + ".db";
    ReplayGuardOptions durable;
    durable.store = open_replay_store(file);
    Verifier with_store(keyring, std::make_shared<ReplayGuard>(durable));
    Verifier in_memory(keyring);
    Signer signer(keyring);
    std::vector<std::vector<std::uint8_t>> stored(batch_for(payload.size())), memory(stored.size());
    std::size_t rejected = 0;
    using Micros = std::chrono::duration<double, std::micro>;
    Micros store_time{0};
    Micros memory_time{0};
    const auto run = [&rejected](const Verifier& v, const std::vector<std::vector<std::uint8_t>>& envelopes,
                                 Micros& total) {
        const auto start = std::chrono::steady_clock::now();
        for (const auto& e : envelopes) {
            const VerifyResult r = v.verify(topic, e);
            if (!r || !v.confirm(r.message())) ++rejected;
        }
        total += std::chrono::steady_clock::now() - start;
    };
    PairedRatio ratio;
    for (auto _ : state) {
        state.PauseTiming();
        for (auto& e : stored) signer.sign_into(topic, payload, e);
        for (auto& e : memory) signer.sign_into(topic, payload, e);
        state.ResumeTiming();
        ratio.measure([&] { run(with_store, stored, store_time); }, [&] { run(in_memory, memory, memory_time); });
    }
    if (rejected != 0) state.SkipWithError("a genuine envelope was rejected or not confirmed");
    ratio.report(state);
    const double messages = static_cast<double>(state.iterations()) * static_cast<double>(stored.size());
    if (messages > 0) state.counters["store_extra_us"] = (store_time - memory_time).count() / messages;
    for (const char* suffix : {"", "-wal", "-shm"}) std::remove((file + suffix).c_str());
}
BENCHMARK(BM_StoreVsMemory)->Arg(256);

void BM_OneShotVsSign(benchmark::State& state) {
    const std::string payload = payload_of(static_cast<std::size_t>(state.range(0)));
    const std::size_t batch = batch_for(payload.size());
    Signer signer(make_keyring());
    std::vector<std::uint8_t> buffer;
    PairedRatio ratio;
    for (auto _ : state) {
        ratio.measure([&] { for (std::size_t i = 0; i < batch; ++i) one_shot_hmac(payload); },
                      [&] { for (std::size_t i = 0; i < batch; ++i) signer.sign_into(topic, payload, buffer); });
    }
    ratio.report(state);
}
BENCHMARK(BM_OneShotVsSign)->Arg(256);

// The floor the v1 format sets: raw HMAC over as many bytes as the envelope's MAC input holds
// (length-prefixed label, header and topic before the payload) against raw HMAC of the payload.
void BM_MacInputVsRaw(benchmark::State& state) {
    const std::string payload = payload_of(static_cast<std::size_t>(state.range(0)));
    const std::size_t header = envelope_fixed_overhead - envelope_tag_size + std::string_view("bench").size();
    const std::string mac_input(16 + envelope_mac_label.size() + header + topic.size() + payload.size(), 'p');
    const std::size_t batch = batch_for(payload.size());
    RawHmac raw;
    PairedRatio ratio;
    for (auto _ : state) {
        ratio.measure([&] { for (std::size_t i = 0; i < batch; ++i) raw(mac_input); },
                      [&] { for (std::size_t i = 0; i < batch; ++i) raw(payload); });
    }
    ratio.report(state);
}
BENCHMARK(BM_MacInputVsRaw)->Arg(256);

}  // namespace

BENCHMARK_MAIN();
