# SPDX-License-Identifier: Apache-2.0
"""Servers the tests start (Mosquitto, Redis) live in temporary directories of their own,
detached from the test process. A test killed before its clean-up (e.g. by ctest's timeout)
leaves them running; the next test to start one reaps them. Plain Python, no third-party
modules."""

import os
import shutil
import tempfile


def _alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def claim(directory):
    """Marks `directory` (a broker's or server's) as this test process's, for reap_orphans()."""
    with open(os.path.join(directory, "owner.pid"), "w") as f:
        f.write(str(os.getpid()))


def reap_orphans(prefix, stop):
    """Stops what earlier test processes left running in tempdir/PREFIX* when they were killed
    (e.g. by ctest's timeout) before their clean-up ran: `stop(directory)`, then removes it.
    Directories without an owner record, or whose owner still runs, are left alone."""
    base = tempfile.gettempdir()
    for name in os.listdir(base):
        d = os.path.join(base, name)
        if not name.startswith(prefix) or not os.path.isdir(d):
            continue
        try:
            with open(os.path.join(d, "owner.pid")) as f:
                owner = int(f.read())
        except (OSError, ValueError):
            continue
        if owner == os.getpid() or _alive(owner):
            continue
        try:
            stop(d)
        finally:
            shutil.rmtree(d, ignore_errors=True)


