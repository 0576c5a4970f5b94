// SPDX-License-Identifier: Apache-2.0
// SecureBuffer: bytes that are wiped with OPENSSL_cleanse when freed or resized away.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

namespace securemqtt::detail {

class SecureBuffer {
public:
    SecureBuffer() noexcept = default;
    explicit SecureBuffer(std::size_t size);
    ~SecureBuffer();
    SecureBuffer(SecureBuffer&& other) noexcept;
    SecureBuffer& operator=(SecureBuffer&& other) noexcept;
    SecureBuffer(const SecureBuffer&) = delete;
    SecureBuffer& operator=(const SecureBuffer&) = delete;

    std::uint8_t* data() noexcept { return data_.get(); }
    const std::uint8_t* data() const noexcept { return data_.get(); }
    std::size_t size() const noexcept { return size_; }
    /// Shrinks the visible size; the bytes beyond it are wiped now.
    void truncate(std::size_t size) noexcept;

private:
    void wipe() noexcept;
    std::unique_ptr<std::uint8_t[]> data_;
    std::size_t size_ = 0;
    std::size_t capacity_ = 0;
};

}  // namespace securemqtt::detail
