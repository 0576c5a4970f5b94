// SPDX-License-Identifier: Apache-2.0
#include "connect_diagnosis.hpp"

#include <securemqtt/outcome.hpp>

#include "openssl_util.hpp"
#include "socket_options.hpp"

#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include <cctype>
#include <cerrno>
#include <optional>
#include <cstring>

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

// A CONNECT with a random client id and clean start: the session's own id could take over, or
// (clean start) end, a session the broker keeps for it. Keep-alive 10 s, no will, no login.
std::string probe_connect(int mqtt_version) {
    unsigned char random[8] = {};
    RAND_bytes(random, sizeof random);
    std::string id = "securemqtt-probe-";
    static constexpr char hex[] = "0123456789abcdef";
    for (unsigned char b : random) {
        id += hex[b >> 4];
        id += hex[b & 15];
    }
    std::string body("\0\4MQTT", 6);
    body += static_cast<char>(mqtt_version == 5 ? 5 : 4);
    body += '\x02';            // clean start
    body += std::string("\0\x0a", 2);
    if (mqtt_version == 5) body += '\0';  // no properties
    body += '\0';
    body += static_cast<char>(id.size());
    body += id;
    return std::string(1, '\x10') + static_cast<char>(body.size()) + body;  // < 128: one length byte
}

}  // namespace

Diagnosis diagnose_connect_failure(const std::string& host, int port, const TlsSetup& tls, int mqtt_version,
                                   const std::string& paho_message, int paho_code, std::chrono::milliseconds timeout) {
    if (auto refusal = connack_refusal(paho_code, "the connection")) return *refusal;
    const std::string& fallback_detail = paho_message;
    // The connect used up its time: no probe (it would double a failed connect's duration).
    if (timeout.count() <= 0) {
        return {ConnectFailure::timeout, paho_message + " (the connect timeout ran out before the cause was known)"};
    }

    // TCP.
    const std::string target = (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + std::to_string(port);
    std::string tcp_error;
    const int fd = connect_tcp(host, port, timeout, std::min(timeout, std::chrono::milliseconds(3000)), tcp_error);
    if (fd < 0) return {ConnectFailure::network_unreachable, "cannot reach " + target + ": " + tcp_error};
    BioPtr bio(BIO_new_socket(fd, BIO_CLOSE));
    if (!bio) return {ConnectFailure::other, fallback_detail};

    // TLS, set up as Paho's was.
    SslCtxPtr ctx = probe_context(tls);
    if (!ctx) return {ConnectFailure::tls_handshake, fallback_detail};
    SslPtr ssl(SSL_new(ctx.get()));
    if (!ssl) return {ConnectFailure::other, fallback_detail};
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
    ERR_clear_error();
    if (SSL_connect(ssl.get()) != 1) {
        const long result = SSL_get_verify_result(ssl.get());
        if (result != X509_V_OK) {
            ERR_clear_error();
            return from_verify_result(result);
        }
        const std::string reason = openssl_reason("handshake failed");
        if (contains(reason, "no application protocol")) {
            std::string offered;
            for (const std::string& p : tls.alpn) offered += (offered.empty() ? "" : ", ") + p;
            return {ConnectFailure::tls_handshake,
                    "TLS handshake failed: the broker accepts none of the ALPN protocols offered (" + offered + ")"};
        }
        return from_alert(reason);
    }

    // MQTT. Under TLS 1.3 the broker judges our certificate after the handshake: its alert is
    // what the read finds then. Otherwise the CONNACK, or the end of the connection.
    const std::string connect = probe_connect(mqtt_version);
    ERR_clear_error();
    // A broker that closed already fails the write (no SIGPIPE: Paho ignores it process-wide
    // from its first client on, and the probe runs only for a session's client); the read says why.
    SSL_write(ssl.get(), connect.data(), static_cast<int>(connect.size()));
    unsigned char answer[4] = {};
    int got = 0;
    while (got < 4) {
        const int n = SSL_read(ssl.get(), answer + got, 4 - got);
        if (n <= 0) break;
        got += n;
    }
    if (got == 0) {
        const int error = SSL_get_error(ssl.get(), 0);
        const std::string why = openssl_reason("");
        if (!why.empty() && error == SSL_ERROR_SSL) return from_alert(why);
        const bool closed = error == SSL_ERROR_ZERO_RETURN || (error == SSL_ERROR_SYSCALL && errno != EAGAIN &&
                                                               errno != EWOULDBLOCK && errno != EINTR);
        if (!closed) return {ConnectFailure::other, fallback_detail};  // no answer within the probe's time
        if (mqtt_version == 5) {
            return {ConnectFailure::protocol_not_supported,
                    "the broker closed the connection after CONNECT without a CONNACK: it may not support MQTT 5 "
                    "(try MQTT 3.1.1)"};
        }
        return {ConnectFailure::other,
                "the broker closed the connection after CONNECT without a CONNACK (its log may say why)"};
    }
    // CONNACK: type 0x20, then [flags, code] -- the same two bytes in MQTT 3.1.1 and 5.
    if (got == 4 && answer[0] == 0x20 && answer[1] >= 2) {
        if (auto refusal = connack_refusal(answer[3], "a diagnostic connection just made")) return *refusal;
        if (answer[3] == 0) SSL_write(ssl.get(), "\xe0\x00", 2);  // DISCONNECT; Paho's attempt failed all the same
    }
    return {ConnectFailure::other, fallback_detail};
}

}  // namespace securemqtt::detail
