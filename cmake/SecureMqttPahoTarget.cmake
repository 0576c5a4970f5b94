# SPDX-License-Identifier: Apache-2.0
# Paho MQTT C++ exports PahoMqttCpp::paho-mqttpp3 (shared build, e.g. Debian 12) and/or
# PahoMqttCpp::paho-mqttpp3-static. Shared here and in SecureMqttConfig.cmake so that both
# pick the same one.
include_guard(GLOBAL)

function(securemqtt_resolve_paho_target out_var)
  if(TARGET PahoMqttCpp::paho-mqttpp3)
    set(${out_var} PahoMqttCpp::paho-mqttpp3 PARENT_SCOPE)
  elseif(TARGET PahoMqttCpp::paho-mqttpp3-static)
    set(${out_var} PahoMqttCpp::paho-mqttpp3-static PARENT_SCOPE)
  else()
    message(FATAL_ERROR
      "securemqtt: PahoMqttCpp was found but exports neither PahoMqttCpp::paho-mqttpp3 nor "
      "PahoMqttCpp::paho-mqttpp3-static; install Paho MQTT C++ >= 1.2 built with SSL "
      "(Debian/Ubuntu: libpaho-mqttpp-dev)")
  endif()
endfunction()
