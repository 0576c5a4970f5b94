// SPDX-License-Identifier: Apache-2.0
// RAII owners for the OpenSSL handles the library uses, and OpenSSL's error queue as text.
#pragma once

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include <memory>
#include <string>

namespace securemqtt::detail {

template <typename T, void (*Free)(T*)>
struct OpenSslDeleter {
    void operator()(T* p) const noexcept { Free(p); }
};

inline void free_x509_stack(STACK_OF(X509)* s) { sk_X509_pop_free(s, X509_free); }

using BioPtr = std::unique_ptr<BIO, OpenSslDeleter<BIO, BIO_free_all>>;
using X509Ptr = std::unique_ptr<X509, OpenSslDeleter<X509, X509_free>>;
using X509StackPtr = std::unique_ptr<STACK_OF(X509), OpenSslDeleter<STACK_OF(X509), free_x509_stack>>;
using X509StorePtr = std::unique_ptr<X509_STORE, OpenSslDeleter<X509_STORE, X509_STORE_free>>;
using X509StoreCtxPtr = std::unique_ptr<X509_STORE_CTX, OpenSslDeleter<X509_STORE_CTX, X509_STORE_CTX_free>>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, OpenSslDeleter<EVP_PKEY, EVP_PKEY_free>>;
using SslCtxPtr = std::unique_ptr<SSL_CTX, OpenSslDeleter<SSL_CTX, SSL_CTX_free>>;
using SslPtr = std::unique_ptr<SSL, OpenSslDeleter<SSL, SSL_free>>;

/// The oldest error on OpenSSL's queue as "reason" text (library and function stripped), and
/// clears the queue. `fallback` when the queue is empty.
std::string openssl_reason(const char* fallback = "unknown OpenSSL error");

/// An OpenSSL pem_password_cb whose `user` argument is a `const std::string*` passphrase.
/// Refuses (returns -1) an empty passphrase or one longer than OpenSSL's buffer.
int string_passphrase_callback(char* buf, int size, int rwflag, void* user);

}  // namespace securemqtt::detail
