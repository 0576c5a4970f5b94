// SPDX-License-Identifier: Apache-2.0
// Command-line options shared by secure_publisher and secure_subscriber, spelled as
// mosquitto_pub and mosquitto_sub spell them.
#pragma once

#include <securemqtt/securemqtt.hpp>

#include <cstdint>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace cli {

struct Options {
    std::string host = "localhost";
    int port = 8883;
    std::vector<std::string> topics;
    std::string message;
    bool has_message = false;
    std::string file;
    bool lines = false;
    securemqtt::QoS qos = securemqtt::QoS::at_most_once;
    bool retain = false;
    std::string client_id;
    int keep_alive = 60;
    bool persistent = false;  // -c
    int count = 0;            // -C
    int wait_seconds = 0;     // -W
    std::optional<long long> session_expiry;  // -x (MQTT 5)
    int kill_in_handler = 0;  // --kill-in-handler (tests): SIGKILL inside the Nth handler call
    int flush_timeout = 0;    // --flush-timeout; 0: wait for every acknowledgement
    bool verbose = false;     // -v
    bool debug = false;       // -d
    securemqtt::MqttVersion mqtt_version = securemqtt::MqttVersion::v3_1_1;  // -V
    std::optional<securemqtt::LastWill> will;                    // --will-*
    std::int64_t max_age_s = 0;                                  // --max-age; 0: the library default
    std::vector<std::pair<std::string, std::int64_t>> age_allowances;  // --will-max-age FILTER=SECONDS
    std::string replay_store;                                    // --replay-store; empty: in memory
    std::int64_t store_hold_ms = 0;                              // --store-hold; 0: the library default
    int replay_window = 0;                                       // --replay-window; 0: the library default
    std::int64_t store_lease_ms = 0;                             // --store-lease; 0: the library default
    securemqtt::MessageProperties properties;                    // -D publish ... (MQTT 5)
    bool has_properties = false;
    std::string format;                                          // -F (subscriber)
    securemqtt::TlsOptions tls;
    std::vector<std::pair<std::string, std::string>> keys;  // (key id, hex key file)
    std::vector<std::pair<std::string, std::string>> scopes;  // (key id, topic filter)
};

/// Thrown for a bad command line: the program prints the message and the usage, exits 2.
struct UsageError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

inline securemqtt::LastWill& will_of(Options& o) {
    if (!o.will) {
        o.will.emplace();
        o.will->qos = securemqtt::QoS::at_most_once;  // mosquitto_pub's default
    }
    return *o.will;
}

inline int parse_int(const std::string& flag, const std::string& value) {
    try {
        std::size_t used = 0;
        const int n = std::stoi(value, &used);
        if (used == value.size()) return n;
    } catch (...) {
    }
    throw UsageError(flag + " needs a number, got '" + value + "'");
}

inline securemqtt::QoS parse_qos(const std::string& flag, const std::string& value) {
    const int n = parse_int(flag, value);
    if (n < 0 || n > 2) throw UsageError(flag + " takes 0, 1 or 2");
    return static_cast<securemqtt::QoS>(n);
}

// Seconds, fractions allowed (e.g. "0.5"), at most a day.
inline double parse_seconds(const std::string& flag, const std::string& value) {
    try {
        std::size_t used = 0;
        const double d = std::stod(value, &used);
        if (used == value.size() && d >= 0 && d <= 86400) return d;
    } catch (...) {
    }
    throw UsageError(flag + " needs a number of seconds (at most 86400), got '" + value + "'");
}

