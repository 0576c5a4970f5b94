# SPDX-License-Identifier: Apache-2.0
# Finds the packages the library links and resolves Paho's target name once.
include_guard(GLOBAL)

find_package(Threads REQUIRED)
find_package(OpenSSL 3.0 REQUIRED COMPONENTS Crypto SSL)
find_package(PahoMqttCpp CONFIG REQUIRED)
find_package(SQLite3 REQUIRED)  # the durable replay store (src/replay_store.cpp)
# The shared replay store's Redis client (src/redis_client.cpp); hiredis ships no CMake package.
find_package(PkgConfig REQUIRED)
pkg_check_modules(HIREDIS REQUIRED IMPORTED_TARGET hiredis)

include(SecureMqttPahoTarget)
securemqtt_resolve_paho_target(SECUREMQTT_PAHO_TARGET)
