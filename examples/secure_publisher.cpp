// SPDX-License-Identifier: Apache-2.0
// Publishes signed messages over mutual TLS, with mosquitto_pub's flags.
//
//   secure_publisher -h localhost -p 8883 -t devices/device-1/temp -m 21.5 -q 1 \
//     --cafile certs/out/ca.pem --cert certs/out/device-1.pem --key certs/out/device-1.key \
//     --key-id device-1 --hmac-key device-1.hex
//
// -l publishes each line of standard input as a message. Like mosquitto_pub, it then waits until
// the broker has acknowledged every QoS >= 1 message, or gives up after --flush-timeout SECS and
// says how many were still unacknowledged. Exit status: 0 published (QoS >= 1: acknowledged),
// 1 connection or publish failure, 2 bad usage, 3 bad configuration.
#include "common/cli.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>

namespace {

void usage() {
    std::cout << "usage: secure_publisher -t TOPIC (-m MESSAGE | -f FILE | -l) [options]\n"
                 "  -h HOST -p PORT        broker (default localhost 8883)\n"
                 "  -t TOPIC               topic to publish to\n"
                 "  -m MESSAGE             payload; -f FILE: a file's bytes; -l: each stdin line\n"
                 "  -q QOS                 0, 1 or 2 (default 0)\n"
                 "  -r                     retain the message\n"
                 "  -D publish PROPERTY VALUE  an MQTT 5 property (needs -V mqttv5): content-type,\n"
                 "                         response-topic, correlation-data, user-property NAME\n"
                 "                         VALUE (repeatable) -- these four are signed --,\n"
                 "                         payload-format-indicator 0|1 (signed, and checked),\n"
                 "                         message-expiry-interval SECS (not signed)\n"
                 "  --flush-timeout SECS   give up waiting for acknowledgements after SECS\n"
                 "                         (default: wait until every one is in)\n"
              << cli::session_usage() << cli::tls_usage();
}

// Waits until the broker has acknowledged every QoS >= 1 message (forever when `timeout_s` is
// 0); says on stderr what is missing when it gives up or the broker refused some.
bool wait_for_acknowledgements(securemqtt::SecureSession& session, int timeout_s) {
    using clock = std::chrono::steady_clock;
    const auto started = clock::now();
    const auto limit = std::chrono::seconds(timeout_s);
    for (;;) {
        std::chrono::milliseconds step(1000);
        if (timeout_s > 0) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(limit - (clock::now() - started));
            step = std::min(step, std::max(left, std::chrono::milliseconds(0)));
        }
        const bool all_in = session.flush(step) && session.unacknowledged() == 0;
        const std::uint64_t failures = session.stats().publish_failures;
        if (failures > 0) {
            std::cerr << "secure_publisher: " << failures << " message(s) refused or failed (see above)\n";
            return false;
        }
        if (all_in) return true;
        if (timeout_s > 0 && clock::now() - started >= limit) {
            std::cerr << "secure_publisher: " << session.unacknowledged() << " of " << session.stats().published
                      << " message(s) still unacknowledged after --flush-timeout " << timeout_s << " s\n";
            return false;
        }
    }
}

}  // namespace

int main(int argc, char** argv) {
    return cli::run("secure_publisher", argc, argv, true, usage, [](const cli::Options& o) {
        securemqtt::SecureSession session(cli::session_options(o));
        session.connect();
        const std::string& topic = o.topics.front();
        securemqtt::PublishOptions options;
        options.qos = o.qos;
        options.retain = o.retain;
        options.properties = o.properties;
        if (o.has_message) {
            session.publish(topic, o.message, options);
        } else if (!o.file.empty()) {
            std::ifstream in(o.file, std::ios::binary);
            if (!in) throw securemqtt::ConfigError("message file '" + o.file + "': cannot be read");
            const std::string payload((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
            session.publish(topic, payload, options);
        } else {
            std::string line;
            while (std::getline(std::cin, line)) session.publish(topic, line, options);
        }
        if (!wait_for_acknowledgements(session, o.flush_timeout)) return 1;
        session.disconnect();
        return 0;
    });
}