// Reads the first line of a passphrase file into `pass`. Unbuffered, so that no stdio buffer
// keeps a copy; the line buffer is wiped.
inline void read_passphrase_file(const std::string& path, std::string& pass) {
    std::FILE* f = std::fopen(path.c_str(), "r");
    if (f == nullptr) throw securemqtt::ConfigError("passphrase file '" + path + "': cannot be read");
    std::setvbuf(f, nullptr, _IONBF, 0);
    std::string line(1024, '\0');
    const bool got = std::fgets(line.data(), static_cast<int>(line.size()), f) != nullptr;
    std::fclose(f);
    securemqtt::wipe(pass);
    if (got) pass.assign(line.c_str());
    securemqtt::wipe(line);
    while (!pass.empty() && (pass.back() == '\n' || pass.back() == '\r')) pass.pop_back();
}

// A decimal number from 0 to 2^32 - 1 (MQTT's four-byte intervals); -1 when it is not one.
inline long long parse_u32(const std::string& text) {
    try {
        std::size_t used = 0;
        const long long n = std::stoll(text, &used);
        if (used == text.size() && n >= 0 && n <= 4294967295LL) return n;
    } catch (...) {
    }
    return -1;
}

// mosquitto_pub's -D publish PROPERTY VALUE (user-property takes NAME VALUE).
inline void parse_publish_property(const std::string& command, const std::string& name,
                                   const std::function<std::string()>& value, Options& o) {
    if (command != "publish") {
        throw UsageError("-D " + command + ": only publish properties are supported (-D publish PROPERTY VALUE)");
    }
    securemqtt::MessageProperties& p = o.properties;
    if (name == "content-type") p.content_type = value();
    else if (name == "response-topic") p.response_topic = value();
    else if (name == "correlation-data") p.correlation_data = value();
    else if (name == "user-property") {
        std::string key = value();
        p.user_properties.push_back({std::move(key), value()});
    } else if (name == "message-expiry-interval") {
        const long long n = parse_u32(value());
        if (n < 0) throw UsageError("-D publish message-expiry-interval takes 0 to 4294967295 seconds");
        p.message_expiry = std::chrono::seconds(n);
    } else if (name == "payload-format-indicator") {
        const std::string v = value();
        if (v != "0" && v != "1") throw UsageError("-D publish payload-format-indicator takes 0 or 1");
        p.payload_format = v == "1" ? securemqtt::PayloadFormat::utf8 : securemqtt::PayloadFormat::unspecified;
    } else {
        throw UsageError("-D publish " + name + ": not a property this program publishes (content-type, "
                         "correlation-data, message-expiry-interval, payload-format-indicator, response-topic, "
                         "user-property)");
    }
    o.has_properties = true;
}

