# SPDX-License-Identifier: Apache-2.0
# Shared by the cross toolchain files (cmake/toolchains/*.cmake): Debian's cross compiler for
# SECUREMQTT_TRIPLET, the target's libraries, and qemu-user to run what is built, so ctest runs
# the real cross-built binaries. scripts/cross installs all of it.
#
# The target's libraries come from one of two places:
# - SECUREMQTT_SYSROOT unset: Debian's multiarch -dev packages of that architecture installed on
#   this machine (/usr/lib/<triplet>, headers in /usr/include);
# - SECUREMQTT_SYSROOT=DIR (cache variable or environment): a directory holding the target's own
#   root file system (DIR/usr/lib/<triplet>, DIR/usr/include), e.g. the one scripts/cross makes
#   with debootstrap, or a board's image. Multiarch needs the target's packages at exactly the
#   host's versions; a sysroot does not.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_C_COMPILER "${SECUREMQTT_TRIPLET}-gcc")
set(CMAKE_CXX_COMPILER "${SECUREMQTT_TRIPLET}-g++")
set(CMAKE_LIBRARY_ARCHITECTURE "${SECUREMQTT_TRIPLET}")
# Libraries, headers and packages of the target only; programs (python3, mosquitto) of the host.
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)

if(NOT SECUREMQTT_SYSROOT AND DEFINED ENV{SECUREMQTT_SYSROOT})
  set(SECUREMQTT_SYSROOT "$ENV{SECUREMQTT_SYSROOT}")
endif()
# try_compile() projects read this file again; hand them the choice.
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES SECUREMQTT_SYSROOT)

if(SECUREMQTT_SYSROOT)
  if(NOT EXISTS "${SECUREMQTT_SYSROOT}/usr/lib/${SECUREMQTT_TRIPLET}")
    message(FATAL_ERROR "SECUREMQTT_SYSROOT=${SECUREMQTT_SYSROOT}: no usr/lib/${SECUREMQTT_TRIPLET} there; "
                        "not a ${SECUREMQTT_TRIPLET} root file system")
  endif()
  set(CMAKE_SYSROOT "${SECUREMQTT_SYSROOT}")
  set(CMAKE_FIND_ROOT_PATH "${SECUREMQTT_SYSROOT}")
  set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
  set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
  set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
  set(ENV{PKG_CONFIG_SYSROOT_DIR} "${SECUREMQTT_SYSROOT}")
  set(ENV{PKG_CONFIG_LIBDIR}
      "${SECUREMQTT_SYSROOT}/usr/lib/${SECUREMQTT_TRIPLET}/pkgconfig:${SECUREMQTT_SYSROOT}/usr/share/pkgconfig")
  # The target's loader and libraries from the sysroot.
  set(CMAKE_CROSSCOMPILING_EMULATOR "qemu-${SECUREMQTT_QEMU_ARCH}-static;-L;${SECUREMQTT_SYSROOT}")
else()
  # pkg-config (hiredis): the target's .pc files, not the host's.
  set(ENV{PKG_CONFIG_LIBDIR} "/usr/lib/${SECUREMQTT_TRIPLET}/pkgconfig:/usr/share/pkgconfig")
  # The target's loader (/lib/ld-linux-*.so) and libraries come from its multiarch libc6.
  set(CMAKE_CROSSCOMPILING_EMULATOR "qemu-${SECUREMQTT_QEMU_ARCH}-static;-L;/")
endif()
