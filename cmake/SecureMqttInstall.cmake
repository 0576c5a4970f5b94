# SPDX-License-Identifier: Apache-2.0
# Install rules: library, public and generated headers, CMake package, pkg-config file.
include_guard(GLOBAL)
include(CMakePackageConfigHelpers)

set(SECUREMQTT_INSTALL_CMAKEDIR "${CMAKE_INSTALL_LIBDIR}/cmake/SecureMqtt"
  CACHE STRING "Where SecureMqttConfig.cmake is installed, relative to the prefix")

install(TARGETS securemqtt
  EXPORT SecureMqttTargets
  RUNTIME DESTINATION "${CMAKE_INSTALL_BINDIR}" COMPONENT securemqtt_runtime
  LIBRARY DESTINATION "${CMAKE_INSTALL_LIBDIR}" COMPONENT securemqtt_runtime
          NAMELINK_COMPONENT securemqtt_development
  ARCHIVE DESTINATION "${CMAKE_INSTALL_LIBDIR}" COMPONENT securemqtt_development
  INCLUDES DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}")

install(DIRECTORY "${PROJECT_SOURCE_DIR}/include/securemqtt" "${PROJECT_BINARY_DIR}/include/securemqtt"
  DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}"
  COMPONENT securemqtt_development
  FILES_MATCHING PATTERN "*.hpp")

install(EXPORT SecureMqttTargets
  NAMESPACE SecureMqtt::
  DESTINATION "${SECUREMQTT_INSTALL_CMAKEDIR}"
  COMPONENT securemqtt_development)

get_target_property(_securemqtt_type securemqtt TYPE)
if(_securemqtt_type STREQUAL "STATIC_LIBRARY")
  set(SECUREMQTT_PACKAGE_STATIC TRUE)
else()
  set(SECUREMQTT_PACKAGE_STATIC FALSE)
endif()
configure_package_config_file(
  "${PROJECT_SOURCE_DIR}/cmake/SecureMqttConfig.cmake.in"
  "${PROJECT_BINARY_DIR}/SecureMqttConfig.cmake"
  INSTALL_DESTINATION "${SECUREMQTT_INSTALL_CMAKEDIR}")
write_basic_package_version_file(
  "${PROJECT_BINARY_DIR}/SecureMqttConfigVersion.cmake"
  COMPATIBILITY SameMinorVersion)
install(FILES
    "${PROJECT_BINARY_DIR}/SecureMqttConfig.cmake"
    "${PROJECT_BINARY_DIR}/SecureMqttConfigVersion.cmake"
  DESTINATION "${SECUREMQTT_INSTALL_CMAKEDIR}"
  COMPONENT securemqtt_development)

install(FILES "${PROJECT_SOURCE_DIR}/LICENSE"
  DESTINATION "${CMAKE_INSTALL_DOCDIR}"
  COMPONENT securemqtt_runtime)

# pkg-config. Relocatable: the prefix is found from the .pc file's own place (${pcfiledir}), so
# `cmake --install --prefix DIR`, a staged install and a moved tree all point at their own
# headers; absolute install dirs stay absolute. A static library's dependencies are in Requires
# and Libs, since a consumer must link them whether or not it asks for --static; a shared one
# carries them itself (they stay in the .private fields).
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
  set(SECUREMQTT_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
  set(SECUREMQTT_PC_LIBDIR "${CMAKE_INSTALL_LIBDIR}")
else()
  file(RELATIVE_PATH _securemqtt_pc_up "/root/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/root")
  string(REGEX REPLACE "/$" "" _securemqtt_pc_up "${_securemqtt_pc_up}")
  set(SECUREMQTT_PC_PREFIX "\${pcfiledir}/${_securemqtt_pc_up}")
  set(SECUREMQTT_PC_LIBDIR "\${prefix}/${CMAKE_INSTALL_LIBDIR}")
endif()
if(IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  set(SECUREMQTT_PC_INCLUDEDIR "${CMAKE_INSTALL_INCLUDEDIR}")
else()
  set(SECUREMQTT_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
endif()
set(_securemqtt_pc_deps "libssl libcrypto sqlite3 hiredis")
set(_securemqtt_pc_libs "-lpaho-mqttpp3 -lpaho-mqtt3as -pthread")
if(SECUREMQTT_PACKAGE_STATIC)
  set(SECUREMQTT_PC_REQUIRES "Requires: ${_securemqtt_pc_deps}")
  set(SECUREMQTT_PC_LIBS " ${_securemqtt_pc_libs}")
  set(SECUREMQTT_PC_LIBS_PRIVATE "")
  set(SECUREMQTT_PC_CFLAGS " -DSECUREMQTT_STATIC_DEFINE")
else()
  set(SECUREMQTT_PC_REQUIRES "Requires.private: ${_securemqtt_pc_deps}")
  set(SECUREMQTT_PC_LIBS "")
  set(SECUREMQTT_PC_LIBS_PRIVATE "Libs.private: ${_securemqtt_pc_libs}")
  set(SECUREMQTT_PC_CFLAGS "")
endif()
configure_file("${PROJECT_SOURCE_DIR}/cmake/securemqtt.pc.in"
  "${PROJECT_BINARY_DIR}/securemqtt.pc" @ONLY)
install(FILES "${PROJECT_BINARY_DIR}/securemqtt.pc"
  DESTINATION "${CMAKE_INSTALL_LIBDIR}/pkgconfig"
  COMPONENT securemqtt_development)