/// Parses argv. `publisher` selects the publisher's flags (-m -f -l -r) or the subscriber's
/// (-C -v -W). Returns false when --help was asked for.
inline bool parse(int argc, char** argv, bool publisher, Options& o) {
    std::string pending_key_id;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        const auto value = [&]() -> std::string {
            if (i + 1 >= argc) throw UsageError(a + " needs a value");
            return argv[++i];
        };
        if (a == "--help") return false;
        if (a == "-h" || a == "--host") o.host = value();
        else if (a == "-p" || a == "--port") o.port = parse_int(a, value());
        else if (a == "-t" || a == "--topic") o.topics.push_back(value());
        else if (a == "-q" || a == "--qos") o.qos = parse_qos(a, value());
        else if (a == "-i" || a == "--id") o.client_id = value();
        else if (a == "-k" || a == "--keepalive") o.keep_alive = parse_int(a, value());
        else if (a == "-c" || a == "--disable-clean-session") o.persistent = true;
        else if (a == "-d" || a == "--debug") o.debug = true;
        else if (a == "--will-topic") will_of(o).topic = value();
        else if (a == "--will-payload") will_of(o).payload = value();
        else if (a == "--will-qos") will_of(o).qos = parse_qos(a, value());
        else if (a == "--will-retain") will_of(o).retain = true;
        else if (!publisher && a == "--max-age") {
            o.max_age_s = parse_int(a, value());
            if (o.max_age_s < 1) throw UsageError("--max-age takes a number of seconds, at least 1");
        } else if (!publisher && a == "--replay-store") {
            o.replay_store = value();
            if (o.replay_store.empty()) throw UsageError("--replay-store needs a file path or redis://HOST:PORT[/DB]");
        } else if (!publisher && a == "--replay-window") {
            o.replay_window = parse_int(a, value());
            if (o.replay_window < 64 || o.replay_window > 65536 || o.replay_window % 64 != 0) {
                throw UsageError("--replay-window takes a multiple of 64 from 64 to 65536");
            }
        } else if (!publisher && a == "--store-hold") {
            const std::string v = value();
            o.store_hold_ms = static_cast<std::int64_t>(parse_seconds(a, v) * 1000);
            if (o.store_hold_ms < 1) throw UsageError("--store-hold takes a number of seconds above 0, got '" + v + "'");
        } else if (!publisher && a == "--store-lease") {
            const std::string v = value();
            o.store_lease_ms = static_cast<std::int64_t>(parse_seconds(a, v) * 1000);
            if (o.store_lease_ms < 1) throw UsageError("--store-lease takes a number of seconds above 0, got '" + v + "'");
        } else if (!publisher && a == "--will-max-age") {
            const std::string v = value();
            const std::size_t eq = v.rfind('=');
            if (eq == std::string::npos || eq == 0) throw UsageError("--will-max-age takes FILTER=SECONDS, got '" + v + "'");
            o.age_allowances.emplace_back(v.substr(0, eq), parse_int(a, v.substr(eq + 1)));
        }
        else if (a == "-V" || a == "--protocol-version") {
            const std::string v = value();
            if (v == "mqttv311" || v == "311" || v == "4") o.mqtt_version = securemqtt::MqttVersion::v3_1_1;
            else if (v == "mqttv5" || v == "5") o.mqtt_version = securemqtt::MqttVersion::v5;
            else throw UsageError("-V takes mqttv311 or mqttv5, got '" + v + "'");
        } else if (a == "--cafile") o.tls.ca_file = value();
        else if (a == "--capath") o.tls.ca_path = value();
        else if (a == "--cert") o.tls.cert_file = value();
        else if (a == "--key") o.tls.key_file = value();
        else if (a == "--crlfile") o.tls.crl_file = value();
        else if (a == "--key-passphrase-file") read_passphrase_file(value(), o.tls.key_passphrase);
        else if (a == "--tls-version") o.tls.min_version = securemqtt::parse_tls_version(value());
        else if (a == "--ciphers") o.tls.ciphers = value();
        else if (a == "--insecure") o.tls.verify_hostname = false;
        else if (a == "--tls-alpn") o.tls.alpn.push_back(value());
        else if (a == "--tls-use-os-certs") o.tls.use_os_trust_store = true;
        else if (a == "--key-id") pending_key_id = value();
        else if (a == "--hmac-key") {
            const std::string file = value();
            o.keys.emplace_back(pending_key_id.empty() ? std::string("default") : pending_key_id, file);
            pending_key_id.clear();
        } else if (a == "--scope") {
            const std::string v = value();
            const std::size_t eq = v.find('=');
            if (eq == std::string::npos || eq == 0) throw UsageError("--scope takes KEYID=FILTER, got '" + v + "'");
            o.scopes.emplace_back(v.substr(0, eq), v.substr(eq + 1));
        } else if (publisher && (a == "-m" || a == "--message")) {
            o.message = value();
            o.has_message = true;
        } else if (publisher && (a == "-f" || a == "--file")) o.file = value();
        else if (publisher && (a == "-l" || a == "--stdin-line")) o.lines = true;
        else if (publisher && (a == "-r" || a == "--retain")) o.retain = true;
        else if (publisher && a == "--flush-timeout") {
            o.flush_timeout = parse_int(a, value());
            if (o.flush_timeout < 1) throw UsageError("--flush-timeout takes a number of seconds, at least 1");
        }
        else if (publisher && (a == "-D" || a == "--property")) {
            const std::string command = value();
            const std::string name = value();
            parse_publish_property(command, name, value, o);
        }
        else if (!publisher && (a == "-F")) o.format = value();
        else if (!publisher && (a == "-C" || a == "--count")) o.count = parse_int(a, value());
        else if (!publisher && (a == "-v" || a == "--verbose")) o.verbose = true;
        else if (!publisher && (a == "-W" || a == "--timeout")) o.wait_seconds = parse_int(a, value());
        else if (a == "-x" || a == "--session-expiry") {
            const std::string v = value();
            const long long n = v == "-1" ? 4294967295LL : parse_u32(v);  // -1: mosquitto_sub's "never"
            if (n < 0) throw UsageError("-x takes seconds from 0 to 4294967295, or -1 for never");
            o.session_expiry = n;
        } else if (!publisher && a == "--kill-in-handler") {
            o.kill_in_handler = parse_int(a, value());
            if (o.kill_in_handler < 1) throw UsageError("--kill-in-handler takes a message number, at least 1");
        }
        else throw UsageError("unknown option '" + a + "'");
    }
    if (o.will && o.will->topic.empty()) throw UsageError("--will-payload, --will-qos and --will-retain need --will-topic");
    if (!pending_key_id.empty()) throw UsageError("--key-id " + pending_key_id + " must be followed by --hmac-key FILE");
    if (o.topics.empty()) throw UsageError("no topic given (-t)");
    if (o.keys.empty()) throw UsageError("no HMAC key given (--hmac-key FILE)");
    if (o.has_properties && o.mqtt_version != securemqtt::MqttVersion::v5) throw UsageError("-D needs -V mqttv5 (properties are MQTT 5's)");
    if (publisher) {
        const int sources = (o.has_message ? 1 : 0) + (o.file.empty() ? 0 : 1) + (o.lines ? 1 : 0);
        if (sources != 1) throw UsageError("give exactly one of -m MESSAGE, -f FILE, -l");
        if (o.topics.size() != 1) throw UsageError("publish to exactly one topic (-t)");
    }
    return true;
}

