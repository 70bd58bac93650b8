# SPDX-License-Identifier: Apache-2.0
"""Drive ``dpdk-testpmd`` interactively: the virtio-user "VM" of the demo,
the tests and the benchmarks, or a reference forwarder.

Output is read by a thread so the pipe never fills; each command waits for
the next ``testpmd>`` prompt.
"""
from __future__ import annotations

import dataclasses
import os
import re
import shutil
import signal
import subprocess
import threading
import time

PROMPT = "testpmd> "
_STATS_RE = {
    "rx_packets": re.compile(r"RX-packets:\s+(\d+)"),
    "rx_missed": re.compile(r"RX-missed:\s+(\d+)"),
    "rx_bytes": re.compile(r"RX-bytes:\s+(\d+)"),
    "tx_packets": re.compile(r"TX-packets:\s+(\d+)"),
    "tx_errors": re.compile(r"TX-errors:\s+(\d+)"),
    "tx_bytes": re.compile(r"TX-bytes:\s+(\d+)"),
}


class TestPmdError(RuntimeError):
    pass


@dataclasses.dataclass(frozen=True)
class PortStats:
    rx_packets: int
    rx_missed: int
    rx_bytes: int
    tx_packets: int
    tx_errors: int
    tx_bytes: int


def binary() -> str:
    path = shutil.which("dpdk-testpmd")
    if path is None:
        raise TestPmdError("dpdk-testpmd not found (apt-get install dpdk)")
    return path


def memory_args(hugepage_dir: str | None, memory_mb: int = 512) -> list[str]:
    """EAL memory arguments for a peer whose memory vhost-user shares."""
    if hugepage_dir:
        # One file per segment list keeps vhost-user under 8 regions.
        return ["--huge-dir", hugepage_dir, "--in-memory",
                "--single-file-segments"]
    return ["--no-huge", "-m", str(memory_mb)]


def virtio_user_vdev(socket_path: str, *, server: bool = False,
                     queues: int = 1, mac: str | None = None,
                     extra: str = "", index: int = 0) -> str:
    """A virtio-user port on ``socket_path``; ``index`` numbers the ports
    of a VM that has several."""
    vdev = "net_virtio_user%d,path=%s,queues=%d" % (index, socket_path,
                                                     queues)
    if server:
        vdev += ",server=1"
    if mac:
        vdev += ",mac=%s" % mac
    return vdev + ("," + extra if extra else "")


class TestPmd:
    """One testpmd process in interactive mode."""

    def __init__(self, vdevs: list[str], *, lcores: str = "0@1,1@0",
                 file_prefix: str = "v4w-testpmd",
                 hugepage_dir: str | None = None, mbufs: int = 8192,
                 extra_args: list[str] | None = None,
                 log_path: str | None = None) -> None:
        self.args = ["stdbuf", "-oL", binary(), "--lcores", lcores,
                     "--no-pci", "--file-prefix", file_prefix,
                     *memory_args(hugepage_dir)]
        for vdev in vdevs:
            self.args += ["--vdev", vdev]
        self.args += ["--", "-i", "--total-num-mbufs=%d" % mbufs,
                      *(extra_args or [])]
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None
        self._buf: list[str] = []
        self._text = ""
        self._lock = threading.Condition()
        self._reader: threading.Thread | None = None

    # ---- process --------------------------------------------------------
    def start(self, timeout: float = 60.0) -> "TestPmd":
        self.proc = subprocess.Popen(
            self.args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, bufsize=0,
            start_new_session=True)
        self._reader = threading.Thread(target=self._read, daemon=True,
                                        name="testpmd-reader")
        self._reader.start()
        self._wait_prompt(0, timeout)
        return self

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        log = open(self.log_path, "a") if self.log_path else None
        try:
            while True:
                chunk = os.read(self.proc.stdout.fileno(), 65536).decode(
                    "utf-8", "replace")
                if not chunk:
                    break
                if log:
                    log.write(chunk)
                    log.flush()
                with self._lock:
                    self._text += chunk
                    self._lock.notify_all()
        finally:
            if log:
                log.close()
            with self._lock:
                self._lock.notify_all()

    def _wait_prompt(self, start: int, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                idx = self._text.find(PROMPT, start)
                if idx >= 0:
                    return self._text[start:idx]
                if self.proc is None or self.proc.poll() is not None:
                    raise TestPmdError("testpmd exited: %s"
                                       % self._text[-2000:])
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TestPmdError("testpmd did not answer in %.0f s: %s"
                                       % (timeout, self._text[-2000:]))
                self._lock.wait(min(left, 0.5))

    def cmd(self, line: str, timeout: float = 30.0) -> str:
        """Run one command; returns its output."""
        if self.proc is None or self.proc.stdin is None:
            raise TestPmdError("testpmd is not running")
        with self._lock:
            mark = len(self._text)
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return self._wait_prompt(mark, timeout)

    def output(self) -> str:
        with self._lock:
            return self._text

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def stop(self, timeout: float = 20.0) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.write("quit\n")
                self.proc.stdin.flush()
                self.proc.wait(timeout)
            except (OSError, subprocess.TimeoutExpired, AssertionError):
                self.kill()
        self.proc = None

    def kill(self) -> None:
        """SIGKILL our process group (testpmd started it; nothing else)."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    # ---- commands -------------------------------------------------------
    def port_stats(self, port: int = 0) -> PortStats:
        text = self.cmd("show port stats %d" % port)
        values = {}
        for key, rx in _STATS_RE.items():
            m = rx.search(text)
            if m is None:
                raise TestPmdError("no %s in: %s" % (key, text))
            values[key] = int(m.group(1))
        return PortStats(**values)

    def link_up(self, port: int = 0) -> bool:
        return "Link status: up" in self.cmd("show port info %d" % port)

    def wait_links(self, ports: int = 1, timeout: float = 30.0) -> None:
        """Wait until ports 0..ports-1 are up; TestPmdError after
        ``timeout`` s naming those still down."""
        deadline = time.monotonic() + timeout
        while True:
            down = [p for p in range(ports) if not self.link_up(p)]
            if not down:
                return
            if time.monotonic() > deadline:
                raise TestPmdError("ports %s still down after %.0f s" % (
                    " ".join(map(str, down)), timeout))
            time.sleep(0.1)

    def forward(self, mode: str, *extra: str) -> None:
        """(Re)start forwarding in ``mode`` (io, rxonly, txonly, macswap)."""
        self.cmd("stop")
        self.cmd("set fwd %s" % mode)
        for line in extra:
            self.cmd(line)
        self.cmd("start")

    def __enter__(self) -> "TestPmd":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
