// SPDX-License-Identifier: Apache-2.0
// ByteView: a non-owning view of bytes, the currency of the envelope API.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace securemqtt {

/// A read-only view of contiguous bytes (C++17 has no std::span).
///
/// It never owns what it points at: the caller keeps the bytes alive for as long as the view,
/// or anything derived from it, is used. Converts implicitly from std::string, std::string_view,
/// string literals and std::vector<std::uint8_t>, so text and binary payloads pass the same way.
class ByteView {
public:
    constexpr ByteView() noexcept = default;
    constexpr ByteView(const std::uint8_t* data, std::size_t size) noexcept : data_(data), size_(size) {}
    ByteView(const void* data, std::size_t size) noexcept
        : data_(static_cast<const std::uint8_t*>(data)), size_(size) {}
    ByteView(std::string_view s) noexcept : ByteView(s.data(), s.size()) {}
    /// Text up to its terminating NUL (not included), so that publish("t", "21.5") sends the
    /// four bytes "21.5". Null is empty.
    ByteView(const char* text) noexcept : ByteView(text ? std::string_view(text) : std::string_view()) {}
    ByteView(const std::string& s) noexcept : ByteView(s.data(), s.size()) {}
    ByteView(const std::vector<std::uint8_t>& v) noexcept : data_(v.data()), size_(v.size()) {}

    constexpr const std::uint8_t* data() const noexcept { return data_; }
    constexpr std::size_t size() const noexcept { return size_; }
    constexpr bool empty() const noexcept { return size_ == 0; }
    constexpr const std::uint8_t* begin() const noexcept { return data_; }
    constexpr const std::uint8_t* end() const noexcept { return data_ + size_; }
    constexpr std::uint8_t operator[](std::size_t i) const noexcept { return data_[i]; }

    /// The first `n` bytes from `offset`; the caller has checked the bounds.
    constexpr ByteView subview(std::size_t offset, std::size_t n) const noexcept {
        return ByteView(data_ + offset, n);
    }
    /// The same bytes seen as characters (payloads are often text).
    std::string_view as_string_view() const noexcept {
        return std::string_view(reinterpret_cast<const char*>(data_), size_);
    }
    /// An owning copy.
    std::vector<std::uint8_t> to_vector() const { return std::vector<std::uint8_t>(begin(), end()); }

private:
    const std::uint8_t* data_ = nullptr;
    std::size_t size_ = 0;
};

}  // namespace securemqtt
