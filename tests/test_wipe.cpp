// SPDX-License-Identifier: Apache-2.0
// Secrets given to a SecureSession (a PEM private key, a key passphrase) are wiped before any
// copy of them is freed: a replaced global operator delete scans every block freed through it
// (the library's, Paho C++'s and the standard library's) for the secrets. Its own program, so
// the replacement stays local. Connects only to a closed loopback port.
#include "support/catch.hpp"
#include "support/test_util.hpp"

#include <securemqtt/securemqtt.hpp>

#include <malloc.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <new>
#include <string>

using namespace securemqtt;
namespace fs = std::filesystem;

namespace {

// What the scanner looks for, set while no scan runs.
constexpr std::size_t most_markers = 4;
char markers[most_markers][128];
std::size_t marker_count = 0;
std::atomic<bool> scanning{false};
std::atomic<long> unwiped_frees{0};

void scan_and_free(void* p) noexcept {
    if (p != nullptr && scanning.load(std::memory_order_relaxed)) {
        const std::size_t size = malloc_usable_size(p);
        for (std::size_t i = 0; i < marker_count; ++i) {
            if (memmem(p, size, markers[i], std::strlen(markers[i])) != nullptr) {
                unwiped_frees.fetch_add(1, std::memory_order_relaxed);
            }
        }
    }
    std::free(p);
}

void* allocate(std::size_t size) {
    if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
    throw std::bad_alloc();
}

}  // namespace

void* operator new(std::size_t size) { return allocate(size); }
void* operator new[](std::size_t size) { return allocate(size); }
void* operator new(std::size_t size, const std::nothrow_t&) noexcept { return std::malloc(size == 0 ? 1 : size); }
void* operator new[](std::size_t size, const std::nothrow_t&) noexcept { return std::malloc(size == 0 ? 1 : size); }
void operator delete(void* p) noexcept { scan_and_free(p); }
void operator delete(void* p, std::size_t) noexcept { scan_and_free(p); }
void operator delete[](void* p) noexcept { scan_and_free(p); }
void operator delete[](void* p, std::size_t) noexcept { scan_and_free(p); }

namespace {

void set_markers(std::initializer_list<std::string> texts) {
    REQUIRE(texts.size() <= most_markers);
    marker_count = 0;
    for (const std::string& t : texts) {
        REQUIRE(t.size() < sizeof markers[0]);
        std::memcpy(markers[marker_count], t.c_str(), t.size() + 1);
        ++marker_count;
    }
}

void run(const std::string& cmd) { REQUIRE(std::system((cmd + " > /dev/null").c_str()) == 0); }

// A CA and client credentials made with the project's scripts: device.key is encrypted with
// `passphrase`, plain.key is not.
struct Credentials {
    explicit Credentials(const std::string& passphrase) {
        std::string templ = (fs::temp_directory_path() / "securemqtt-wipe-XXXXXX").string();
        REQUIRE(::mkdtemp(templ.data()) != nullptr);
        dir = templ;
        const std::string scripts = SECUREMQTT_SOURCE_DIR "/certs/";
        {
            std::FILE* f = std::fopen((dir / "pass").c_str(), "w");
            REQUIRE(f != nullptr);
            std::fputs((passphrase + "\n").c_str(), f);
            std::fclose(f);
        }
        run(scripts + "generate_ca.sh --out " + dir.string());
        run(scripts + "generate_client_cert.sh device --out " + dir.string() + " --passphrase-file " + (dir / "pass").string());
        run(scripts + "generate_client_cert.sh plain --out " + dir.string());
    }
    ~Credentials() {
        std::error_code ec;
        fs::remove_all(dir, ec);
    }
    TlsOptions tls(const std::string& name) const {
        TlsOptions t;
        t.ca_file = (dir / "ca.pem").string();
        t.cert_file = (dir / (name + ".pem")).string();
        t.key_file = (dir / (name + ".key")).string();
        return t;
    }
    fs::path dir;
};

SessionOptions session_options(TlsOptions tls) {
    SessionOptions o;
    o.server_uri = "mqtts://127.0.0.1:1";  // nothing listens: connect() fails after handing Paho the options
    o.tls = std::move(tls);
    o.keyring = std::make_shared<Keyring>();
    o.keyring->add_key_hex("k1", "8f3c2a9d0e7b4f61a5c3d2e1f0b9a8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1");
    o.keyring->set_signing_key("k1");
    o.auto_reconnect = false;
    return o;
}

// Makes a session from `tls`, connects (and fails), reloads with the same credentials twice
// (once given, once re-read), and destroys it, all while frees are scanned.
long unwiped_frees_over_a_session_life(const std::function<TlsOptions()>& make_tls) {
    unwiped_frees = 0;
    scanning = true;
    {
        SecureSession session(session_options(make_tls()));
        CHECK_THROWS_AS(session.connect(), ConnectionError);
        session.reload(make_tls());
        session.reload();
        CHECK_THROWS_AS(session.connect(), ConnectionError);
    }
    scanning = false;
    return unwiped_frees.load();
}

}  // namespace

TEST_CASE("the scanner finds a secret freed without wiping, and none once it is wiped", "[secrets]") {
    set_markers({"control-secret-7f3a9c-not-wiped"});
    unwiped_frees = 0;
    scanning = true;
    const auto secret_on_heap = [] {
        std::string s;
        s.reserve(100);  // one heap block, never reallocated
        s.append(markers[0]);
        return s;
    };
    {
        std::string unwiped = secret_on_heap();
    }
    {
        std::string wiped = secret_on_heap();
        wipe(wiped);
        CHECK(wiped.empty());
    }
    scanning = false;
    CHECK(unwiped_frees == 1);
}

TEST_CASE("a key passphrase is wiped from every copy the session keeps, Paho's included", "[secrets]") {
    // A long passphrase lives on the heap; a short one inside the string object (in the
    // session's own heap block).
    for (const char* text : {"long-passphrase-5e1d0c-to-be-wiped", "pp5e1d0c"}) {
        const std::string passphrase = text;
        SECTION(passphrase.size() > 15 ? "long" : "short") {
            const Credentials creds(passphrase);
            set_markers({passphrase});
            const long unwiped = unwiped_frees_over_a_session_life([&] {
                TlsOptions t = creds.tls("device");
                t.key_passphrase = passphrase;
                return t;
            });
            CHECK(unwiped == 0);
        }
    }
}

TEST_CASE("a private key given as PEM text is wiped from every copy the session keeps", "[secrets]") {
    const Credentials creds("unused-passphrase");
    std::string pem = testutil::read_file((creds.dir / "plain.key").string());
    // A line of the key's base64 body identifies it.
    const std::size_t body = pem.find('\n') + 1;
    set_markers({pem.substr(body, 48)});
    const long unwiped = unwiped_frees_over_a_session_life([&] {
        TlsOptions t = creds.tls("plain");
        t.key_file.clear();
        t.key_pem = pem;
        return t;
    });
    wipe(pem);
    CHECK(unwiped == 0);
}
