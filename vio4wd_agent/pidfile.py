# SPDX-License-Identifier: Apache-2.0
"""PID file that refuses to start a second agent on the same file."""
from __future__ import annotations

import os

from vio4wd_agent.exception import Vio4wdException


class AlreadyRunning(Vio4wdException):
    msg_fmt = "another agent (pid %(pid)d) holds %(path)s"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return b"vio4wd" in f.read()
    except OSError:
        return False


class PidFile:
    def __init__(self, path: str) -> None:
        self.path = path

    def acquire(self) -> None:
        try:
            with open(self.path, encoding="ascii") as f:
                pid = int(f.read().strip() or 0)
        except (OSError, ValueError):
            pid = 0
        if pid and pid != os.getpid() and _alive(pid):
            raise AlreadyRunning(pid=pid, path=self.path)
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        tmp = "%s.%d.tmp" % (self.path, os.getpid())
        with open(tmp, "w", encoding="ascii") as f:
            f.write("%d\n" % os.getpid())
        os.replace(tmp, self.path)

    def release(self) -> None:
        try:
            with open(self.path, encoding="ascii") as f:
                mine = f.read().strip() == str(os.getpid())
            if mine:
                os.unlink(self.path)
        except OSError:
            pass
