// SPDX-License-Identifier: Apache-2.0
#include "connect_diagnosis.hpp"

#include <securemqtt/outcome.hpp>

#include "openssl_util.hpp"
#include "socket_options.hpp"

#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstring>
#include <optional>
#include <utility>

namespace securemqtt::detail {
namespace {

[[noreturn]] void malformed(const std::string& uri, const std::string& cause) {
    throw ConfigError("malformed broker URI '" + uri + "': " + cause);
}

bool is_ip_literal(const std::string& host) {
    return host.find(':') != std::string::npos ||
           host.find_first_not_of("0123456789.") == std::string::npos;
}

bool contains(const std::string& haystack, const char* needle) { return haystack.find(needle) != std::string::npos; }

Diagnosis from_verify_result(long result) {
    const std::string text = X509_verify_cert_error_string(result);
    const std::string detail = "TLS handshake failed: certificate verify failed (" + text + ")";
    switch (result) {
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH:
        return {ConnectFailure::hostname_mismatch, detail};
    case X509_V_ERR_CERT_HAS_EXPIRED:
    case X509_V_ERR_CERT_NOT_YET_VALID:
        return {ConnectFailure::certificate_expired, "TLS handshake failed: the broker's certificate " + text};
    case X509_V_ERR_CERT_REVOKED:
        return {ConnectFailure::certificate_revoked, detail};
    default:
        return {ConnectFailure::certificate_not_trusted, detail};
    }
}

// ALPN protocol names in the TLS wire format: each preceded by its length.
std::string alpn_wire(const std::vector<std::string>& protocols) {
    std::string wire;
    for (const std::string& p : protocols) {
        wire += static_cast<char>(static_cast<unsigned char>(p.size()));  // 1 to 255, checked by the preflight
        wire += p;
    }
    return wire;
}

// An alert the broker sent about our certificate, read from OpenSSL's error text.
Diagnosis from_alert(const std::string& reason) {
    const std::string detail = "TLS handshake failed: the broker rejected our certificate (" + reason + ")";
    if (contains(reason, "certificate expired")) return {ConnectFailure::certificate_expired, detail};
    if (contains(reason, "certificate revoked")) return {ConnectFailure::certificate_revoked, detail};
    if (contains(reason, "unknown ca") || contains(reason, "bad certificate") || contains(reason, "certificate unknown") ||
        contains(reason, "certificate required") || contains(reason, "decrypt error")) {
        return {ConnectFailure::certificate_not_trusted, detail};
    }
    return {ConnectFailure::tls_handshake, "TLS handshake failed: " + reason};
}

}  // namespace

ServerAddress parse_server_uri(const std::string& uri) {
    std::string rest;
    if (uri.rfind("mqtts://", 0) == 0) {
        rest = uri.substr(8);
    } else if (uri.rfind("ssl://", 0) == 0) {
        rest = uri.substr(6);
    } else if (uri.find("://") != std::string::npos) {
        malformed(uri, "securemqtt connects only over TLS (use mqtts://host:port)");
    } else {
        malformed(uri, "expected mqtts://host:port");
    }
    ServerAddress a;
    std::string port_text;
    if (!rest.empty() && rest.front() == '[') {
        const std::size_t close = rest.find(']');
        if (close == std::string::npos) malformed(uri, "unclosed '[' in IPv6 address");
        a.host = rest.substr(1, close - 1);
        const std::string after = rest.substr(close + 1);
        if (!after.empty()) {
            if (after.front() != ':') malformed(uri, "expected ':port' after ']'");
            port_text = after.substr(1);
        }
        a.host_for_uri = "[" + a.host + "]";
    } else {
        const std::size_t colon = rest.find(':');
        if (colon != std::string::npos && rest.find(':', colon + 1) != std::string::npos) {
            malformed(uri, "IPv6 addresses go in brackets, e.g. mqtts://[::1]:8883");
        }
        a.host = rest.substr(0, colon);
        if (colon != std::string::npos) port_text = rest.substr(colon + 1);
        a.host_for_uri = a.host;
    }
    if (a.host.empty()) malformed(uri, "no host");
    for (char c : a.host) {
        if (std::isspace(static_cast<unsigned char>(c)) || c == '/' || c == '@') malformed(uri, "invalid character in host");
    }
    if (!port_text.empty() || rest.find(':') != std::string::npos) {
        if (port_text.empty() || port_text.size() > 5 || port_text.find_first_not_of("0123456789") != std::string::npos) {
            malformed(uri, "port must be a number from 1 to 65535");
        }
        a.port = std::stoi(port_text);
        if (a.port < 1 || a.port > 65535) malformed(uri, "port must be a number from 1 to 65535");
    }
    return a;
}

std::string tls_cipher_string(const TlsOptions& tls) {
    if (tls.min_version == TlsVersion::tls1_3) return "aNULL:@SECLEVEL=2";
    std::string list = tls.ciphers.empty() ? std::string("DEFAULT") : tls.ciphers;
    if (list.find("@SECLEVEL") == std::string::npos) list += ":@SECLEVEL=2";
    return list;
}

namespace {

// MQTT 3.1.1's CONNACK return codes 1-5 and MQTT 5's reason codes from 0x80, each in its own words.
std::optional<Diagnosis> connack_refusal(int code, const char* to_whom) {
    if (code >= 1 && code <= 5) {
        static constexpr const char* words[] = {"", "unacceptable protocol version", "client identifier rejected",
                                                "server unavailable", "bad user name or password", "not authorised"};
        const ConnectFailure reason = code >= 4   ? ConnectFailure::not_authorized
                                      : code == 1 ? ConnectFailure::protocol_not_supported
                                                  : ConnectFailure::other;
        return Diagnosis{reason, std::string("the broker refused ") + to_whom + ": " + words[code] + " (CONNACK " +
                                     std::to_string(code) + ")"};
    }
    if (code >= 0x80 && code <= 0xA2) {
        const auto rc = static_cast<ReasonCode>(code);
        const bool refused_us = rc == ReasonCode::bad_user_name_or_password || rc == ReasonCode::not_authorized ||
                                rc == ReasonCode::banned || rc == ReasonCode::bad_authentication_method;
        const ConnectFailure reason = refused_us ? ConnectFailure::not_authorized
                                      : rc == ReasonCode::unsupported_protocol_version
                                          ? ConnectFailure::protocol_not_supported
                                          : ConnectFailure::other;
        return Diagnosis{reason, std::string("the broker refused ") + to_whom + ": " + std::string(to_string(rc)) +
                                     " (MQTT 5 reason code " + std::to_string(code) + ")"};
    }
    return std::nullopt;
}

SslCtxPtr probe_context(const TlsSetup& tls) {
    SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()));
    if (!ctx) return ctx;
    SSL_CTX_set_min_proto_version(ctx.get(), tls.min_version == TlsVersion::tls1_3 ? TLS1_3_VERSION : TLS1_2_VERSION);
    SSL_CTX_set_cipher_list(ctx.get(), tls.cipher_list.c_str());
    if (tls.os_trust_store) {
        SSL_CTX_set_default_verify_paths(ctx.get());  // as Paho does when given no CA
    } else {
        SSL_CTX_load_verify_locations(ctx.get(), tls.ca_file.empty() ? nullptr : tls.ca_file.c_str(),
                                      tls.ca_path.empty() ? nullptr : tls.ca_path.c_str());
    }
    if (!tls.alpn.empty()) {
        const std::string wire = alpn_wire(tls.alpn);
        SSL_CTX_set_alpn_protos(ctx.get(), reinterpret_cast<const unsigned char*>(wire.data()),
                                static_cast<unsigned>(wire.size()));
    }
    SSL_CTX_set_default_passwd_cb(ctx.get(), string_passphrase_callback);
    static const std::string no_passphrase;
    SSL_CTX_set_default_passwd_cb_userdata(
        ctx.get(), const_cast<std::string*>(tls.key_passphrase ? tls.key_passphrase : &no_passphrase));
    if (SSL_CTX_use_certificate_chain_file(ctx.get(), tls.cert_file.c_str()) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx.get(), tls.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
        ERR_clear_error();
        return nullptr;
    }
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
    return ctx;
}

