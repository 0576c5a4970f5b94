// SPDX-License-Identifier: Apache-2.0
// Prints the byte order of the machine it runs on, found at run time: a cross build's ctest
// (cross.byte_order) compares it with the order CMake says the target has, so a big-endian
// run is shown to be one. It fails only if the build is not what it claims (a toolchain file
// that reached the host's compiler, an emulator for another machine): a record more than a guard.
#include <cstdint>
#include <cstdio>
#include <cstring>

int main() {
    const std::uint32_t word = 0x01020304;
    unsigned char bytes[sizeof word];
    std::memcpy(bytes, &word, sizeof word);
    if (bytes[0] == 0x01) {
        std::puts("byte order: BIG_ENDIAN");
    } else if (bytes[0] == 0x04) {
        std::puts("byte order: LITTLE_ENDIAN");
    } else {
        std::puts("byte order: unknown");
    }
    std::printf("size_t: %u bits, long: %u bits\n", static_cast<unsigned>(sizeof(std::size_t) * 8),
                static_cast<unsigned>(sizeof(long) * 8));
    return 0;
}