inline const char* session_usage() {
    return "  -i ID                  client id (default random)\n"
           "  -k SECONDS             keep-alive (default 60)\n"
           "  -c                     persistent session (needs -i)\n"
           "  -x SECONDS             MQTT 5: how long the broker keeps the session after a\n"
           "                         disconnect (default with -c: never expires, -1)\n"
           "  -V mqttv311|mqttv5     protocol version\n"
           "  -d                     debug log on stderr\n"
           "  --will-topic TOPIC     Last Will: published by the broker if this program dies\n"
           "  --will-payload TEXT    its payload (signed afresh for every connection)\n"
           "  --will-qos QOS         its QoS (default 0); --will-retain: retain it\n";
}

inline const char* tls_usage() {
    return "TLS (mutual TLS is required):\n"
           "  --cafile FILE          CA certificate(s) to trust for the broker\n"
           "  --capath DIR           directory of hashed CA certificates\n"
           "  --cert FILE            client certificate (PEM)\n"
           "  --key FILE             client private key (PEM)\n"
           "  --key-passphrase-file FILE  passphrase of an encrypted --key\n"
           "  --crlfile FILE         CRLs (PEM) to check the broker's and our certificates against\n"
           "  --tls-version VER      oldest TLS version: tlsv1.2 (default) or tlsv1.3\n"
           "  --ciphers LIST         OpenSSL cipher list for TLS 1.2\n"
           "  --tls-use-os-certs     trust the system's CA certificates (instead of --cafile)\n"
           "  --tls-alpn PROTO       offer ALPN protocol PROTO (repeatable), e.g. x-amzn-mqtt-ca\n"
           "  --insecure             do not check the broker's host name (not for production)\n"
           "Message integrity:\n"
           "  --key-id ID            key id for the next --hmac-key (default: 'default')\n"
           "  --hmac-key FILE        hex HMAC key file (openssl rand -hex 32 > FILE)\n"
           "  --scope KEYID=FILTER   the key may sign only for topics matching FILTER (repeatable)\n";
}

