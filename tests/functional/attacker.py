# SPDX-License-Identifier: Apache-2.0
"""A throwaway unprivileged user, and code run as that user: the party
the agent must not let choose what root acts on.

The code runs in a Python that starts as root (to load the project from a
checkout only root may read), imports what it needs, then drops to the
user -- groups, group, user -- before it does anything: every system call
that matters is checked with the user's credentials.
"""
from __future__ import annotations

import dataclasses
import grp
import json
import os
import pwd
import subprocess
import sys
import tempfile
import textwrap

PRELUDE = """\
import json, os, socket, sys, time
import libvirt
import zmq
from vio4wd_agent.control import client, protocol
ARGS = json.loads(sys.argv[1])
os.setgroups(ARGS["groups"])
os.setgid(ARGS["gid"])
os.setuid(ARGS["uid"])
assert os.geteuid() != 0
"""


@dataclasses.dataclass
class Attacker:
    name: str
    uid: int
    gid: int
    group: str              # a group of its own, for the agent's group
    group_gid: int

    def _cmd(self, code: str, args: dict | None,
             in_group: bool) -> list[str]:
        data = dict(args or {}, uid=self.uid, gid=self.gid,
                    groups=[self.group_gid] if in_group else [])
        return [sys.executable, "-c", PRELUDE + textwrap.dedent(code),
                json.dumps(data)]

    def run(self, code: str, args: dict | None = None,
            in_group: bool = True,
            timeout: float = 60) -> subprocess.CompletedProcess:
        """Run ``code`` (after PRELUDE: ARGS, zmq, protocol, client) as
        this user, in the group when ``in_group``."""
        return subprocess.run(self._cmd(code, args, in_group),
                              capture_output=True, text=True,
                              timeout=timeout)

    def popen(self, code: str, args: dict | None = None,
              in_group: bool = True) -> subprocess.Popen:
        """As run(), in the background."""
        return subprocess.Popen(self._cmd(code, args, in_group),
                                stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)


def create() -> Attacker:
    name = "v4watk%d" % (os.getpid() % 1000000)
    group = name + "g"
    subprocess.run(["groupadd", "--system", group], check=True,
                   capture_output=True)
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell",
                    "/usr/sbin/nologin", "--user-group", name], check=True,
                   capture_output=True)
    pw = pwd.getpwnam(name)
    return Attacker(name, pw.pw_uid, pw.pw_gid, group,
                    grp.getgrnam(group).gr_gid)


def remove(attacker: Attacker) -> None:
    subprocess.run(["userdel", attacker.name], capture_output=True)
    subprocess.run(["groupdel", attacker.group], capture_output=True)


def reachable_dir(prefix: str) -> str:
    """A root-owned directory anyone may traverse (tmp_path is not), for
    the agent's files the attacker is meant to reach."""
    path = tempfile.mkdtemp(prefix=prefix)
    os.chmod(path, 0o755)
    return path