// A CONNECT with a throwaway client id and clean start: the session's own id could take over,
// or (clean start) end, a session the broker keeps for it. 23 letters and digits, the form every
// broker must accept (MQTT-3.1.3-5). Keep-alive 10 s, no will, no login. Empty when no random id
// can be had.
std::string probe_connect(int mqtt_version) {
    unsigned char random[15] = {};
    if (RAND_bytes(random, sizeof random) != 1) return {};
    static constexpr char alphabet[] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    std::string id = "smqprobe";
    for (unsigned char b : random) id += alphabet[b % 62];
    std::string body("\0\4MQTT", 6);
    body += static_cast<char>(mqtt_version == 5 ? 5 : 4);
    body += '\x02';  // clean start
    body += std::string("\0\x0a", 2);
    if (mqtt_version == 5) body += '\0';  // no properties
    body += '\0';
    body += static_cast<char>(id.size());
    body += id;
    return std::string(1, '\x10') + static_cast<char>(body.size()) + body;  // < 128: one length byte
}

using Clock = std::chrono::steady_clock;

std::chrono::milliseconds left(Clock::time_point deadline) {
    return std::max(std::chrono::milliseconds(0),
                    std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()));
}

// How the broker answered the probe's CONNECT.
struct Answer {
    enum Kind { connack, closed, reset, alert, silent, not_mqtt };
    Answer(Kind k = silent, int c = -1, std::string t = {}) : kind(k), code(c), text(std::move(t)) {}
    Kind kind;
    int code;          ///< connack: the return code / reason code
    std::string text;  ///< reset: the system's words; alert: OpenSSL's
    bool before_connect = false;  ///< it happened before the probe sent CONNECT
};

