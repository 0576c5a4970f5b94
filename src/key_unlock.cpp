// SPDX-License-Identifier: Apache-2.0
#include "key_unlock.hpp"

#include "file_access.hpp"
#include "openssl_util.hpp"

#include <securemqtt/errors.hpp>

#include <openssl/pem.h>

#include <cstring>

namespace securemqtt::detail {

SecureBuffer unencrypted_key_pem(const std::string& key_file, const std::string& key_pem,
                                 const std::string& passphrase) {
    const std::string name = key_pem.empty() ? "client key '" + key_file + "'" : "client key (PEM in memory)";
    SecureBuffer source;
    if (key_pem.empty()) {
        source = read_secret_file(key_file, "client key", 16 * 1024 * 1024);
    } else {
        source = SecureBuffer(key_pem.size());
        std::memcpy(source.data(), key_pem.data(), key_pem.size());
    }
    BioPtr in(BIO_new_mem_buf(source.data(), static_cast<int>(source.size())));
    PkeyPtr key(in ? PEM_read_bio_PrivateKey(in.get(), nullptr, string_passphrase_callback,
                                             const_cast<std::string*>(&passphrase))
                   : nullptr);
    if (!key) throw TlsError(name + ": cannot be decrypted (" + openssl_reason() + ")");
    // A secure-memory BIO is wiped when freed; its contents are copied into wiping memory.
    BioPtr out(BIO_new(BIO_s_secmem()));
    if (!out || PEM_write_bio_PKCS8PrivateKey(out.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1) {
        throw TlsError(name + ": cannot be re-encoded (" + openssl_reason() + ")");
    }
    char* data = nullptr;
    const long size = BIO_get_mem_data(out.get(), &data);
    if (size <= 0 || data == nullptr) throw TlsError(name + ": cannot be re-encoded (empty)");
    SecureBuffer pem(static_cast<std::size_t>(size));
    std::memcpy(pem.data(), data, static_cast<std::size_t>(size));
    return pem;
}

}  // namespace securemqtt::detail
