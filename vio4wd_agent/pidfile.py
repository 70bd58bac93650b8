# SPDX-License-Identifier: Apache-2.0
"""PID file that refuses to start a second agent on the same file.

The agent holding the file is the process that has it locked (flock), for
as long as it runs: not a process that merely has a similar name, and not
one that died without removing it.  The file lives in a trusted directory
(see vio4wd_agent.trusted)."""
from __future__ import annotations

import os

from vio4wd_agent import trusted
from vio4wd_agent.exception import Vio4wdException


class AlreadyRunning(Vio4wdException):
    msg_fmt = "another agent (pid %(pid)s) holds %(path)s"


class PidFile:
    def __init__(self, path: str) -> None:
        self.path = path
        self._lock: trusted.LockFile | None = None

    def acquire(self) -> None:
        directory = trusted.ensure_dir(os.path.dirname(self.path) or ".",
                                       mode=0o755, what="pid file directory")
        lock = trusted.LockFile(os.path.join(directory,
                                             os.path.basename(self.path)))
        locked, holder = lock.acquire()
        if not locked:
            raise AlreadyRunning(pid=holder if holder is not None
                                 else "unknown", path=self.path)
        self._lock = lock

    def release(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None