// Reads exactly `n` bytes before `deadline` from the non-blocking socket; otherwise says how the
// connection ended, or that the time ran out (silent).
std::optional<Answer> read_exact(SSL* ssl, SocketHandle fd, unsigned char* out, std::size_t n, Clock::time_point deadline) {
    std::size_t got = 0;
    while (got < n) {
        if (left(deadline).count() <= 0) return Answer{Answer::silent};  // also against a trickle that never ends
        ERR_clear_error();
        clear_socket_error();
        const int r = SSL_read(ssl, out + got, static_cast<int>(n - got));
        const int saved_error = last_socket_error();
        if (r > 0) {
            got += static_cast<std::size_t>(r);
            continue;
        }
        const int error = SSL_get_error(ssl, r);
        if (error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE) {
            if (!wait_socket(fd, error == SSL_ERROR_WANT_WRITE, left(deadline))) return Answer{Answer::silent};
            continue;
        }
        if (error == SSL_ERROR_ZERO_RETURN) return Answer{Answer::closed};  // close_notify, or EOF (IGNORE_UNEXPECTED_EOF)
        if (error == SSL_ERROR_SSL) return Answer{Answer::alert, -1, openssl_reason("TLS error")};
        if (error == SSL_ERROR_SYSCALL && saved_error != 0) return Answer{Answer::reset, -1, socket_error_text(saved_error)};
        return Answer{Answer::closed};
    }
    return std::nullopt;
}

