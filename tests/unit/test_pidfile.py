# SPDX-License-Identifier: Apache-2.0
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from vio4wd_agent import pidfile


def test_acquire_release(tmp_path):
    pf = pidfile.PidFile(str(tmp_path / "run" / "a.pid"))
    pf.acquire()
    assert (tmp_path / "run" / "a.pid").read_text() == "%d\n" % os.getpid()
    pf.release()
    assert not (tmp_path / "run" / "a.pid").exists()


def test_a_file_nobody_holds_is_taken_over(tmp_path):
    """A pid file left by an agent that died (or naming a process that
    merely looks like one): nobody holds its lock, so it is ours."""
    path = tmp_path / "a.pid"
    path.write_text("1\n")          # init: alive, and not an agent
    pf = pidfile.PidFile(str(path))
    pf.acquire()
    assert path.read_text() == "%d\n" % os.getpid()
    pf.release()


def test_the_holder_of_the_lock_is_refused_by_pid(tmp_path):
    path = tmp_path / "a.pid"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys; from vio4wd_agent import pidfile; "
        "pidfile.PidFile(sys.argv[1]).acquire(); print('held', flush=True); "
        "sys.stdin.read()"), str(path)], stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "held\n"
        with pytest.raises(pidfile.AlreadyRunning,
                           match="pid %d" % holder.pid):
            pidfile.PidFile(str(path)).acquire()
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(30)
    # The holder is gone (without releasing): the lock went with it.
    pf = pidfile.PidFile(str(path))
    pf.acquire()
    pf.release()


def test_a_symlink_is_not_followed(tmp_path):
    target = tmp_path / "precious"
    target.write_text("keep me\n")
    os.symlink(target, tmp_path / "a.pid")
    with pytest.raises(OSError):
        pidfile.PidFile(str(tmp_path / "a.pid")).acquire()
    assert target.read_text() == "keep me\n"
