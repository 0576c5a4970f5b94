# SPDX-License-Identifier: Apache-2.0
# Debian arm64 (aarch64, little-endian, LP64). cmake --preset cross-arm64; scripts/cross arm64.
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(SECUREMQTT_TRIPLET aarch64-linux-gnu)
set(SECUREMQTT_QEMU_ARCH aarch64)
include("${CMAKE_CURRENT_LIST_DIR}/linux-cross.cmake")