// Writes all of `data` before `deadline`; false when it could not (the read that follows says why).
bool write_all(SSL* ssl, SocketHandle fd, const std::string& data, Clock::time_point deadline) {
    std::size_t sent = 0;
    while (sent < data.size()) {
        if (left(deadline).count() <= 0) return false;
        ERR_clear_error();
        const int r = SSL_write(ssl, data.data() + sent, static_cast<int>(data.size() - sent));
        if (r > 0) {
            sent += static_cast<std::size_t>(r);
            continue;
        }
        const int error = SSL_get_error(ssl, r);
        if ((error != SSL_ERROR_WANT_READ && error != SSL_ERROR_WANT_WRITE) ||
            !wait_socket(fd, error == SSL_ERROR_WANT_WRITE, left(deadline))) {
            ERR_clear_error();
            return false;
        }
    }
    return true;
}

// Reads the broker's answer to CONNECT: a CONNACK's return/reason code, or how it ended.
Answer read_connack(SSL* ssl, SocketHandle fd, Clock::time_point deadline) {
    unsigned char type = 0;
    if (auto end = read_exact(ssl, fd, &type, 1, deadline)) return *end;
    if (type != 0x20) return Answer{Answer::not_mqtt};
    // Remaining Length: 1 to 4 bytes, 7 bits each (MQTT 5 §1.5.5). An MQTT 5 CONNACK may carry
    // properties (a reason string, user properties) past 127 bytes.
    std::size_t length = 0;
    for (int i = 0, shift = 0;; ++i, shift += 7) {
        unsigned char b = 0;
        if (auto end = read_exact(ssl, fd, &b, 1, deadline)) return *end;
        length |= static_cast<std::size_t>(b & 0x7F) << shift;
        if ((b & 0x80) == 0) break;
        if (i == 3) return Answer{Answer::not_mqtt};
    }
    if (length < 2) return Answer{Answer::not_mqtt};
    unsigned char flags_and_code[2] = {};
    if (auto end = read_exact(ssl, fd, flags_and_code, 2, deadline)) return *end;
    // The rest (MQTT 5 properties) is not needed; read up to 64 KiB of it so the close is clean.
    unsigned char sink[512];
    for (std::size_t rest = std::min<std::size_t>(length - 2, 65536); rest > 0;) {
        const std::size_t n = std::min(rest, sizeof sink);
        if (read_exact(ssl, fd, sink, n, deadline)) break;
        rest -= n;
    }
    return Answer{Answer::connack, flags_and_code[1]};
}

