// SPDX-License-Identifier: Apache-2.0
// What run_redis_client_tests.py hands the Redis test programs: the ports of the servers it
// started, and a control channel to stop, resume, kill and restart the "faulty" one.
#pragma once

#include "support/catch.hpp"

#include <poll.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

namespace testutil {

inline int env_port(const char* name) {
    const char* value = std::getenv(name);
    if (value == nullptr) FAIL(name << " is not set: run this program with run_redis_client_tests.py");
    return std::stoi(value);
}

inline std::vector<int> cluster_ports() {
    const char* value = std::getenv("SECUREMQTT_REDIS_CLUSTER");
    if (value == nullptr) FAIL("SECUREMQTT_REDIS_CLUSTER is not set: run this program with run_redis_client_tests.py");
    std::vector<int> ports;
    std::stringstream in(value);
    for (std::string port; std::getline(in, port, ',');) ports.push_back(std::stoi(port));
    REQUIRE(ports.size() == 3);
    return ports;
}

/// Sends "stop", "continue", "kill" or "start" for the faulty server and waits for "ok".
inline void control(const std::string& command) {
    const char* fds = std::getenv("SECUREMQTT_REDIS_CONTROL");
    if (fds == nullptr) FAIL("SECUREMQTT_REDIS_CONTROL is not set: run this program with run_redis_client_tests.py");
    const std::string spec = fds;
    const int out = std::stoi(spec.substr(0, spec.find(',')));
    const int in = std::stoi(spec.substr(spec.find(',') + 1));
    const std::string line = command + "\n";
    REQUIRE(::write(out, line.data(), line.size()) == static_cast<ssize_t>(line.size()));
    std::string answer;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (answer.empty() || answer.back() != '\n') {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        REQUIRE(left.count() > 0);
        pollfd p{in, POLLIN, 0};
        const int ready = ::poll(&p, 1, static_cast<int>(left.count()));
        REQUIRE(ready >= 0);
        if (ready == 0) continue;
        char c = 0;
        REQUIRE(::read(in, &c, 1) == 1);
        answer += c;
    }
    INFO("control " << command << ": " << answer);
    REQUIRE(answer == "ok\n");
}

}  // namespace testutil
