# SPDX-License-Identifier: Apache-2.0
# Debian armhf (32-bit ARMv7, hard float, ILP32: 32-bit size_t and long; time_t is 64-bit in
# Debian 12's armhf glibc only with _TIME_BITS=64). cmake --preset cross-armhf; scripts/cross armhf.
set(CMAKE_SYSTEM_PROCESSOR armv7l)
set(SECUREMQTT_TRIPLET arm-linux-gnueabihf)
set(SECUREMQTT_QEMU_ARCH arm)
include("${CMAKE_CURRENT_LIST_DIR}/linux-cross.cmake")
