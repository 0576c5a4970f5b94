// SPDX-License-Identifier: Apache-2.0
#include "envelope_mac.hpp"

#include "byte_order.hpp"

#include <securemqtt/envelope.hpp>

#include <cstring>

namespace securemqtt::detail {
namespace {

constexpr std::size_t prefix_buffer_size = 512;

void put_part(std::uint8_t*& p, ByteView part) noexcept {
    store_be<std::uint32_t>(p, static_cast<std::uint32_t>(part.size()));
    p += 4;
    if (!part.empty()) std::memcpy(p, part.data(), part.size());
    p += part.size();
}

void put_length(std::uint8_t* out, std::size_t size) noexcept {
    store_be<std::uint32_t>(out, static_cast<std::uint32_t>(size));
}

}  // namespace

bool compute_envelope_mac(const MacKey& key, ByteView header, std::string_view topic, ByteView payload,
                          MacTag& out, ByteView props) noexcept {
    const ByteView label(envelope_mac_label);
    const bool with_props = header.size() > 4 && (header[4] & envelope_flag_properties) != 0;
    const std::size_t prefix_size = 16 + label.size() + header.size() + topic.size();
    if (!with_props && prefix_size <= prefix_buffer_size) {
        std::uint8_t buf[prefix_buffer_size];
        std::uint8_t* p = buf;
        put_part(p, label);
        put_part(p, header);
        put_part(p, ByteView(topic));
        put_length(p, payload.size());
        p += 4;
        const ByteView parts[] = {ByteView(buf, static_cast<std::size_t>(p - buf)), payload};
        return key.compute(parts, 2, out);
    }
    // Long topics, and messages with covered properties (rare): the same bytes, part by part.
    std::uint8_t lens[5][4];
    put_length(lens[0], label.size());
    put_length(lens[1], header.size());
    put_length(lens[2], topic.size());
    put_length(lens[3], payload.size());
    put_length(lens[4], props.size());
    const ByteView parts[] = {
        ByteView(lens[0], 4), label,   ByteView(lens[1], 4), header,  ByteView(lens[2], 4),
        ByteView(topic),      ByteView(lens[3], 4), payload, ByteView(lens[4], 4), props,
    };
    return key.compute(parts, with_props ? 10 : 8, out);
}

}  // namespace securemqtt::detail
