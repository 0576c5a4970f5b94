// SPDX-License-Identifier: Apache-2.0
// Compiled (syntax only) by the test unit.deprecated_int_forms: every line marked WARNS must
// compile with a deprecation warning, and nothing else may warn. Code written before QoS and
// MqttVersion keeps compiling, and is told what to write instead.
#include <securemqtt/securemqtt.hpp>

using namespace securemqtt;

void old_code(SecureSession& session, const Message& message) {
    SessionOptions options;
    options.mqtt_version = 5;                                     // WARNS
    PublishOptions publish;
    publish.qos = 1;                                              // WARNS
    session.publish("a/b", "21.5", 1);                            // WARNS
    session.subscribe("a/#", 2, [](const Message&) {});           // WARNS
    const int qos = message.qos;                                  // WARNS
    if (message.qos == 1) publish.retain = true;                  // WARNS
    if (1 < message.qos) publish.retain = true;                   // WARNS
    session.subscribe("c/#", {}, [](const Message&) {});          // WARNS
    (void)session.subscribe_async("d/#", 1, [](const Message&) {});  // WARNS
    LastWill will;
    will.qos = 2;                                                 // WARNS
    RequesterOptions requester;
    requester.qos = 0;                                            // WARNS
    (void)qos;
}

void new_code(SecureSession& session, const Message& message) {
    SessionOptions options;
    options.mqtt_version = MqttVersion::v5;
    PublishOptions publish;
    publish.qos = QoS::at_least_once;
    session.publish("a/b", "21.5", QoS::at_least_once);
    session.subscribe("a/#", QoS::exactly_once, [](const Message&) {});
    const int qos = message.qos.level();
    if (message.qos == QoS::at_least_once) publish.retain = true;
    if (message.qos < publish.qos) publish.retain = true;
    switch (QoS(message.qos)) {
    case QoS::at_most_once: break;
    default: break;
    }
    (void)session.subscribe_async("d/#", QoS::at_least_once, [](const Message&) {});
    LastWill will;
    will.qos = QoS::exactly_once;
    RequesterOptions requester;
    requester.qos = QoS::at_most_once;
    (void)qos;
}
