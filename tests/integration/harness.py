# SPDX-License-Identifier: Apache-2.0
"""Shared pieces of the broker integration tests: a real Mosquitto over mutual TLS on a free
loopback port (scripts/local_broker.py, certificates from certs/), the example programs, and a
raw paho-mqtt client for injecting hostile messages.

Environment: SECUREMQTT_BIN (directory of secure_publisher / secure_subscriber), SECUREMQTT_TOOLS
(directory of the test tools, e.g. securemqtt_tls_floor_probe).
"""

import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "examples", "python"))
import securemqtt_envelope as sm  # noqa: E402
from orphans import claim, reap_orphans  # noqa: E402
import paho.mqtt.client as mqtt  # noqa: E402

BIN = os.environ.get("SECUREMQTT_BIN", os.path.join(ROOT, "build", "ci", "examples"))
TOOLS = os.environ.get("SECUREMQTT_TOOLS", os.path.join(os.path.dirname(BIN), "tests"))
PY_EXAMPLES = os.path.join(ROOT, "examples", "python")
BROKER = os.path.join(ROOT, "scripts", "local_broker.py")
# Set by ctest for sanitizer builds: the same code runs 3-10x slower there, so load tests do
# less work and every hang guard allows more time. Guards only end a hung test; no result
# depends on how fast anything ran.
SANITIZED = os.environ.get("SECUREMQTT_SANITIZED") == "1"
SLOWDOWN = 4 if SANITIZED else 1
TIMEOUT = 30 * SLOWDOWN


def _stop_broker(directory):
    subprocess.run([sys.executable, BROKER, "stop", directory], capture_output=True, timeout=30)


