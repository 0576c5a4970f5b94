// SPDX-License-Identifier: Apache-2.0
#include <securemqtt/envelope.hpp>
#include <securemqtt/properties.hpp>

#include "byte_order.hpp"

#include <cstring>
#include <limits>
#include <stdexcept>

namespace securemqtt {

using detail::load_be;
using detail::store_be;

bool is_valid_key_id(std::string_view key_id) noexcept {
    if (key_id.empty() || key_id.size() > max_key_id_size) return false;
    for (char c : key_id) {
        if (c < 0x21 || c > 0x7E) return false;
    }
    return true;
}

std::size_t encode_envelope_header(const EnvelopeHeader& header, std::size_t payload_size,
                                   std::uint8_t* out) {
    if (!is_valid_key_id(header.key_id)) throw std::invalid_argument("envelope: invalid key id");
    if (header.counter == 0) throw std::invalid_argument("envelope: counter 0 is reserved");
    if (header.timestamp_ms < 0) throw std::invalid_argument("envelope: negative timestamp");
    if ((header.flags & ~envelope_known_flags) != 0) throw std::invalid_argument("envelope: unknown flag bits");
    if (payload_size > std::numeric_limits<std::uint32_t>::max()) {
        throw std::invalid_argument("envelope: payload larger than 4 GiB");
    }
    std::uint8_t* p = out;
    *p++ = envelope_magic_0;
    *p++ = envelope_magic_1;
    *p++ = envelope_version;
    *p++ = algorithm_hmac_sha256;
    *p++ = header.flags;
    *p++ = static_cast<std::uint8_t>(header.key_id.size());
    std::memcpy(p, header.key_id.data(), header.key_id.size());
    p += header.key_id.size();
    store_be<std::uint64_t>(p, header.stream_id);
    p += 8;
    store_be<std::uint64_t>(p, header.counter);
    p += 8;
    store_be<std::uint64_t>(p, static_cast<std::uint64_t>(header.timestamp_ms));
    p += 8;
    store_be<std::uint32_t>(p, static_cast<std::uint32_t>(payload_size));
    p += 4;
    return static_cast<std::size_t>(p - out);
}

DecodeResult decode_envelope(ByteView in, std::size_t max_size) noexcept {
    if (in.size() > max_size) return RejectReason::too_large;
    // Magic, version, algorithm: enough to tell "not ours" from "a version we do not speak".
    if (in.size() < 4 || in[0] != envelope_magic_0 || in[1] != envelope_magic_1) return RejectReason::malformed;
    if (in[2] != envelope_version) return RejectReason::unsupported_version;
    if (in[3] != algorithm_hmac_sha256) return RejectReason::unsupported_algorithm;
    if (in.size() < envelope_fixed_overhead) return RejectReason::malformed;

    DecodedEnvelope env;
    env.header.flags = in[4];
    if ((env.header.flags & ~envelope_known_flags) != 0) return RejectReason::malformed;

    const std::size_t key_id_size = in[5];
    // Bounds: the fixed overhead plus the key id must fit before we read past the key id.
    if (key_id_size > in.size() - envelope_fixed_overhead) return RejectReason::malformed;
    const std::uint8_t* p = in.data() + 6;
    env.header.key_id = std::string_view(reinterpret_cast<const char*>(p), key_id_size);
    if (!is_valid_key_id(env.header.key_id)) return RejectReason::malformed;
    p += key_id_size;

    env.header.stream_id = load_be<std::uint64_t>(p);
    env.header.counter = load_be<std::uint64_t>(p + 8);
    const std::uint64_t timestamp = load_be<std::uint64_t>(p + 16);
    const std::uint32_t payload_size = load_be<std::uint32_t>(p + 24);
    p += 28;
    if (env.header.counter == 0) return RejectReason::malformed;
    if (timestamp > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
        return RejectReason::malformed;
    }
    env.header.timestamp_ms = static_cast<std::int64_t>(timestamp);

    const std::size_t header_size = envelope_header_size(key_id_size);
    // Exact length: no truncation and no trailing bytes (they would escape the MAC).
    if (in.size() - envelope_fixed_overhead - key_id_size != payload_size) return RejectReason::malformed;

    env.header_bytes = in.subview(0, header_size);
    env.payload = in.subview(header_size, payload_size);
    if ((env.header.flags & envelope_flag_utf8) != 0 && !is_well_formed_utf8(env.payload)) {
        return RejectReason::malformed;
    }
    env.tag = in.subview(header_size + payload_size, envelope_tag_size);
    return env;
}

std::vector<std::uint8_t> envelope_mac_input(ByteView header_bytes, std::string_view topic, ByteView payload,
                                             ByteView props) {
    std::vector<std::uint8_t> out;
    out.reserve(16 + envelope_mac_label.size() + header_bytes.size() + topic.size() + payload.size());
    const auto append = [&out](ByteView part) {
        std::uint8_t len[4];
        store_be<std::uint32_t>(len, static_cast<std::uint32_t>(part.size()));
        out.insert(out.end(), len, len + 4);
        out.insert(out.end(), part.begin(), part.end());
    };
    append(envelope_mac_label);
    append(header_bytes);
    append(topic);
    append(payload);
    if (header_bytes.size() > 4 && (header_bytes[4] & envelope_flag_properties) != 0) append(props);
    return out;
}

}  // namespace securemqtt