// One probe: TCP, TLS as Paho's, then a CONNECT of `mqtt_version` and its answer. A TCP or TLS
// failure is the diagnosis itself (first); otherwise the MQTT answer (second).
std::pair<std::optional<Diagnosis>, Answer> probe(const std::string& host, int port, const TlsSetup& tls,
                                                  int mqtt_version, Clock::time_point deadline) {
    const auto fail = [](ConnectFailure reason, std::string detail) {
        return std::make_pair(std::optional<Diagnosis>(Diagnosis{reason, std::move(detail)}), Answer{});
    };
    const std::chrono::milliseconds budget = left(deadline);
    if (budget.count() <= 0) return {std::nullopt, Answer{Answer::silent}};

    // TCP.
    const std::string target = (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + std::to_string(port);
    std::string tcp_error;
    const SocketHandle fd = connect_tcp(host, port, budget, std::min(budget, std::chrono::milliseconds(3000)), tcp_error);
    if (fd == invalid_socket) return fail(ConnectFailure::network_unreachable, "cannot reach " + target + ": " + tcp_error);
    BioPtr bio(BIO_new_socket(openssl_socket(fd), BIO_CLOSE));
    if (!bio) {
        close_socket(fd);
        return {std::nullopt, Answer{Answer::silent}};
    }

    // TLS, set up as Paho's was.
    SslCtxPtr ctx = probe_context(tls);
    if (!ctx) return {std::nullopt, Answer{Answer::silent}};
    SslPtr ssl(SSL_new(ctx.get()));
    if (!ssl) return {std::nullopt, Answer{Answer::silent}};
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl.get());
    // The session's trust store (ca_file) carries the CRLs after the CA certificates.
    if (tls.check_crl) X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL);
    if (tls.verify_hostname) {
        // As Paho checks: the text as an IP address where OpenSSL reads it as one, otherwise as
        // a host name. OpenSSL reads only full forms: "127.1" reaches 127.0.0.1 but is no IP
        // address to it, and no certificate names that text, so Paho refuses it: checked as a
        // host name, it fails the same way here (set1_ip_asc would fail and leave no check).
        if (!is_ip_literal(host) || X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str()) != 1) {
            X509_VERIFY_PARAM_set1_host(param, host.c_str(), host.size());
        }
    }
    if (!is_ip_literal(host)) {
        // SSL_set_tlsext_host_name, spelled out: the macro's C cast trips -Wold-style-cast.
        SSL_ctrl(ssl.get(), SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name, const_cast<char*>(host.c_str()));
    }
    BIO* raw = bio.release();
    SSL_set_bio(ssl.get(), raw, raw);  // the SSL object owns the socket now
    NoSigpipe no_sigpipe;  // a broker that already closed must not end the process on our write
    // Non-blocking from here: every wait is a poll bounded by the deadline, however slowly the
    // other side sends (the socket's own timeouts would restart with every byte).
    set_nonblocking(fd);
    int handshake = 0;
    for (;;) {
        ERR_clear_error();
        handshake = SSL_connect(ssl.get());
        if (handshake == 1) break;
        const int error = SSL_get_error(ssl.get(), handshake);
        if (error != SSL_ERROR_WANT_READ && error != SSL_ERROR_WANT_WRITE) break;
        if (!wait_socket(fd, error == SSL_ERROR_WANT_WRITE, left(deadline))) {
            return fail(ConnectFailure::timeout, "the TLS handshake with " + target + " did not finish within the connect timeout");
        }
    }
    if (handshake != 1) {
        const long result = SSL_get_verify_result(ssl.get());
        if (result != X509_V_OK) {
            ERR_clear_error();
            const Diagnosis d = from_verify_result(result);
            return fail(d.reason, d.detail);
        }
        const std::string reason = openssl_reason("handshake failed");
        if (contains(reason, "no application protocol")) {
            std::string offered;
            for (const std::string& p : tls.alpn) offered += (offered.empty() ? "" : ", ") + p;
            return fail(ConnectFailure::tls_handshake,
                        "TLS handshake failed: the broker accepts none of the ALPN protocols offered (" + offered + ")");
        }
        const Diagnosis d = from_alert(reason);
        return fail(d.reason, d.detail);
    }
    // A close without close_notify is a close here, not a TLS error.
    SSL_set_options(ssl.get(), SSL_OP_IGNORE_UNEXPECTED_EOF);

    // Under TLS 1.3 the broker judges our certificate after the handshake: an alert may be on
    // its way. Look for it briefly before writing, so it is read before any reset our write
    // could cause. (Under TLS 1.2 the handshake itself carried the verdict.)
    if (SSL_version(ssl.get()) == TLS1_3_VERSION) {
        const Clock::time_point glance = std::min(deadline, Clock::now() + std::chrono::milliseconds(200));
        unsigned char early = 0;
        std::optional<Answer> end = read_exact(ssl.get(), fd, &early, 1, glance);
        if (!end) return {std::nullopt, Answer{Answer::not_mqtt}};  // the broker spoke first
        if (end->kind == Answer::alert) {
            const Diagnosis d = from_alert(end->text);
            return fail(d.reason, d.detail);
        }
        if (end->kind != Answer::silent) {
            end->before_connect = true;
            return {std::nullopt, *end};
        }
    }

    const std::string connect = probe_connect(mqtt_version);
    if (connect.empty()) return {std::nullopt, Answer{Answer::silent}};
    write_all(ssl.get(), fd, connect, deadline);  // a failure shows in the read: an alert, or the end
    Answer answer = read_connack(ssl.get(), fd, deadline);
    if (answer.kind == Answer::alert) {
        const Diagnosis d = from_alert(answer.text);
        return fail(d.reason, d.detail);
    }
    if (answer.kind == Answer::connack) {
        if (answer.code == 0) write_all(ssl.get(), fd, std::string("\xe0\x00", 2), deadline);  // DISCONNECT
        SSL_shutdown(ssl.get());  // one attempt: the socket is non-blocking
    }
    return {std::nullopt, answer};
}

}  // namespace

