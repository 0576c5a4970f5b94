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

# pkg-config: absolute paths unless the install dirs are relative (the usual case).
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
  set(SECUREMQTT_PC_LIBDIR "${CMAKE_INSTALL_LIBDIR}")
else()
  set(SECUREMQTT_PC_LIBDIR "\${prefix}/${CMAKE_INSTALL_LIBDIR}")
endif()
if(IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  set(SECUREMQTT_PC_INCLUDEDIR "${CMAKE_INSTALL_INCLUDEDIR}")
else()
  set(SECUREMQTT_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
endif()
configure_file("${PROJECT_SOURCE_DIR}/cmake/securemqtt.pc.in"
  "${PROJECT_BINARY_DIR}/securemqtt.pc" @ONLY)
install(FILES "${PROJECT_BINARY_DIR}/securemqtt.pc"
  DESTINATION "${CMAKE_INSTALL_LIBDIR}/pkgconfig"
  COMPONENT securemqtt_development)