class Broker:
    """A local Mosquitto with mTLS; certificates in self.certs."""

    def __init__(self, *extra):
        reap_orphans("securemqtt-it-", _stop_broker)
        self.dir = tempfile.mkdtemp(prefix="securemqtt-it-")
        claim(self.dir)
        self.extra = list(extra)
        self.start()
        self.certs = os.path.join(self.dir, "certs")
        self.keys = {}
        for name in ("device-1", "device-2", "monitor"):
            path = os.path.join(self.dir, name + ".hex")
            with open(path, "w") as f:
                f.write(os.urandom(32).hex() + "\n")
            os.chmod(path, 0o600)
            self.keys[name] = path

    def start(self, port=None):
        args = [sys.executable, BROKER, "start", self.dir] + self.extra
        if port:
            args += ["--port", str(port)]
        out = subprocess.run(args, capture_output=True, text=True, timeout=60)
        if out.returncode != 0:
            raise RuntimeError("broker did not start: " + out.stdout + out.stderr)
        with open(os.path.join(self.dir, "port")) as f:
            self.port = int(f.read())

    def stop(self):
        _stop_broker(self.dir)

    def restart(self):
        self.stop()
        self.start(self.port)

    def close(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def log_text(self):
        """Mosquitto's log so far (in its runtime directory when it has one)."""
        home = self.dir
        record = os.path.join(self.dir, "mosquitto.runtime")
        if os.path.exists(record):
            with open(record) as f:
                home = f.read().strip() or self.dir
        try:
            with open(os.path.join(home, "data", "mosquitto.log"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def cert(self, name):
        return os.path.join(self.certs, name + ".pem"), os.path.join(self.certs, name + ".key")

    def tls_flags(self, name, cafile=None):
        cert, key = self.cert(name)
        return ["-h", "localhost", "-p", str(self.port), "--cafile", cafile or os.path.join(self.certs, "ca.pem"),
                "--cert", cert, "--key", key]

    def key_flags(self, *names):
        flags = []
        for n in names:
            flags += ["--key-id", n, "--hmac-key", self.keys[n]]
        return flags

    def raw_client(self, name, client_id="", protocol=mqtt.MQTTv311):
        """A plain paho-mqtt client with valid TLS credentials and no envelope logic."""
        cert, key = self.cert(name)
        c = mqtt.Client(client_id=client_id, protocol=protocol)
        ctx = ssl.create_default_context(cafile=os.path.join(self.certs, "ca.pem"))
        ctx.load_cert_chain(cert, key)
        c.tls_set_context(ctx)
        c.connect("localhost", self.port, 30)
        c.loop_start()
        return c

    def raw_publish(self, name, messages, qos=1):
        """messages: [(topic, bytes, retain)]; waits for each PUBACK."""
        c = self.raw_client(name)
        try:
            for topic, payload, retain in messages:
                c.publish(topic, payload, qos, retain).wait_for_publish(timeout=TIMEOUT)
        finally:
            c.disconnect()
            c.loop_stop()


def program(name):
    path = os.path.join(BIN, name)
    if not os.path.exists(path):
        raise unittest.SkipTest("not built: " + path)  # turned into a failure by the runner
    return path


def tool(name):
    path = os.path.join(TOOLS, name)
    if not os.path.exists(path):
        raise unittest.SkipTest("not built: " + path)  # turned into a failure by the runner
    return path


def run(args, stdin=None, timeout=TIMEOUT, env=None):
    try:
        return subprocess.run(args, input=stdin, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired as e:  # say what the program was doing when it hung
        raise AssertionError("%s timed out after %s s; its stderr ended with:\n%s"
                             % (os.path.basename(args[0]), timeout, tail(e.stderr))) from None


def tail(text, lines=20):
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    return "\n".join((text or "(nothing)").splitlines()[-lines:])


class Subscriber:
    """A subscriber program running in the background until it has COUNT messages.

    With `ready_marker`, waits until the program has written that text to stderr (the C++
    programs log "connected to" with -d once their subscriptions are acknowledged); otherwise
    waits `ready_after` seconds."""

    def __init__(self, args, ready_after=1.0, ready_marker=None):
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.early_err = ""
        if ready_marker is None:
            time.sleep(ready_after)
            return
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            if not line:
                break  # the program ended; finish() reports it
            self.early_err += line
            if ready_marker in line:
                return

    def finish(self, timeout=TIMEOUT):
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGTERM)
            try:
                out, err = self.proc.communicate(timeout=10)
            except subprocess.TimeoutExpired:  # not even SIGTERM ended it: kill, and show its log
                self.proc.kill()
                out, err = self.proc.communicate()
                raise AssertionError("subscriber hung (no exit 10 s after SIGTERM); its stderr ended with:\n"
                                     + tail(self.early_err + err)) from None
        return self.proc.returncode, out, self.early_err + err


class BackgroundProgram:
    """A program running in the background, its stdout and stderr lines read as they come.
    Waits for conditions on them; the guard only ends a hang."""

    def __init__(self, args):
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     errors="replace")
        self.name = os.path.basename(args[0])
        self.out, self.err = [], []
        self.cv = threading.Condition()
        self.readers = [threading.Thread(target=self._read, args=(s, l), daemon=True)
                        for s, l in ((self.proc.stdout, self.out), (self.proc.stderr, self.err))]
        for r in self.readers:
            r.start()

    def _read(self, stream, lines):
        for line in stream:
            with self.cv:
                lines.append(line.rstrip("\n"))
                self.cv.notify_all()
        with self.cv:
            self.cv.notify_all()

    def wait(self, condition, what, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        with self.cv:
            while not condition():
                if self.proc.poll() is not None and not any(r.is_alive() for r in self.readers):
                    break
                if time.monotonic() > deadline:
                    break
                self.cv.wait(0.5)
            if not condition():
                raise AssertionError("%s never got %s (exit status %s); stdout ended with:\n%s\nstderr:\n%s" % (
                    self.name, what, self.proc.poll(), "\n".join(self.out[-5:]), "\n".join(self.err[-20:])))

    def stderr_tail(self, lines=20):
        with self.cv:
            return "\n".join(self.err[-lines:])

    def ended(self):
        """Waits for the program to end by itself (e.g. --kill-in-handler); its return code."""
        self.proc.wait(timeout=TIMEOUT)
        for r in self.readers:
            r.join(timeout=TIMEOUT)
        return self.proc.returncode

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        return self.ended()

    def stop(self):
        """SIGTERM, then its return code; a program still running TIMEOUT s later is a hang:
        fails with the stacks of its threads and the end of its log."""
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            self.proc.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            stacks = thread_stacks(self.proc.pid)
            self.proc.kill()
            self.ended()
            raise AssertionError("%s did not end within %s s of SIGTERM; stderr ended with:\n%s\nits threads:\n%s" % (
                self.name, TIMEOUT, self.stderr_tail(), stacks)) from None
        return self.ended()


class LiveSubscriber(BackgroundProgram):
    """secure_subscriber (-v -q 1 -d, the monitor identity, device-1's key) in the background,
    its output read as it comes. Waits for counts of lines; the guard only ends a hang."""

    def __init__(self, broker, filters, extra=(), keys=("device-1",)):
        args = [program("secure_subscriber"), "-v", "-q", "1"] + broker.tls_flags("monitor") + \
            broker.key_flags(*keys) + list(extra) + ["-d"]
        for f in filters:
            args += ["-t", f]
        super().__init__(args)
        self.wait(lambda: any("connected to" in l for l in self.err), "connected")

    def rejected(self):
        with self.cv:
            return [l for l in self.err if l.startswith("rejected:")]


def thread_stacks(pid):
    """Every thread's stack of a running process (gdb attaches briefly), for reports of hangs."""
    if not shutil.which("gdb"):
        return "(gdb not installed)"
    out = subprocess.run(["gdb", "-batch", "-p", str(pid), "-ex", "thread apply all bt"],
                         capture_output=True, text=True, timeout=120)
    return out.stdout[-8000:] + out.stderr[-1000:]


class NoSkipResult(unittest.TextTestResult):
    """A skipped integration test is a failure here: set-up installs everything."""

    def addSkip(self, test, reason):
        self.addFailure(test, (AssertionError, AssertionError("skipped: " + reason), None))


def main():
    runner = unittest.TextTestRunner(verbosity=2, resultclass=NoSkipResult)
    result = unittest.main(testRunner=runner, exit=False).result
    total = result.testsRun
    # A test whose subtests fail is reported once per subtest: count the test once.
    failed = len({getattr(t, "test_case", t).id() for t, _ in result.failures + result.errors})
    print("%d passed, %d failed" % (total - failed, failed))
    sys.exit(0 if result.wasSuccessful() and total > 0 else 1)
