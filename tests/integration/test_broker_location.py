#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The local broker (scripts/local_broker.py) works from wherever the checkout is: as root from
a 0700 directory (like /root or `mktemp -d`; Mosquitto drops to the `mosquitto` user and must
still reach its certificates, ACL, persistence and log), and as an unprivileged user from a
copy in that user's home. A broker that cannot start says why in one line.

Each test copies the broker's part of the checkout (scripts/local_broker.py, certs/*.sh,
examples/mosquitto/) somewhere new and runs it from there, then sends a signed message through
the broker with the example programs. Needs root for the parts that switch users; run as
another user, those parts run as that user instead (see each test).
"""

import os
import pwd
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import unittest

from harness import ROOT, Subscriber, program, run, main

TEST_USER = "securemqtt-test"
IS_ROOT = os.geteuid() == 0


def copy_checkout(dest):
    """The files the local broker needs from a checkout, copied to dest."""
    os.makedirs(os.path.join(dest, "scripts"))
    shutil.copy2(os.path.join(ROOT, "scripts", "local_broker.py"), os.path.join(dest, "scripts"))
    os.makedirs(os.path.join(dest, "certs"))
    for name in os.listdir(os.path.join(ROOT, "certs")):
        if name.endswith(".sh"):
            shutil.copy2(os.path.join(ROOT, "certs", name), os.path.join(dest, "certs"))
    shutil.copytree(os.path.join(ROOT, "examples", "mosquitto"), os.path.join(dest, "examples", "mosquitto"))
    return dest


def as_user(user):
    """subprocess.run keyword arguments that run a command as `user` (root only)."""
    env = dict(os.environ, HOME=user.pw_dir, USER=user.pw_name, LOGNAME=user.pw_name)
    return dict(user=user.pw_uid, group=user.pw_gid, extra_groups=[], env=env, cwd=user.pw_dir)


def broker(action, checkout, directory, *extra, user=None):
    args = [sys.executable, os.path.join(checkout, "scripts", "local_broker.py"), action, directory] + list(extra)
    kwargs = as_user(user) if user else {}
    return subprocess.run(args, capture_output=True, text=True, timeout=120, **kwargs)


def ensure_test_user():
    """An unprivileged user with a 0700 home, created once (idempotent)."""
    try:
        user = pwd.getpwnam(TEST_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--create-home", "--shell", "/usr/sbin/nologin", TEST_USER],
                       check=True, capture_output=True)
        user = pwd.getpwnam(TEST_USER)
    os.chmod(user.pw_dir, 0o700)
    return user


def chown_tree(path, user):
    for parent, dirs, files in os.walk(path):
        for name in [parent] + [os.path.join(parent, n) for n in dirs + files]:
            os.lchown(name, user.pw_uid, user.pw_gid)


def process_uid(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Uid:"):
                return int(line.split()[1])
    raise AssertionError("no Uid in /proc/%d/status" % pid)


def round_trip(test, directory, topic="devices/device-1/location"):
    """A signed QoS 1 message from device-1 to the monitor through the broker started in
    `directory`, over mutual TLS with the certificates it made there."""
    certs = os.path.join(directory, "certs")
    with open(os.path.join(directory, "port")) as f:
        port = f.read().strip()
    keys = tempfile.mkdtemp(prefix="securemqtt-keys-")
    test.addCleanup(shutil.rmtree, keys, True)
    key = os.path.join(keys, "device-1.hex")
    with open(key, "w") as f:
        f.write(os.urandom(32).hex() + "\n")
    os.chmod(key, 0o600)

    def tls(name):
        return ["-h", "localhost", "-p", port, "--cafile", os.path.join(certs, "ca.pem"),
                "--cert", os.path.join(certs, name + ".pem"), "--key", os.path.join(certs, name + ".key"),
                "--key-id", "device-1", "--hmac-key", key]

    sub = Subscriber([program("secure_subscriber"), "-v", "-q", "1", "-C", "1", "-W", "20", "-t", topic] +
                     tls("monitor") + ["-d"], ready_marker="connected to")
    out = run([program("secure_publisher"), "-q", "1", "-t", topic, "-m", "found it"] + tls("device-1"))
    test.assertEqual(out.returncode, 0, out.stderr)
    rc, out, err = sub.finish()
    test.assertEqual(rc, 0, err)
    test.assertEqual(out.splitlines(), [topic + " found it"])


class FromA0700Directory(unittest.TestCase):
    """As root: the checkout and DIR inside a 0700 tree, which the `mosquitto` user Mosquitto
    drops to cannot enter. Not root: the same from the current user's own 0700 directory."""

    def test_broker_started_from_a_0700_tree_carries_a_round_trip(self):
        top = tempfile.mkdtemp(prefix="securemqtt-home-")  # 0700, like /root or mktemp -d
        self.addCleanup(shutil.rmtree, top, True)
        self.assertEqual(stat.S_IMODE(os.stat(top).st_mode), 0o700)
        checkout = copy_checkout(os.path.join(top, "securemqtt"))
        directory = os.path.join(checkout, "build", "demo")
        self.addCleanup(broker, "stop", checkout, directory)

        out = broker("start", checkout, directory, "--clients", "device-1,monitor")
        self.assertEqual(out.returncode, 0, out.stderr)
        with open(os.path.join(directory, "mosquitto.pid")) as f:
            pid = int(f.read())
        round_trip(self, directory)

        if IS_ROOT:
            mosquitto = pwd.getpwnam("mosquitto")
            self.assertEqual(process_uid(pid), mosquitto.pw_uid, "Mosquitto should have dropped to its user")
            # What Mosquitto opens as that user is in a private runtime directory of its own.
            with open(os.path.join(directory, "mosquitto.runtime")) as f:
                runtime = f.read().strip()
            self.assertFalse(runtime.startswith(top + os.sep), runtime)
            st = os.stat(runtime)
            self.assertEqual((st.st_uid, stat.S_IMODE(st.st_mode)), (mosquitto.pw_uid, 0o700), runtime)
            key = os.stat(os.path.join(runtime, "certs", "server.key"))
            self.assertEqual(stat.S_IMODE(key.st_mode) & 0o077, 0, "the server key is readable by others")
            self.assertTrue(os.path.exists(os.path.join(runtime, "acl")))
        else:
            self.assertEqual(process_uid(pid), os.geteuid())
            runtime = None

        out = broker("stop", checkout, directory)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertFalse(os.path.exists(os.path.join(directory, "mosquitto.pid")))
        self.assertFalse(os.path.exists(os.path.join(directory, "mosquitto.runtime")))
        if runtime:
            self.assertFalse(os.path.exists(runtime), "stop left the runtime directory " + runtime)
        # The broker's log and persistence come back to DIR for reading after the stop.
        with open(os.path.join(directory, "data", "mosquitto.log")) as f:
            self.assertIn("running", f.read())
        self.assertTrue(os.path.exists(os.path.join(directory, "data", "mosquitto.db")))

        # And again: a second start from the same DIR takes up the saved state.
        out = broker("start", checkout, directory, "--clients", "device-1,monitor")
        self.assertEqual(out.returncode, 0, out.stderr)
        round_trip(self, directory, topic="devices/device-1/again")


