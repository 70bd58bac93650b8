# SPDX-License-Identifier: Apache-2.0
from __future__ import annotations

import os
import subprocess
import time

import pytest

from vio4wd_agent import pidfile


def _cmdline(pid: int) -> bytes:
    with open("/proc/%d/cmdline" % pid, "rb") as f:
        return f.read()


def test_acquire_release(tmp_path):
    pf = pidfile.PidFile(str(tmp_path / "run" / "a.pid"))
    pf.acquire()
    assert (tmp_path / "run" / "a.pid").read_text() == "%d\n" % os.getpid()
    pf.release()
    assert not (tmp_path / "run" / "a.pid").exists()


def test_stale_pid_file_is_taken_over(tmp_path):
    proc = subprocess.Popen(["true"])
    proc.wait()
    path = tmp_path / "a.pid"
    path.write_text("%d\n" % proc.pid)
    pidfile.PidFile(str(path)).acquire()
    assert path.read_text() == "%d\n" % os.getpid()


def test_running_agent_is_refused(tmp_path):
    proc = subprocess.Popen(["sleep", "30"], executable="/bin/sleep")
    try:
        # /proc/<pid>/cmdline must name vio4wd for it to count as an agent
        path = tmp_path / "a.pid"
        path.write_text("%d\n" % os.getpid())
        other = pidfile.PidFile(str(path))
        other.acquire()  # our own pid: fine
        path.write_text("%d\n" % proc.pid)
        other.acquire()  # `sleep` is not an agent: taken over
    finally:
        proc.kill()
        proc.wait()
    agent = subprocess.Popen(["bash", "-c", "exec -a vio4wd-agent sleep 30"])
    try:
        # Until bash has exec'd, the child is a copy of this process.
        deadline = time.monotonic() + 60
        while not _cmdline(agent.pid).startswith(b"vio4wd-agent"):
            assert time.monotonic() < deadline, _cmdline(agent.pid)
            time.sleep(0.01)
        path.write_text("%d\n" % agent.pid)
        with pytest.raises(pidfile.AlreadyRunning):
            pidfile.PidFile(str(path)).acquire()
    finally:
        agent.kill()
        agent.wait()