/// The session options the flags describe; logs go to stderr with -d (warnings always).
inline securemqtt::SessionOptions session_options(const Options& o) {
    securemqtt::SessionOptions s;
    const bool v6 = o.host.find(':') != std::string::npos;
    s.server_uri = "mqtts://" + (v6 ? "[" + o.host + "]" : o.host) + ":" + std::to_string(o.port);
    s.client_id = o.client_id;
    s.tls = o.tls;
    s.mqtt_version = o.mqtt_version;
    if (o.session_expiry) s.session_expiry = std::chrono::seconds(*o.session_expiry);
    s.keep_alive = std::chrono::seconds(o.keep_alive);
    s.clean_session = !o.persistent;
    s.will = o.will;
    if (o.max_age_s > 0) s.replay.max_age_ms = o.max_age_s * 1000;
    if (o.store_hold_ms > 0) s.replay.store_hold_ms = o.store_hold_ms;
    if (o.replay_window > 0) s.replay.window_size = static_cast<std::size_t>(o.replay_window);
    if (o.store_lease_ms > 0) s.replay.store_lease_ms = o.store_lease_ms;
    s.replay.store = securemqtt::open_replay_store(o.replay_store);  // throws ConfigError: exit 3
    for (const auto& allowance : o.age_allowances) {
        s.verifier.age_allowances.push_back(securemqtt::AgeAllowance{allowance.first, allowance.second * 1000});
    }
    const bool debug = o.debug;
    s.logger = [debug](securemqtt::LogLevel level, std::string_view message) {
        if (debug || level >= securemqtt::LogLevel::warning) std::cerr << std::string(message) + '\n';  // one write: lines from other threads stay whole
    };
    // A scope for a key id that is not loaded would leave the intended key unscoped: refuse it.
    for (const auto& scope : o.scopes) {
        bool known = false;
        std::string ids;
        for (const auto& k : o.keys) {
            known = known || k.first == scope.first;
            ids += (ids.empty() ? "" : ", ") + k.first;
        }
        if (!known) {
            throw securemqtt::ConfigError("--scope " + scope.first + "=" + scope.second + ": no key with id '" +
                                          scope.first + "' is loaded (key ids: " + ids + ")");
        }
    }
    s.keyring = std::make_shared<securemqtt::Keyring>(s.logger);
    for (const auto& k : o.keys) {
        securemqtt::KeyOptions key_options;
        for (const auto& scope : o.scopes) {
            if (scope.first == k.first) key_options.topic_scope.push_back(scope.second);
        }
        s.keyring->add_key_file(k.first, k.second, key_options);
    }
    s.keyring->set_signing_key(o.keys.front().first);
    return s;
}

/// Runs a program's body with the exit codes both programs share: 0 done, 1 connection
/// failure (one line with the reason), 2 bad usage, 3 bad configuration. `usage` prints --help.
template <typename Usage, typename Body>
int run(const char* program, int argc, char** argv, bool publisher, Usage usage, Body body) {
    Options o;
    struct WipeOnExit {
        Options& o;
        ~WipeOnExit() { securemqtt::wipe_secrets(o.tls); }
    } wipe_on_exit{o};
    try {
        if (!parse(argc, argv, publisher, o)) {
            usage();
            return 0;
        }
        return body(o);
    } catch (const UsageError& e) {
        std::cerr << program << ": " << e.what() << " (see --help)\n";
        return 2;
    } catch (const securemqtt::ConnectionError& e) {
        std::cerr << program << ": " << e.what() << " [" << securemqtt::to_string(e.reason()) << "]\n";
        return 1;
    } catch (const securemqtt::Error& e) {
        std::cerr << program << ": " << e.what() << '\n';
        return 3;
    }
}

}  // namespace cli
