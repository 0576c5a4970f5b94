// SPDX-License-Identifier: Apache-2.0
// Big-endian integer reads and writes for the wire format, and little-endian ones for the
// replay database's window words: explicit byte order, never the machine's.
#pragma once

#include <cstddef>
#include <cstdint>

namespace securemqtt::detail {

template <typename T>
inline void store_be(std::uint8_t* out, T value) noexcept {
    for (std::size_t i = 0; i < sizeof(T); ++i) {
        out[sizeof(T) - 1 - i] = static_cast<std::uint8_t>(value & 0xFFu);
        value = static_cast<T>(value >> 8);
    }
}

template <typename T>
inline T load_be(const std::uint8_t* in) noexcept {
    // Compilers turn this pattern into one load and a byte swap.
    T value = 0;
    for (std::size_t i = 0; i < sizeof(T); ++i) value = static_cast<T>((value << 8) | in[i]);
    return value;
}

template <>
inline std::uint64_t load_be<std::uint64_t>(const std::uint8_t* p) noexcept {
    return (std::uint64_t{p[0]} << 56) | (std::uint64_t{p[1]} << 48) | (std::uint64_t{p[2]} << 40) |
           (std::uint64_t{p[3]} << 32) | (std::uint64_t{p[4]} << 24) | (std::uint64_t{p[5]} << 16) |
           (std::uint64_t{p[6]} << 8) | std::uint64_t{p[7]};
}

template <>
inline std::uint32_t load_be<std::uint32_t>(const std::uint8_t* p) noexcept {
    return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | std::uint32_t{p[3]};
}

template <typename T>
inline void store_le(std::uint8_t* out, T value) noexcept {
    for (std::size_t i = 0; i < sizeof(T); ++i) {
        out[i] = static_cast<std::uint8_t>(value & 0xFFu);
        value = static_cast<T>(value >> 8);
    }
}

template <typename T>
inline T load_le(const std::uint8_t* in) noexcept {
    T value = 0;
    for (std::size_t i = sizeof(T); i-- > 0;) value = static_cast<T>((value << 8) | in[i]);
    return value;
}

}  // namespace securemqtt::detail
