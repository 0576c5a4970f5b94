# SPDX-License-Identifier: Apache-2.0
"""Real Redis servers for the tests, on free loopback ports: one server, or a three-node Redis
Cluster made with `redis-cli --cluster create`. Each lives in its own temporary directory and is
stopped by close(). Debian: redis-server and redis-tools (scripts/setup installs them)."""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from orphans import claim, reap_orphans

GUARD_S = 60  # ends a hung start only


def _stop_server(directory):
    """A server an earlier, killed test process left running in `directory`."""
    try:
        with open(os.path.join(directory, "redis.pid")) as f:
            pid = int(f.read())
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            if b"redis-server" not in f.read():
                return  # the pid was reused
        os.kill(pid, signal.SIGKILL)
    except (OSError, ValueError):
        pass


def _free(port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def free_port(cluster_bus=False):
    """A free loopback port; with cluster_bus, one whose bus port (+10000) is free too."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if not cluster_bus or (port + 10000 < 65536 and _free(port + 10000)):
            return port
    raise RuntimeError("no free loopback port pair for a Redis Cluster node")


def cli(port, *args):
    out = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(port)] + list(args),
                         capture_output=True, text=True, timeout=GUARD_S)
    return out.stdout.strip()


class RedisServer:
    """With persistent, an append-only file synced on every write, so restart() loses nothing."""

    def __init__(self, cluster=False, persistent=False):
        reap_orphans("securemqtt-redis-", _stop_server)
        self.dir = tempfile.mkdtemp(prefix="securemqtt-redis-")
        claim(self.dir)
        self.port = free_port(cluster_bus=cluster)
        self.args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.dir,
                     "--save", "", "--logfile", os.path.join(self.dir, "redis.log")]
        self.args += ["--appendonly", "yes", "--appendfsync", "always"] if persistent else ["--appendonly", "no"]
        if cluster:
            self.args += ["--cluster-enabled", "yes", "--cluster-config-file", os.path.join(self.dir, "nodes.conf"),
                          "--cluster-node-timeout", "5000"]
        self.start()

    def start(self):
        """Starts redis-server on self.port: at creation, or again after kill() or stop()."""
        self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        with open(os.path.join(self.dir, "redis.pid"), "w") as f:
            f.write(str(self.proc.pid))
        deadline = time.monotonic() + GUARD_S
        while cli(self.port, "PING") != "PONG":
            if self.proc.poll() is not None or time.monotonic() > deadline:
                log = os.path.join(self.dir, "redis.log")
                tail = open(log).read()[-2000:] if os.path.exists(log) else "(no log)"
                self.close()
                raise RuntimeError("redis-server did not start on port %d: %s" % (self.port, tail))
            time.sleep(0.05)

    def restart(self, between=None):
        """Stops the server (SIGTERM: a clean shutdown), runs `between` while it is down, and
        starts it again on the same port with the same data."""
        self.proc.terminate()
        self.proc.wait(timeout=GUARD_S)
        if between:
            between()
        self.start()

    def kill(self):
        self.proc.kill()
        self.proc.wait()

    def close(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)  # a stopped server would not see SIGTERM
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


class RedisCluster:
    """Three masters, no replicas, every slot covered."""

    def __init__(self, nodes=3):
        self.nodes = []
        try:
            for _ in range(nodes):
                self.nodes.append(RedisServer(cluster=True))
            out = subprocess.run(["redis-cli", "--cluster", "create"] +
                                 ["127.0.0.1:%d" % n.port for n in self.nodes] +
                                 ["--cluster-replicas", "0", "--cluster-yes"],
                                 capture_output=True, text=True, timeout=GUARD_S)
            if out.returncode != 0:
                raise RuntimeError("redis-cli --cluster create failed: " + out.stdout[-2000:] + out.stderr[-2000:])
            deadline = time.monotonic() + GUARD_S
            while not all("cluster_state:ok" in cli(n.port, "CLUSTER", "INFO") for n in self.nodes):
                if time.monotonic() > deadline:
                    raise RuntimeError("the cluster did not reach cluster_state:ok")
                time.sleep(0.1)
        except BaseException:
            self.close()
            raise

    @property
    def ports(self):
        return [n.port for n in self.nodes]

    def close(self):
        for n in self.nodes:
            n.close()
