# SPDX-License-Identifier: Apache-2.0
# Shared by the cross toolchain files (cmake/toolchains/*.cmake): Debian's cross compiler for
# SECUREMQTT_TRIPLET, the libraries from Debian's multiarch -dev packages of that architecture
# (/usr/lib/<triplet>, headers in /usr/include), and qemu-user to run what is built, so ctest
# runs the real cross-built binaries. scripts/cross installs all of it.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_C_COMPILER "${SECUREMQTT_TRIPLET}-gcc")
set(CMAKE_CXX_COMPILER "${SECUREMQTT_TRIPLET}-g++")
set(CMAKE_LIBRARY_ARCHITECTURE "${SECUREMQTT_TRIPLET}")
# Libraries, headers and packages of the target only; programs (python3, mosquitto) of the host.
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
# pkg-config (hiredis): the target's .pc files, not the host's.
set(ENV{PKG_CONFIG_LIBDIR} "/usr/lib/${SECUREMQTT_TRIPLET}/pkgconfig:/usr/share/pkgconfig")
# qemu-user; the target's loader (/lib/ld-linux-*.so) and libraries come from its multiarch libc6.
set(CMAKE_CROSSCOMPILING_EMULATOR "qemu-${SECUREMQTT_QEMU_ARCH}-static;-L;/")
