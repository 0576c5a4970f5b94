#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Starts and stops a local Mosquitto with mutual TLS on loopback, for the demo and the tests.

    local_broker.py start DIR [--port N] [--server-dns NAME] [--tls-version tlsv1.2]
                              [--clients NAME,NAME,...] [--password-auth] [--durable]
                              [--dynamic-security] [--max-packet-size BYTES]
    local_broker.py stop DIR

`start` makes a CA, a server certificate and client certificates with the certs/ scripts in
DIR/certs (unless they exist), writes DIR/mosquitto.conf from examples/mosquitto/ (the ACL
copied to DIR/acl), starts mosquitto, waits until it runs, and writes DIR/port and
DIR/mosquitto.pid. When it cannot start, it says why in one line; Mosquitto's own output is in
DIR/mosquitto.stderr, its log in DIR/data/mosquitto.log.

Started as root, Mosquitto drops to the user 'mosquitto' before it opens its certificates, ACL,
persistence and log. When that user can reach them in DIR, they stay there (the server key
handed to it); when it cannot (DIR under /root or in a `mktemp -d` directory, both 0700), they
are copied to a private runtime directory, mkdtemp under the system temp directory, owned by
that user and mode 0700, whose path is in DIR/mosquitto.runtime. `stop` copies the persistence
database and the log back to DIR/data and removes it. Clients keep using DIR/certs. Not root,
nothing changes user and everything stays in DIR.
Standard library only.
"""

import argparse
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
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


def broker_user():
    """The user Mosquitto runs as once started: as root, Mosquitto 2 drops to the `user` of its
    configuration, 'mosquitto' by default (ours sets none), or 'nobody' when that user does not
    exist; otherwise it stays the user who started it. Returns (pwd entry, groups) where groups
    are the supplementary groups it takes up (initgroups), or (entry, None) for no change."""
    if os.geteuid() != 0:
        return pwd.getpwuid(os.geteuid()), None
    for name in ("mosquitto", "nobody"):
        try:
            user = pwd.getpwnam(name)
        except KeyError:
            continue
        return user, os.getgrouplist(user.pw_name, user.pw_gid)
    sys.exit("local_broker: neither user 'mosquitto' nor 'nobody' exists for mosquitto to drop to as root; "
             "reinstall the mosquitto package (it creates the user)")


def user_can(user, groups, *test_args):
    """True when `user` can do what test(1) checks with TEST_ARGS, e.g. ('-r', PATH): run as that
    user with the groups Mosquitto takes, so that every directory on the way counts."""
    switch = {} if groups is None else dict(user=user.pw_uid, group=user.pw_gid, extra_groups=groups)
    return subprocess.run(["test"] + list(test_args), cwd="/", stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL, **switch).returncode == 0


def blocking_directory(user, groups, path):
    """The first directory on the way to `path` that `user` cannot enter, or None."""
    parts = os.path.abspath(path).split(os.sep)[1:-1]
    current = os.sep
    for part in parts:
        current = os.path.join(current, part)
        if not user_can(user, groups, "-x", current):
            return current
    return None


def describe(path):
    try:
        st = os.stat(path)
    except OSError as e:
        return "%s: %s" % (path, e.strerror)
    try:
        owner = pwd.getpwuid(st.st_uid).pw_name
    except KeyError:
        owner = str(st.st_uid)
    return "'%s' (mode %04o, owner %s)" % (path, stat.S_IMODE(st.st_mode), owner)


# What Mosquitto opens after dropping privileges, relative to the directory it runs from.
BROKER_FILES = ("certs/ca.pem", "certs/server.pem", "certs/server.key", "certs/crl.pem", "acl", "passwords",
                "dynamic-security.json")
DYNSEC_PLUGINS = ("/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so",
                  "/usr/lib/aarch64-linux-gnu/mosquitto_dynamic_security.so",
                  "/usr/lib/mosquitto_dynamic_security.so")


def dynamic_security(clients):
    """The ACL file's rules as a dynamic-security plugin configuration, which (unlike an ACL
    file, in Mosquitto 2.0) also checks subscriptions: a refused one gets a SUBACK failure."""
    import json
    roles, entries = [], []
    for name in clients:
        if name == "monitor":
            acls = [{"acltype": "subscribePattern", "topic": "devices/#", "priority": 0, "allow": True}]
        else:
            acls = [{"acltype": t, "topic": "devices/%s/#" % name, "priority": 0, "allow": True}
                    for t in ("publishClientSend", "subscribePattern")]
        roles.append({"rolename": name, "acls": acls})
        entries.append({"username": name, "roles": [{"rolename": name}]})
    return json.dumps({"defaultACLAccess": {"publishClientSend": False, "publishClientReceive": True,
                                            "subscribe": False, "unsubscribe": True},
                       "clients": entries, "groups": [], "roles": roles}, indent=1)
RUNTIME_RECORD = "mosquitto.runtime"  # DIR/mosquitto.runtime: the runtime directory in use
RUNTIME_PREFIX = "securemqtt-broker-"
PERSISTED = ("mosquitto.db", "mosquitto.log")


def runtime_parents():
    """Candidate homes for a runtime directory, most usual first."""
    seen = []
    for parent in (tempfile.gettempdir(), "/tmp", "/var/tmp", "/run"):
        if os.path.isdir(parent) and parent not in seen:
            seen.append(parent)
    return seen


def recorded_runtime(directory):
    """The runtime directory recorded in DIR, if it exists and looks like one of ours."""
    try:
        with open(os.path.join(directory, RUNTIME_RECORD)) as f:
            runtime = f.read().strip()
    except OSError:
        return None
    if (os.path.basename(runtime).startswith(RUNTIME_PREFIX) and os.path.isabs(runtime)
            and os.path.isdir(runtime) and not os.path.islink(runtime)):
        return runtime
    return None


def open_in(runtime, relative):
    """Opens a regular file under a runtime directory for reading, following no symbolic link
    on the way: the directory belongs to Mosquitto's user, and we read it as root."""
    fd = os.open(runtime, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        for part in relative.split("/")[:-1]:
            sub = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = sub
        src = os.open(relative.split("/")[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=fd)
    finally:
        os.close(fd)
    if not stat.S_ISREG(os.fstat(src).st_mode):
        os.close(src)
        raise OSError("not a regular file: " + os.path.join(runtime, relative))
    return os.fdopen(src, "rb")


def write_new(src_file, dst, uid, gid, mode):
    """Writes a new file (replacing any file or link of that name) owned by uid:gid."""
    if os.path.lexists(dst):
        os.remove(dst)
    fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    with os.fdopen(fd, "wb") as out:
        shutil.copyfileobj(src_file, out)
        os.fchown(out.fileno(), uid, gid)
        os.fchmod(out.fileno(), mode)


def prepare_runtime(directory, user, groups):
    """As root, when Mosquitto's user cannot use DIR: a new private directory it can reach
    (mkdtemp under the system temp directory, owned by it, mode 0700) holding copies of what it
    opens, and its persistence and log, taken over from the previous runtime directory (a start
    after a crash) or from DIR/data. DIR keeps the originals and is told where the copy is, so
    that `stop` copies the persistence and log back and removes it. Filled while still root's,
    then handed over: root never writes where Mosquitto's user could have put a link."""
    for parent in runtime_parents():
        if user_can(user, groups, "-x", parent):
            break
    else:
        sys.exit("local_broker: user '%s', which mosquitto runs as, can enter none of %s to reach its files; "
                 "set TMPDIR to a directory it can enter" % (user.pw_name, ", ".join(runtime_parents())))
    runtime = tempfile.mkdtemp(prefix=RUNTIME_PREFIX, dir=parent)
    for sub in ("certs", "data"):
        os.mkdir(os.path.join(runtime, sub), 0o700)
    for name in BROKER_FILES:  # fresh copies on every start: a new CRL is taken up by a restart
        src = os.path.join(directory, name)
        if os.path.exists(src):
            with open(src, "rb") as f:
                write_new(f, os.path.join(runtime, name), user.pw_uid, user.pw_gid, 0o600)
    previous = recorded_runtime(directory)
    for name in PERSISTED:
        try:
            src = open_in(previous, "data/" + name) if previous else open(os.path.join(directory, "data", name), "rb")
        except OSError:
            continue
        with src:
            write_new(src, os.path.join(runtime, "data", name), user.pw_uid, user.pw_gid, 0o600)
    for path in (os.path.join(runtime, "certs"), os.path.join(runtime, "data"), runtime):
        os.chown(path, user.pw_uid, user.pw_gid, follow_symlinks=False)
    if previous:
        shutil.rmtree(previous, ignore_errors=True)
    with open(os.path.join(directory, RUNTIME_RECORD), "w") as f:
        f.write(runtime + "\n")
    return runtime


def hand_over_in_place(directory, user, groups):
    """As root, when Mosquitto's user can enter DIR/certs and DIR/data: give it the key and the
    data it must read and write there. False (nothing changed) when it cannot."""
    certs, data = os.path.join(directory, "certs"), os.path.join(directory, "data")
    if not user_can(user, groups, "-x", certs, "-a", "-x", data):
        return False
    # Mosquitto's user can write in DIR/data: never follow a link it may have put there, and
    # hand over regular files only.
    for path in [os.path.join(directory, name) for name in BROKER_FILES] + \
            [os.path.join(data, e) for e in os.listdir(data)]:
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            continue
        if stat.S_ISREG(st.st_mode):
            os.chown(path, user.pw_uid, user.pw_gid, follow_symlinks=False)
    os.chown(data, user.pw_uid, user.pw_gid, follow_symlinks=False)
    checks = ["-w", data]
    for name in BROKER_FILES:
        if os.path.exists(os.path.join(directory, name)):
            checks += ["-a", "-r", os.path.join(directory, name)]
    return user_can(user, groups, *checks)


def remove_runtime(directory):
    """Copies the persistence and log back to DIR/data and removes the runtime directory."""
    runtime = recorded_runtime(directory)
    if runtime is not None:
        data = os.path.join(directory, "data")
        os.makedirs(data, exist_ok=True)
        st = os.stat(data)
        for name in PERSISTED:
            try:
                src = open_in(runtime, "data/" + name)
            except OSError:
                continue
            with src:
                write_new(src, os.path.join(data, name), st.st_uid, st.st_gid, 0o600)
        shutil.rmtree(runtime, ignore_errors=True)
    try:
        os.remove(os.path.join(directory, RUNTIME_RECORD))
    except FileNotFoundError:
        pass


def read_from(path, offset=0):
    try:
        with open(path, errors="replace") as f:
            f.seek(offset)
            return f.read()
    except OSError:
        return ""


def wait_until_running(port, proc, log, log_offset, deadline):
    """Mosquitto opens its listening socket as root, then drops privileges and only then loads
    its certificates and opens its log: an accepted connection alone does not mean it started.
    It has when its log says 'running' and the port accepts connections."""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        if " running" in read_from(log, log_offset):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    return proc.poll() is None
            except OSError:
                pass
        time.sleep(0.05)
    return False


def port_in_use(bind, port):
    with socket.socket(socket.AF_INET6 if ":" in bind else socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((bind, port))
        except OSError:
            return True
    return False


def why_not_started(directory, home, user, groups, bind, port, output, stderr_path):
    """One line: what stopped Mosquitto, for which user, and what to do."""
    errors = []
    for line in output.splitlines():
        text = line.split(": ", 1)[1] if line[:1].isdigit() and ": " in line else line
        if text.startswith("Error") and text not in errors:
            errors.append(text.strip().rstrip("."))
    if home != directory:  # name the user's files, not the runtime copies
        errors = [e.replace(home, directory) for e in errors]
    where = "(output: %s)" % stderr_path
    who = "user '%s'" % user.pw_name
    if any("Address already in use" in e for e in errors) or port_in_use(bind, port):
        return ("%s:%d is already in use, so mosquitto (as %s) cannot listen there; stop what listens on it or "
                "pass another --port %s" % (bind, port, who, where))
    for name in BROKER_FILES + ("data",):
        original = os.path.join(directory, name)
        path = os.path.join(home, name)
        if not os.path.exists(path) or user_can(user, groups, "-w" if name == "data" else "-r", path):
            continue
        blocker = blocking_directory(user, groups, path)
        if blocker:
            return ("%s, which mosquitto runs as, cannot enter %s on the way to %s; run from a directory it can "
                    "enter, or chmod o+x that directory %s" % (who, describe(blocker), original, where))
        return ("%s, which mosquitto runs as, cannot %s %s; chmod or chown it so that it can %s"
                % (who, "write" if name == "data" else "read", describe(original), where))
    cause = "; ".join(errors[:2]) or "it exited without an error message"
    return "mosquitto (as %s) did not start: %s; see its log %s %s" % (
        who, cause, os.path.join(directory, "data", "mosquitto.log"), where)


def start(args):
    directory = os.path.abspath(args.dir)
    certs = os.path.join(directory, "certs")
    data = os.path.join(directory, "data")
    os.makedirs(certs, exist_ok=True)
    os.makedirs(data, exist_ok=True)
    make_certs(certs, args.server_dns or ["localhost"], args.clients.split(","))
    # The ACL is read after Mosquitto drops privileges: it goes with the broker's other files
    # rather than being read from the checkout, which Mosquitto's user may not reach.
    shutil.copyfile(os.path.join(ROOT, "examples", "mosquitto", "acl"), os.path.join(directory, "acl"))
    if args.password_auth:
        open(os.path.join(directory, "passwords"), "w").close()
    if args.dynamic_security:
        with open(os.path.join(directory, "dynamic-security.json"), "w") as f:
            f.write(dynamic_security(args.clients.split(",")))
    user, groups = broker_user()
    home = directory
    if groups is not None and not hand_over_in_place(directory, user, groups):
        home = prepare_runtime(directory, user, groups)
    else:
        remove_runtime(directory)
    mosquitto = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    log = os.path.join(home, "data", "mosquitto.log")
    stderr_path = os.path.join(directory, "mosquitto.stderr")
    for attempt in range(5):
        port = args.port or free_port()
        with open(os.path.join(ROOT, "examples", "mosquitto", "mosquitto.conf")) as f:
            conf = f.read()
        for key, value in (("@PORT@", str(port)), ("@BIND@", args.bind), ("@CERT_DIR@", os.path.join(home, "certs")),
                           ("@DATA_DIR@", os.path.join(home, "data")), ("@TLS_VERSION@", args.tls_version),
                           ("@ACL_FILE@", os.path.join(home, "acl"))):
            conf = conf.replace(key, value)
        if args.password_auth:
            # For tests of a broker that refuses at the MQTT level (CONNACK "not authorised"):
            # the certificate no longer names the user, and there are no users.
            conf = conf.replace("use_identity_as_username true", "use_identity_as_username false\n"
                                "password_file " + os.path.join(home, "passwords"))
        if args.dynamic_security:
            plugin = next((p for p in DYNSEC_PLUGINS if os.path.exists(p)), None)
            if plugin is None:
                sys.exit("local_broker: --dynamic-security: Mosquitto's dynamic security plugin is not in %s"
                         % ", ".join(DYNSEC_PLUGINS))
            conf = conf.replace("acl_file " + os.path.join(home, "acl"), "plugin %s\nplugin_opt_config_file %s"
                                % (plugin, os.path.join(home, "dynamic-security.json")))
        if args.max_packet_size:
            # For tests of a broker that ends a connection with an MQTT 5 DISCONNECT and a reason
            # (packet_too_large) rather than just closing it.
            conf += "\nmax_packet_size %d\n" % args.max_packet_size
        if args.durable:
            # Save the persistence database after every change rather than every second, so a
            # SIGKILL loses (almost) nothing the broker acknowledged.
            conf = conf.replace("autosave_interval 1", "autosave_on_changes true\nautosave_interval 1")
        # DIR/mosquitto.conf is the configuration to read; Mosquitto reads its own copy, which
        # it can still reach when it re-reads it on SIGHUP.
        conf_path = os.path.join(directory, "mosquitto.conf")
        with open(conf_path, "w") as f:
            f.write(conf)
        if home != directory:
            conf_path = os.path.join(home, "mosquitto.conf")
            with open(os.path.join(directory, "mosquitto.conf"), "rb") as f:
                write_new(f, conf_path, user.pw_uid, user.pw_gid, 0o600)
        log_offset = os.path.getsize(log) if os.path.exists(log) else 0
        with open(stderr_path, "w") as err:
            proc = subprocess.Popen([mosquitto, "-c", conf_path], stdin=subprocess.DEVNULL, cwd="/",
                                    stdout=err, stderr=err, start_new_session=True)
        if wait_until_running(port, proc, log, log_offset, time.monotonic() + 10):
            with open(os.path.join(directory, "mosquitto.pid"), "w") as f:
                f.write(str(proc.pid))
            with open(os.path.join(directory, "port"), "w") as f:
                f.write(str(port))
            print("mosquitto %d listening on %s:%d (mTLS) as user %s, certificates in %s%s"
                  % (proc.pid, args.bind, port, user.pw_name, certs,
                     ", its files in " + home if home != directory else ""))
            return 0
        proc.kill()
        proc.wait()
        output = read_from(stderr_path) + read_from(log, log_offset)
        if args.port or "Address already in use" not in output:
            break  # a free port taken meanwhile is worth another try; nothing else is
    reason = why_not_started(directory, home, user, groups, args.bind, port, output, stderr_path)
    if home != directory:
        remove_runtime(directory)
    sys.exit("local_broker: " + reason)


def alive(pid):
    """True while `pid` runs (a zombie waiting for a parent that never reaps does not count)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def stop(args):
    directory = os.path.abspath(args.dir)
    pid_file = os.path.join(directory, "mosquitto.pid")
    try:
        with open(pid_file) as f:
            pid = int(f.read())
    except (OSError, ValueError):
        pid = None
    if pid is not None:
        try:
            os.kill(pid, signal.SIGTERM)
            for _ in range(100):
                if not alive(pid):
                    break
                time.sleep(0.05)
            else:
                os.kill(pid, signal.SIGKILL)
                for _ in range(100):
                    if not alive(pid):
                        break
                    time.sleep(0.05)
        except ProcessLookupError:
            pass
        os.remove(pid_file)
    remove_runtime(directory)  # after Mosquitto has saved its state on SIGTERM
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
    parser.add_argument("--dynamic-security", action="store_true")
    parser.add_argument("--max-packet-size", type=int, default=0)
    args = parser.parse_args()
    return start(args) if args.action == "start" else stop(args)


if __name__ == "__main__":
    sys.exit(main())
