// SPDX-License-Identifier: Apache-2.0
// The client key decrypted in memory, so that the MQTT client never needs the passphrase.
#pragma once

#include "secure_buffer.hpp"

#include <string>

namespace securemqtt::detail {

/// The private key from `key_pem` (if not empty) or `key_file`, decrypted with `passphrase`,
/// as unencrypted PKCS#8 PEM in wiping memory. Paho would otherwise be handed the passphrase
/// and keep copies of it that it never wipes. Throws TlsError naming the key and the cause (the
/// preflight has already checked the key, so this is not expected to fail).
SecureBuffer unencrypted_key_pem(const std::string& key_file, const std::string& key_pem,
                                 const std::string& passphrase);

}  // namespace securemqtt::detail
