// SPDX-License-Identifier: Apache-2.0
#include "secure_buffer.hpp"

#include <securemqtt/tls_options.hpp>

#include <openssl/crypto.h>

#include <utility>

namespace securemqtt::detail {

SecureBuffer::SecureBuffer(std::size_t size)
    : data_(new std::uint8_t[size == 0 ? 1 : size]()), size_(size), capacity_(size) {}

SecureBuffer::~SecureBuffer() { wipe(); }

SecureBuffer::SecureBuffer(SecureBuffer&& other) noexcept
    : data_(std::move(other.data_)), size_(std::exchange(other.size_, 0)),
      capacity_(std::exchange(other.capacity_, 0)) {}

SecureBuffer& SecureBuffer::operator=(SecureBuffer&& other) noexcept {
    if (this != &other) {
        wipe();
        data_ = std::move(other.data_);
        size_ = std::exchange(other.size_, 0);
        capacity_ = std::exchange(other.capacity_, 0);
    }
    return *this;
}

void SecureBuffer::truncate(std::size_t size) noexcept {
    if (size >= size_) return;
    OPENSSL_cleanse(data_.get() + size, size_ - size);
    size_ = size;
}

void SecureBuffer::wipe() noexcept {
    if (data_) OPENSSL_cleanse(data_.get(), capacity_);
}

}  // namespace securemqtt::detail

namespace securemqtt {

void wipe(std::string& secret) noexcept {
    // Grow to the capacity (no reallocation) so bytes past the end are covered too, e.g. what a
    // shorter assignment or a move out of the small-string buffer left behind.
    secret.resize(secret.capacity());
    OPENSSL_cleanse(secret.data(), secret.size());
    secret.clear();
}

void wipe_secrets(TlsOptions& options) noexcept {
    wipe(options.key_pem);
    wipe(options.key_passphrase);
}

}  // namespace securemqtt