Diagnosis diagnose_connect_failure(const std::string& host, int port, const TlsSetup& tls, int mqtt_version,
                                   const std::string& paho_message, int paho_code, std::chrono::milliseconds timeout) {
    if (auto refusal = connack_refusal(paho_code, "the connection")) return *refusal;
    // The connect used up its time: no probe (it would double a failed connect's duration).
    if (timeout.count() <= 0) {
        return {ConnectFailure::timeout, paho_message + " (the connect timeout ran out before the cause was known)"};
    }
    const Clock::time_point deadline = Clock::now() + timeout;
    auto [failure, answer] = probe(host, port, tls, mqtt_version, deadline);
    if (failure) return *failure;

    const char* const diagnostic = "a diagnostic connection made just after";
    switch (answer.kind) {
    case Answer::connack:
        if (answer.code == 0) return {ConnectFailure::other, paho_message + " (" + diagnostic + " was accepted)"};
        if (auto refusal = connack_refusal(answer.code, diagnostic)) {
            // Only a refusal of the protocol version speaks for the session's connection too: a
            // broker may refuse the probe's own client id, which the session's would pass.
            if (refusal->reason != ConnectFailure::protocol_not_supported) refusal->reason = ConnectFailure::other;
            return *refusal;
        }
        return {ConnectFailure::other, paho_message};
    case Answer::reset:
        return {ConnectFailure::other, std::string("the connection was reset ") +
                                           (answer.before_connect ? "right after the TLS handshake, before CONNECT ("
                                                                  : "after CONNECT (") +
                                           answer.text + ")"};
    case Answer::closed:
        if (answer.before_connect) {
            return {ConnectFailure::other,
                    "the broker closed the connection right after the TLS handshake, before CONNECT (its log may say why)"};
        }
        if (mqtt_version == 5) {
            // Brokers that know only MQTT 3.1.1 should answer CONNACK 1, but some (RabbitMQ
            // 3.10's MQTT plugin) close the connection instead. So do ACL checks and proxies
            // whose backend is down: ask again in MQTT 3.1.1 before blaming the version.
            const std::string closed = "the broker closed the connection after an MQTT 5 CONNECT without a CONNACK";
            auto [failure_311, answer_311] = probe(host, port, tls, 4, deadline);
            if (!failure_311 && answer_311.kind == Answer::connack && !answer_311.before_connect) {
                if (answer_311.code == 0) {
                    return {ConnectFailure::protocol_not_supported,
                            closed + ", and accepts MQTT 3.1.1: it does not support MQTT 5"};
                }
                if (auto refusal = connack_refusal(answer_311.code, "an MQTT 3.1.1 one")) {
                    return {ConnectFailure::other, closed + "; " + refusal->detail};
                }
            }
            if (!failure_311 && answer_311.kind == Answer::closed && !answer_311.before_connect) {
                return {ConnectFailure::other, closed + " (MQTT 3.1.1 likewise; its log may say why)"};
            }
            return {ConnectFailure::other, closed + " (its log may say why)"};
        }
        return {ConnectFailure::other,
                "the broker closed the connection after CONNECT without a CONNACK (its log may say why)"};
    case Answer::alert:
    case Answer::silent:
    case Answer::not_mqtt:
        break;
    }
    return {ConnectFailure::other, paho_message};
}

}  // namespace securemqtt::detail
