# SPDX-License-Identifier: Apache-2.0
"""vio4wd-agent as a subprocess, kept off the host's own paths and ports."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

AGENT = os.path.join(os.path.dirname(sys.executable), "vio4wd-agent")

# Every agent a test started, so none outlives its test (see conftest).
STARTED: list["AgentProcess"] = []


def private_config(tmp_path) -> str:
    """What keeps a test agent off the host's own paths and ports."""
    run = tmp_path / "zmq"
    return textwrap.dedent("""\
        [agent]
        state_dir = %(state)s
        pid_file = %(pid)s
        [metrics]
        port = 0
        [control]
        zmq_port_control_ep = ipc://%(run)s/port_control
        zmq_stats_ep = ipc://%(run)s/stats
        zmq_core_sched_ep = ipc://%(run)s/core_sched
        zmq_config_ep = ipc://%(run)s/config
        ipc_dir = %(ipc)s
        [libvirt]
        enabled = false
        """) % {"state": tmp_path / "state", "run": run,
                "pid": tmp_path / "agent.pid",
                "ipc": tmp_path / "ipc"}


def legacy_basics(cpus: dict[str, int], hugepage_dir: str | None,
                  socks: object) -> str:
    """The legacy lines every test agent needs: its CPUs, hugepages and
    socket directory."""
    return ("VIRTIOFWD_CPU_MASK=%d\nVIRTIOFWD_MASTER_LCORE=%d\n"
            "VIRTIOFWD_HUGETLBFS_MOUNT_POINT=%s\nVIRTIOFWD_SOCKET_DIR=%s\n"
            % (cpus["worker"], cpus["main"], hugepage_dir or "", socks))


class AgentProcess:
    def __init__(self, tmp_path, legacy: str, native: str = "") -> None:
        self.base = tmp_path
        self.legacy = tmp_path / "virtioforwarder"
        self.legacy_text = textwrap.dedent(legacy)
        self.legacy.write_text(self.legacy_text)
        self.starts = 0
        self.native = tmp_path / "vio4wd.conf"
        self.native.write_text(private_config(tmp_path) +
                               textwrap.dedent(native))
        self.log = tmp_path / "agent.log"
        self.proc: subprocess.Popen | None = None
        # A command the agent runs under (restrictions, namespaces).
        self.prefix: list[str] = []

    def start(self) -> "AgentProcess":
        """Start (again); each start logs to its own file."""
        self.starts += 1
        self.log = self.base / ("agent.%d.log" % self.starts)
        cmd = self.prefix + [AGENT, "--config-file", str(self.native)]
        if self.legacy_text:
            cmd += ["--legacy-config", str(self.legacy)]
        self.proc = subprocess.Popen(cmd, stdout=open(self.log, "w"),
                                     stderr=subprocess.STDOUT)
        STARTED.append(self)
        return self

    def run(self, timeout: float = 30) -> int:
        self.start()
        assert self.proc is not None
        return self.proc.wait(timeout)

    def output(self) -> str:
        return self.log.read_text()

    def ep(self, name: str) -> str:
        """The agent's ZeroMQ endpoint ``name`` (port_control, stats...)."""
        return "ipc://%s/%s" % (self.base / "zmq", name)

    @property
    def socket_dir(self):  # type: ignore[no-untyped-def]
        return self.base / "socks"

    def wait_ready(self, timeout: float = 60) -> "AgentProcess":
        import time
        deadline = time.monotonic() + timeout
        while "vio4wd agent running" not in self.output():
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError("agent exited %s: %s" % (
                    self.proc.returncode, self.output()))
            if time.monotonic() > deadline:
                raise AssertionError("agent not ready: %s" % self.output())
            time.sleep(0.05)
        return self

    def metrics_url(self) -> str:
        import re
        m = re.search(r"metrics on (http://\S+)", self.output())
        assert m, self.output()
        return m.group(1)

    def ctl(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
        # The tool waits 2 s by default; a loaded 2-CPU machine (a VM
        # polling on the CPU the agent's control threads share) may take
        # longer to make a relay.
        wait = [] if "--timeout" in args else ["--timeout", "20000"]
        return subprocess.run([os.path.join(os.path.dirname(AGENT),
                                            "vio4wd-ctl"), *args, *wait,
                               "--zmq-ep", self.ep("port_control")],
                              capture_output=True, text=True,
                              timeout=timeout)

    def tool(self, name: str, *args: str,
             timeout: float = 30) -> subprocess.CompletedProcess:
        return subprocess.run([os.path.join(os.path.dirname(AGENT), name),
                               *args], capture_output=True, text=True,
                              timeout=timeout)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        return self.proc.wait(timeout)




def native_agent(tmp_path, cpus: dict[str, int], hugepage_dir: str | None,
                 extra: str = "", name: str = "agent") -> "AgentProcess":
    """An agent configured natively: worker on the test worker CPU, its
    own sockets, endpoints, state and file prefix."""
    base = tmp_path / name
    base.mkdir(exist_ok=True)
    conf = textwrap.dedent("""\
        [dataplane]
        worker_cpus = %(worker)d
        main_lcore = %(main)d
        hugepage_dir = %(huge)s
        file_prefix = v4w%(name)s%(pid)d
        expected_relays = 4
        [vhost]
        socket_dir = %(socks)s
        """) % dict(cpus, huge=hugepage_dir or "", name=name,
                    pid=os.getpid(), socks=base / "socks")
    return AgentProcess(base, "", native=conf + textwrap.dedent(extra))
