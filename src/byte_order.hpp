// SPDX-License-Identifier: Apache-2.0
// Big-endian integer reads and writes for the wire format.
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
    T value = 0;
    for (std::size_t i = 0; i < sizeof(T); ++i) value = static_cast<T>((value << 8) | in[i]);
    return value;
}

}  // namespace securemqtt::detail
