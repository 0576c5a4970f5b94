// SPDX-License-Identifier: Apache-2.0
// The MAC over an envelope, streamed: the same bytes as envelope_mac_input() without building
// them in one buffer.
#pragma once

#include "mac.hpp"

#include <securemqtt/bytes.hpp>

#include <string_view>

namespace securemqtt::detail {

/// MAC of envelope_mac_input(header, topic, payload, props) under `key`: `props` (the canonical
/// covered properties) is a fifth part when the header's flags have envelope_flag_properties,
/// and ignored otherwise. The small fields go through one stack buffer so OpenSSL sees two
/// updates per message, not eight. Returns false when OpenSSL fails; the tag must then not be
/// used.
bool compute_envelope_mac(const MacKey& key, ByteView header, std::string_view topic, ByteView payload,
                          MacTag& out, ByteView props = {}) noexcept;

}  // namespace securemqtt::detail
