# SPDX-License-Identifier: Apache-2.0
# Debian s390x (IBM Z, 64-bit, big-endian): the architecture that exercises the byte-order code
# on a big-endian machine. cmake --preset cross-s390x; scripts/cross s390x.
set(CMAKE_SYSTEM_PROCESSOR s390x)
set(SECUREMQTT_TRIPLET s390x-linux-gnu)
set(SECUREMQTT_QEMU_ARCH s390x)
include("${CMAKE_CURRENT_LIST_DIR}/linux-cross.cmake")
