# SPDX-License-Identifier: Apache-2.0
"""Network namespaces and veth pairs for VF stand-ins (demo, tests, bench).

Everything is created with iproute2 and removed by the same object; the
caller's own namespaces are never touched.
"""
from __future__ import annotations

import ctypes
import json
import os
import subprocess

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def ip(*args: str, netns: str | None = None) -> None:
    cmd = ["ip"] + (["-n", netns] if netns else []) + list(args)
    subprocess.run(cmd, check=True, capture_output=True, text=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, "setns: %s" % os.strerror(err))


def reap_stale(prefix: str) -> list[str]:
    """Delete namespaces named ``<prefix>-<pid>`` whose process is gone (a
    run that was killed before it could clean up).  Returns their names."""
    out = subprocess.run(["ip", "netns", "list"], capture_output=True,
                         text=True).stdout
    gone = []
    for line in out.splitlines():
        name = line.split()[0] if line.split() else ""
        head, _, pid = name.rpartition("-")
        if head != prefix or not pid.isdigit() or \
                os.path.exists("/proc/%s" % pid):
            continue
        subprocess.run(["ip", "netns", "delete", name], capture_output=True)
        gone.append(name)
    return gone


class NetNamespace:
    """A namespace we create; ``enter()`` moves the calling thread into it.

    Threads and processes started afterwards inherit it, which is how a
    DPDK af_packet port and the kernel end of its veth end up together,
    away from the host's interfaces.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._home: int | None = None

    @classmethod
    def of_this_process(cls, prefix: str) -> "NetNamespace":
        """``<prefix>-<pid>``, after deleting the ones of that prefix whose
        process died before it could (a killed run)."""
        reap_stale(prefix)
        return cls("%s-%d" % (prefix, os.getpid()))

    def create(self) -> "NetNamespace":
        ip("netns", "add", self.name)
        ip("link", "set", "lo", "up", netns=self.name)
        # Interfaces made here later (taps DPDK creates) send no IPv6
        # chatter either: counted frames are only the ones we send.
        for key in ("all", "default"):
            subprocess.run(["ip", "netns", "exec", self.name, "sysctl",
                            "-qw", "net.ipv6.conf.%s.disable_ipv6=1" % key],
                           check=True, capture_output=True)
        return self

    def enter(self) -> None:
        self._home = os.open("/proc/self/ns/net", os.O_RDONLY)
        fd = os.open("/var/run/netns/%s" % self.name, os.O_RDONLY)
        try:
            _setns(fd)
        finally:
            os.close(fd)

    def leave(self) -> None:
        if self._home is not None:
            _setns(self._home)
            os.close(self._home)
            self._home = None

    def delete(self) -> None:
        self.leave()
        subprocess.run(["ip", "netns", "delete", self.name],
                       capture_output=True)

    def add_veth(self, name: str, peer: str) -> None:
        """A veth pair inside this namespace, both ends up, no IPv6 noise."""
        ip("link", "add", name, "type", "veth", "peer", "name", peer,
           netns=self.name)
        for dev in (name, peer):
            subprocess.run(["ip", "netns", "exec", self.name, "sysctl", "-qw",
                            "net.ipv6.conf.%s.disable_ipv6=1" % dev],
                           check=True, capture_output=True)
            ip("link", "set", dev, "up", netns=self.name)

    def link_set(self, dev: str, state: str) -> None:
        ip("link", "set", dev, state, netns=self.name)

    def counters(self, dev: str) -> dict[str, int]:
        """Kernel counters of ``dev`` (rx_packets, tx_packets, ...)."""
        out = subprocess.run(["ip", "-n", self.name, "-j", "-s", "link", "show",
                              "dev", dev], check=True, capture_output=True,
                             text=True).stdout
        stats = json.loads(out)[0]["stats64"]
        return {"rx_packets": stats["rx"]["packets"],
                "rx_bytes": stats["rx"]["bytes"],
                "tx_packets": stats["tx"]["packets"],
                "tx_bytes": stats["tx"]["bytes"]}
