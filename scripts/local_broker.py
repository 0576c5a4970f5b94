#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Starts and stops a local Mosquitto with mutual TLS on loopback, for the demo and the tests.

    local_broker.py start DIR [--port N] [--server-dns NAME] [--tls-version tlsv1.2]
                              [--clients NAME,NAME,...] [--password-auth] [--durable]
    local_broker.py stop DIR

`start` makes a CA, a server certificate and client certificates with the certs/ scripts in
DIR/certs (unless they exist), writes DIR/mosquitto.conf from examples/mosquitto/, starts
mosquitto, waits until it accepts connections, and writes DIR/port and DIR/mosquitto.pid.
Standard library only.
"""

import argparse
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_CLIENTS = "device-1,device-2,monitor"


def run(*cmd):
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit("local_broker: %s failed:\n%s%s" % (" ".join(cmd), out.stdout, out.stderr))


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_certs(certs, server_dns, clients):
    if not os.path.exists(os.path.join(certs, "ca.pem")):
        run(os.path.join(ROOT, "certs", "generate_ca.sh"), "--out", certs)
    if not os.path.exists(os.path.join(certs, "server.pem")):
        args = [os.path.join(ROOT, "certs", "generate_server_cert.sh"), "--out", certs]
        for name in server_dns:
            args += ["--dns", name]
        if server_dns == ["localhost"]:
            args += ["--ip", "127.0.0.1", "--ip", "::1"]
        run(*args)
    for name in clients:
        if name and not os.path.exists(os.path.join(certs, name + ".pem")):
            run(os.path.join(ROOT, "certs", "generate_client_cert.sh"), name, "--out", certs)


def hand_to_mosquitto_user(directory, certs):
    """As root, Mosquitto drops to user 'mosquitto' and then cannot read root's 0600 key."""
    if os.geteuid() != 0:
        return
    try:
        user = pwd.getpwnam("mosquitto")
    except KeyError:
        return
    os.chmod(directory, 0o755)
    os.chmod(certs, 0o755)
    for name in ("server.key", "server.pem", "ca.pem", "crl.pem"):
        path = os.path.join(certs, name)
        if os.path.exists(path):
            os.chown(path, user.pw_uid, user.pw_gid)
    data = os.path.join(directory, "data")
    os.chown(data, user.pw_uid, user.pw_gid)
    for entry in os.listdir(data):
        os.chown(os.path.join(data, entry), user.pw_uid, user.pw_gid)


def wait_for_port(port, proc, deadline):
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def start(args):
    directory = os.path.abspath(args.dir)
    certs = os.path.join(directory, "certs")
    data = os.path.join(directory, "data")
    os.makedirs(certs, exist_ok=True)
    os.makedirs(data, exist_ok=True)
    make_certs(certs, args.server_dns or ["localhost"], args.clients.split(","))
    mosquitto = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    for attempt in range(5):
        port = args.port or free_port()
        with open(os.path.join(ROOT, "examples", "mosquitto", "mosquitto.conf")) as f:
            conf = f.read()
        for key, value in (("@PORT@", str(port)), ("@BIND@", args.bind), ("@CERT_DIR@", certs),
                           ("@DATA_DIR@", data), ("@TLS_VERSION@", args.tls_version),
                           ("@ACL_FILE@", os.path.join(ROOT, "examples", "mosquitto", "acl"))):
            conf = conf.replace(key, value)
        if args.password_auth:
            # For tests of a broker that refuses at the MQTT level (CONNACK "not authorised"):
            # the certificate no longer names the user, and there are no users.
            conf = conf.replace("use_identity_as_username true", "use_identity_as_username false\n"
                                "password_file " + os.path.join(directory, "passwords"))
            open(os.path.join(directory, "passwords"), "w").close()
        if args.durable:
            # Save the persistence database after every change rather than every second, so a
            # SIGKILL loses (almost) nothing the broker acknowledged.
            conf = conf.replace("autosave_interval 1", "autosave_on_changes true\nautosave_interval 1")
        conf_path = os.path.join(directory, "mosquitto.conf")
        with open(conf_path, "w") as f:
            f.write(conf)
        hand_to_mosquitto_user(directory, certs)
        proc = subprocess.Popen([mosquitto, "-c", conf_path], stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        if wait_for_port(port, proc, time.monotonic() + 10):
            with open(os.path.join(directory, "mosquitto.pid"), "w") as f:
                f.write(str(proc.pid))
            with open(os.path.join(directory, "port"), "w") as f:
                f.write(str(port))
            print("mosquitto %d listening on %s:%d (mTLS), certificates in %s" % (proc.pid, args.bind, port, certs))
            return 0
        proc.kill()
        proc.wait()
        if args.port:
            break
    log = os.path.join(data, "mosquitto.log")
    tail = open(log).read()[-2000:] if os.path.exists(log) else "(no log)"
    sys.exit("local_broker: mosquitto did not start; its log says:\n" + tail)


def stop(args):
    pid_file = os.path.join(os.path.abspath(args.dir), "mosquitto.pid")
    try:
        with open(pid_file) as f:
            pid = int(f.read())
    except (OSError, ValueError):
        return 0
    try:
        os.kill(pid, signal.SIGTERM)
        for _ in range(100):
            os.kill(pid, 0)
            time.sleep(0.05)
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    os.remove(pid_file)
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["start", "stop"])
    parser.add_argument("dir")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--bind", default="127.0.0.1")
    parser.add_argument("--server-dns", action="append")
    parser.add_argument("--tls-version", default="tlsv1.2")
    parser.add_argument("--clients", default=DEFAULT_CLIENTS)
    parser.add_argument("--password-auth", action="store_true")
    parser.add_argument("--durable", action="store_true")
    args = parser.parse_args()
    return start(args) if args.action == "start" else stop(args)


if __name__ == "__main__":
    sys.exit(main())
