#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Runs the Redis client's tests (test_redis_client.cpp) against real servers started here on
loopback: a server, a second server the tests stop, kill and restart, and a three-node Redis
Cluster.

Usage: run_redis_client_tests.py PROGRAM [Catch2 arguments...]

PROGRAM finds them through its environment:
  SECUREMQTT_REDIS_SERVER   the server's port
  SECUREMQTT_REDIS_FAULTY   the port of the server the tests may stop
  SECUREMQTT_REDIS_CLUSTER  the cluster nodes' ports, comma-separated
  SECUREMQTT_REDIS_CONTROL  "W,R": PROGRAM writes a command line to descriptor W -- "stop"
                            (SIGSTOP), "continue" (SIGCONT), "kill" (SIGKILL), "start" (again, on
                            the same port) -- for the faulty server and reads "ok" or
                            "error: ..." from descriptor R."""

import os
import signal
import subprocess
import sys
import threading

from redis_servers import RedisCluster, RedisServer

GUARD_S = 600  # ends a hung run only


def serve_control(server, commands, answers):
    actions = {
        "stop": lambda: server.proc.send_signal(signal.SIGSTOP),
        "continue": lambda: server.proc.send_signal(signal.SIGCONT),
        "kill": server.kill,
        "start": server.start,
    }
    with os.fdopen(commands, "r") as requests, os.fdopen(answers, "w") as replies:
        for line in requests:
            command = line.strip()
            try:
                actions[command]()
                replies.write("ok\n")
            except Exception as e:  # reported to the test, which fails on it
                replies.write("error: %s %s\n" % (command, str(e).replace("\n", " ")[:500]))
            replies.flush()


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    servers = []
    try:
        server = RedisServer()
        servers.append(server)
        faulty = RedisServer()
        servers.append(faulty)
        cluster = RedisCluster(3)
        servers.append(cluster)

        commands_r, commands_w = os.pipe()
        answers_r, answers_w = os.pipe()
        env = dict(os.environ,
                   SECUREMQTT_REDIS_SERVER=str(server.port),
                   SECUREMQTT_REDIS_FAULTY=str(faulty.port),
                   SECUREMQTT_REDIS_CLUSTER=",".join(str(p) for p in cluster.ports),
                   SECUREMQTT_REDIS_CONTROL="%d,%d" % (commands_w, answers_r))
        child = subprocess.Popen(sys.argv[1:], env=env, pass_fds=(commands_w, answers_r))
        os.close(commands_w)
        os.close(answers_r)
        control = threading.Thread(target=serve_control, args=(faulty, commands_r, answers_w), daemon=True)
        control.start()
        try:
            rc = child.wait(timeout=GUARD_S)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
            print("run_redis_client_tests: %s hung; killed after %d s" % (sys.argv[1], GUARD_S))
            rc = 1
        control.join(timeout=60)
        if rc < 0:
            print("run_redis_client_tests: %s ended by signal %s" % (sys.argv[1], signal.Signals(-rc).name))
        return 0 if rc == 0 else 1
    finally:
        for s in reversed(servers):
            s.close()


if __name__ == "__main__":
    sys.exit(main())
