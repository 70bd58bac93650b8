# SPDX-License-Identifier: Apache-2.0
"""A private ovsdb-server (no ovs-vswitchd) on a database of its own."""
from __future__ import annotations

import os
import signal
import subprocess
import time

SCHEMA = "/usr/share/openvswitch/vswitch.ovsschema"


class OvsdbServer:
    def __init__(self, base) -> None:  # type: ignore[no-untyped-def]
        self.base = base
        self.db = str(base / "conf.db")
        self.sock = str(base / "db.sock")
        self.pidfile = str(base / "ovsdb.pid")
        self.remote = "unix:" + self.sock
        self.pid: int | None = None

    @property
    def agent_config(self) -> str:
        """The agent's config lines that make this server its port
        control."""
        return ("[control]\nport_control = ovsdb\nallow_devargs = true\n"
                "[ovsdb]\nconnection = %s\n"
                % self.remote)

    def create(self) -> "OvsdbServer":
        subprocess.run(["ovsdb-tool", "create", self.db, SCHEMA], check=True)
        return self

    def start(self) -> "OvsdbServer":
        env = dict(os.environ, OVS_RUNDIR=str(self.base),
                   OVS_LOGDIR=str(self.base), OVS_DBDIR=str(self.base))
        subprocess.run(["ovsdb-server", self.db, "--remote=punix:" + self.sock,
                        "--pidfile=" + self.pidfile, "--detach",
                        "--log-file=%s/ovsdb.log" % self.base,
                        "--unixctl=%s/ovsdb.ctl" % self.base], check=True,
                       env=env)
        with open(self.pidfile) as f:
            self.pid = int(f.read())
        self.vsctl("--no-wait", "init")
        return self

    def stop(self) -> None:
        """SIGTERM our server (by the PID it wrote) and wait for it."""
        if self.pid is None:
            return
        try:
            os.kill(self.pid, signal.SIGTERM)
            for _ in range(200):
                os.kill(self.pid, 0)
                time.sleep(0.02)
        except ProcessLookupError:
            pass
        self.pid = None

    def vsctl(self, *args: str) -> str:
        return subprocess.run(["ovs-vsctl", "--db=" + self.remote,
                               "--timeout=10", *args], check=True,
                              capture_output=True, text=True).stdout
