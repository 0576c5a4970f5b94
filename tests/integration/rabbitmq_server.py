# SPDX-License-Identifier: Apache-2.0
"""A real RabbitMQ (Debian's rabbitmq-server, 3.10) with its MQTT plugin over mutual TLS on a
free loopback port: a second broker, which speaks MQTT 3.1.1 but not MQTT 5. Its node name,
configuration files, Erlang distribution and epmd ports (on loopback), database, logs and
cookie are all private to a temporary directory, so it never meets a RabbitMQ service the
machine may run (Debian's package starts one where systemd runs). Its epmd is started here, in
the node's process group, not as the daemon Erlang would start (which leaves the group and
outlives the test). Certificates come from the project's certs/ scripts. scripts/setup installs
rabbitmq-server."""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from orphans import claim, reap_orphans

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"
EPMD = "/usr/bin/epmd"
START_GUARD_S = 120  # ends a hung start only (it takes ~12 s here, more under load)


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _kill_group(directory):
    """The node an earlier, killed test process left running in `directory`."""
    try:
        with open(os.path.join(directory, "rabbitmq.pgid")) as f:
            os.killpg(int(f.read()), signal.SIGKILL)
    except (OSError, ValueError):
        pass


def _certs(certs):
    def run(*cmd):
        subprocess.run(cmd, check=True, capture_output=True, timeout=60)
    run(os.path.join(ROOT, "certs", "generate_ca.sh"), "--out", certs)
    run(os.path.join(ROOT, "certs", "generate_server_cert.sh"), "--out", certs, "--dns", "localhost",
        "--ip", "127.0.0.1")
    run(os.path.join(ROOT, "certs", "generate_client_cert.sh"), "device-1", "--out", certs)


class RabbitMq:
    """RabbitMQ's MQTT listener on 127.0.0.1:self.port, mTLS only (peer certificate required)."""

    def __init__(self):
        for path in (SERVER, EPMD):
            if not os.path.exists(path):
                raise RuntimeError("%s is missing: run scripts/setup (Debian: rabbitmq-server)" % path)
        reap_orphans("securemqtt-rabbitmq-", _kill_group)
        self.dir = tempfile.mkdtemp(prefix="securemqtt-rabbitmq-")
        claim(self.dir)
        self.certs = os.path.join(self.dir, "certs")
        _certs(self.certs)
        self.port = _free_port()
        for sub in ("mnesia", "log", "home"):
            os.makedirs(os.path.join(self.dir, sub))
        conf = os.path.join(self.dir, "rabbitmq.conf")
        with open(conf, "w") as f:
            f.write("\n".join([
                "listeners.tcp = none",
                "mqtt.listeners.tcp = none",
                "mqtt.listeners.ssl.default = 127.0.0.1:%d" % self.port,
                "ssl_options.cacertfile = %s/ca.pem" % self.certs,
                "ssl_options.certfile = %s/server.pem" % self.certs,
                "ssl_options.keyfile = %s/server.key" % self.certs,
                "ssl_options.verify = verify_peer",
                "ssl_options.fail_if_no_peer_cert = true",
                "mqtt.allow_anonymous = true",
                "log.console = false",
                "log.file.level = info",
                "",
            ]))
        epmd_port = _free_port()
        env = dict(os.environ)
        env.update({
            "HOME": os.path.join(self.dir, "home"),  # the Erlang cookie
            "RABBITMQ_NODENAME": "securemqtt%d@localhost" % self.port,
            "RABBITMQ_DIST_PORT": str(_free_port()),
            "ERL_EPMD_PORT": str(epmd_port),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-start_epmd false -kernel inet_dist_use_interface {127,0,0,1}",
            "RABBITMQ_CONFIG_FILE": conf,
            "RABBITMQ_CONF_ENV_FILE": os.path.join(self.dir, "rabbitmq-env.conf"),  # none: not /etc's
            "RABBITMQ_ADVANCED_CONFIG_FILE": os.path.join(self.dir, "advanced.config"),
            "RABBITMQ_MNESIA_BASE": os.path.join(self.dir, "mnesia"),
            "RABBITMQ_LOG_BASE": os.path.join(self.dir, "log"),
            "RABBITMQ_ENABLED_PLUGINS": "rabbitmq_mqtt",
            "RABBITMQ_ENABLED_PLUGINS_FILE": os.path.join(self.dir, "enabled_plugins"),
        })
        self.output = open(os.path.join(self.dir, "output.log"), "w")
        # One process group of our own: epmd (foreground), the script and the Erlang VM go together.
        self.epmd = subprocess.Popen([EPMD, "-port", str(epmd_port), "-address", "127.0.0.1"], cwd=self.dir, env=env,
                                     stdin=subprocess.DEVNULL, stdout=self.output, stderr=subprocess.STDOUT,
                                     process_group=0)
        with open(os.path.join(self.dir, "rabbitmq.pgid"), "w") as f:
            f.write(str(self.epmd.pid))
        self.proc = None
        try:
            self.proc = subprocess.Popen([SERVER], cwd=self.dir, env=env, stdin=subprocess.DEVNULL,
                                         stdout=self.output, stderr=subprocess.STDOUT, process_group=self.epmd.pid)
        except OSError:
            self.close()
            raise
        deadline = time.monotonic() + START_GUARD_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.close()
                raise RuntimeError("rabbitmq-server exited with %d; its output is in %s"
                                   % (self.proc.returncode, self.output.name))
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.2)
        self.close()
        raise RuntimeError("rabbitmq-server did not listen on port %d within %d s" % (self.port, START_GUARD_S))

    def cert(self, name):
        return os.path.join(self.certs, name)

    def tls_flags(self, identity):
        return ["-h", "localhost", "-p", str(self.port), "--cafile", self.cert("ca.pem"),
                "--cert", self.cert(identity + ".pem"), "--key", self.cert(identity + ".key")]

    def close(self):
        try:
            if self.proc:
                self.proc.terminate()  # the script stops the VM
                self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
        _kill_group(self.dir)  # whatever is left of the VM, and epmd
        for p in filter(None, (self.proc, self.epmd)):
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
        self.output.close()
        shutil.rmtree(self.dir, ignore_errors=True)
