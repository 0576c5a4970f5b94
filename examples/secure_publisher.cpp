// SPDX-License-Identifier: Apache-2.0
// Publishes signed messages over mutual TLS, with mosquitto_pub's flags.
//
//   secure_publisher -h localhost -p 8883 -t devices/device-1/temp -m 21.5 -q 1 \
//     --cafile certs/out/ca.pem --cert certs/out/device-1.pem --key certs/out/device-1.key \
//     --key-id device-1 --hmac-key device-1.hex
//
// -l publishes each line of standard input as a message. Exit status: 0 published (QoS >= 1:
// acknowledged), 1 connection or publish failure, 2 bad usage, 3 bad configuration.
#include "common/cli.hpp"

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
              << cli::session_usage() << cli::tls_usage();
}

}  // namespace

int main(int argc, char** argv) {
    return cli::run("secure_publisher", argc, argv, true, usage, [](const cli::Options& o) {
        securemqtt::SecureSession session(cli::session_options(o));
        session.connect();
        const std::string& topic = o.topics.front();
        if (o.has_message) {
            session.publish(topic, o.message, o.qos, o.retain);
        } else if (!o.file.empty()) {
            std::ifstream in(o.file, std::ios::binary);
            if (!in) throw securemqtt::ConfigError("message file '" + o.file + "': cannot be read");
            const std::string payload((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
            session.publish(topic, payload, o.qos, o.retain);
        } else {
            std::string line;
            while (std::getline(std::cin, line)) session.publish(topic, line, o.qos, o.retain);
        }
        if (!session.flush(std::chrono::seconds(30))) {
            std::cerr << "secure_publisher: not every message was acknowledged within 30 s\n";
            return 1;
        }
        session.disconnect();
        return 0;
    });
}