class NeverFollowsLinks(unittest.TestCase):
    """As root, local_broker.py hands DIR/data to Mosquitto's user when that user can reach it.
    A link that user planted there must never make root change the owner of its target."""

    def test_a_link_planted_in_the_data_directory_never_gets_its_target_chowned(self):
        top = tempfile.mkdtemp(prefix="securemqtt-open-")
        self.addCleanup(shutil.rmtree, top, True)
        os.chmod(top, 0o755)  # reachable by Mosquitto's user: DIR is used in place
        checkout = copy_checkout(os.path.join(top, "securemqtt"))
        directory = os.path.join(top, "dir")
        self.addCleanup(broker, "stop", checkout, directory)
        out = broker("start", checkout, directory, "--clients", "device-1,monitor")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(broker("stop", checkout, directory).returncode, 0)
        fd, target = tempfile.mkstemp(prefix="securemqtt-link-target-")  # root's, mode 0600
        os.close(fd)
        self.addCleanup(os.remove, target)
        before = os.stat(target)
        os.symlink(target, os.path.join(directory, "data", "planted"))
        out = broker("start", checkout, directory, "--clients", "device-1,monitor")
        self.assertEqual(out.returncode, 0, out.stderr)
        after = os.stat(target)
        self.assertEqual((after.st_uid, after.st_gid, after.st_mode), (before.st_uid, before.st_gid, before.st_mode))
        round_trip(self, directory)


