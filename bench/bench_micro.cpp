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

void BM_RawHmac(benchmark::State& state) {
    const std::string payload = payload_of(static_cast<std::size_t>(state.range(0)));
    EVP_MAC* mac = EVP_MAC_fetch(nullptr, OSSL_MAC_NAME_HMAC, nullptr);
    EVP_MAC_CTX* ctx = EVP_MAC_CTX_new(mac);
    char digest[] = OSSL_DIGEST_NAME_SHA2_256;
    const OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                                 OSSL_PARAM_construct_end()};
    EVP_MAC_init(ctx, key_bytes.data(), key_bytes.size(), params);
    unsigned char out[32];
    for (auto _ : state) {
        std::size_t len = 0;
        EVP_MAC_init(ctx, nullptr, 0, nullptr);
        EVP_MAC_update(ctx, reinterpret_cast<const unsigned char*>(payload.data()), payload.size());
        EVP_MAC_final(ctx, out, &len, sizeof out);
        benchmark::DoNotOptimize(out);
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
}
BENCHMARK(BM_RawHmac)->Apply(sizes);

void BM_RawHmacOneShot(benchmark::State& state) {
    const std::string payload = payload_of(static_cast<std::size_t>(state.range(0)));
    unsigned char out[32];
    for (auto _ : state) {
        unsigned int len = 0;
        HMAC(EVP_sha256(), key_bytes.data(), static_cast<int>(key_bytes.size()),
             reinterpret_cast<const unsigned char*>(payload.data()), payload.size(), out, &len);
        benchmark::DoNotOptimize(out);
    }
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

}  // namespace

BENCHMARK_MAIN();
