// SPDX-License-Identifier: Apache-2.0
// MessageProperties to and from Paho's MQTT 5 property lists, and the MQTT rules their values
// must follow before they go on the wire.
#pragma once

#include <securemqtt/properties.hpp>

#include <mqtt/properties.h>

#include <string>

namespace securemqtt::detail {

/// Why `properties` cannot be published as MQTT 5 properties (a string that is not MQTT UTF-8
/// -- well-formed, no U+0000 -- or longer than 65,535 bytes, a response topic that is not a
/// topic name, an expiry outside 0 to 2^32 - 1 seconds); empty when they can. Publishing them
/// anyway would make the broker drop the connection for a malformed packet.
std::string property_problem(const MessageProperties& properties);

/// The Paho property list to publish `properties` with (never Payload Format Indicator: the
/// packet carries the binary envelope; the application's indicator is the envelope's flag).
mqtt::properties to_paho(const MessageProperties& properties);

/// The properties a message arrived with, in the order received. False when a covered property
/// that may appear once appears twice (a protocol error): the message must not be verified
/// against either copy.
bool from_paho(const mqtt::properties& received, MessageProperties& out);

}  // namespace securemqtt::detail