class AsAnUnprivilegedUser(unittest.TestCase):
    """An unprivileged user with the packages installed runs the broker from a copy of the
    checkout in its own 0700 home: nothing changes user, the broker runs as that user."""

    def test_broker_started_by_a_plain_user_from_its_home_carries_a_round_trip(self):
        if not IS_ROOT:
            # Not applicable without root (we cannot make a user to switch to); the plain-user
            # case is what FromA0700Directory runs as this user.
            self.assertFalse(os.access("/etc/passwd", os.W_OK), "not root, yet /etc/passwd is writable")
            print("\n  not root: the unprivileged-user case ran as %s in FromA0700Directory"
                  % pwd.getpwuid(os.geteuid()).pw_name)
            return
        user = ensure_test_user()
        self.assertEqual(stat.S_IMODE(os.stat(user.pw_dir).st_mode), 0o700)
        top = tempfile.mkdtemp(prefix="checkout-", dir=user.pw_dir)
        self.addCleanup(shutil.rmtree, top, True)
        checkout = copy_checkout(os.path.join(top, "securemqtt"))
        chown_tree(top, user)
        directory = os.path.join(checkout, "build", "demo")
        self.addCleanup(broker, "stop", checkout, directory, user=user)

        out = broker("start", checkout, directory, "--clients", "device-1,monitor", user=user)
        self.assertEqual(out.returncode, 0, out.stderr)
        with open(os.path.join(directory, "mosquitto.pid")) as f:
            self.assertEqual(process_uid(int(f.read())), user.pw_uid)
        self.assertFalse(os.path.exists(os.path.join(directory, "mosquitto.runtime")),
                         "a plain user's broker needs no runtime directory elsewhere")
        round_trip(self, directory)
        out = broker("stop", checkout, directory, user=user)
        self.assertEqual(out.returncode, 0, out.stderr)


class SaysWhyInOneLine(unittest.TestCase):
    """A broker that cannot start exits non-zero with one line: what failed, for which user,
    and what to do."""

    def setUp(self):
        # As root, the unprivileged test user runs it, so that a file it cannot read is a real
        # refusal (root reads everything).
        self.user = ensure_test_user() if IS_ROOT else None
        top = tempfile.mkdtemp(prefix="checkout-", dir=self.user.pw_dir if self.user else None)
        self.addCleanup(shutil.rmtree, top, True)
        self.checkout = copy_checkout(os.path.join(top, "securemqtt"))
        self.dir = os.path.join(self.checkout, "build", "demo")
        if self.user:
            chown_tree(top, self.user)
        self.name = self.user.pw_name if self.user else pwd.getpwuid(os.geteuid()).pw_name
        self.addCleanup(self.broker, "stop")

    def broker(self, action, *extra):
        return broker(action, self.checkout, self.dir, *extra, user=self.user)

    def assert_one_line(self, out, *expected):
        self.assertNotEqual(out.returncode, 0, "the broker started: " + out.stdout)
        lines = out.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, "expected one line, got:\n" + out.stderr)
        for text in expected:
            self.assertIn(text, lines[0])
        self.assertFalse(os.path.exists(os.path.join(self.dir, "mosquitto.pid")))
        return lines[0]

    def test_a_port_in_use_is_named_with_what_to_do(self):
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            out = self.broker("start", "--port", str(port))
        line = self.assert_one_line(out, "127.0.0.1:%d" % port, "already in use", "--port", self.name)
        print("\n  " + line)

    def test_a_server_key_mosquitto_cannot_read_is_named_with_the_user(self):
        out = self.broker("start")  # makes the certificates
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(self.broker("stop").returncode, 0)
        key = os.path.join(self.dir, "certs", "server.key")
        os.chmod(key, 0)
        out = self.broker("start")
        line = self.assert_one_line(out, key, "user '%s'" % self.name, "chmod")
        print("\n  " + line)


if __name__ == "__main__":
    main()
