# SPDX-License-Identifier: Apache-2.0
"""Namespaces left by killed runs are reaped; live runs' are not."""
from __future__ import annotations

import os
import subprocess

from vio4wd_agent.demo import netns


def names() -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True,
                         text=True, check=True).stdout
    return [line.split()[0] for line in out.splitlines() if line.split()]


def test_reap_stale_takes_only_dead_owners():
    dead = netns.NetNamespace("v4wreap-4194305").create()   # > pid_max
    live = netns.NetNamespace("v4wreap-%d" % os.getpid()).create()
    other = netns.NetNamespace("v4wreapx-4194305").create()
    try:
        assert netns.reap_stale("v4wreap") == ["v4wreap-4194305"]
        left = names()
        assert "v4wreap-4194305" not in left
        assert live.name in left and other.name in left
    finally:
        for ns in (dead, live, other):
            ns.delete()


def test_a_process_namespace_reaps_before_it_is_named():
    dead = netns.NetNamespace("v4wreap-4194305").create()
    try:
        ns = netns.NetNamespace.of_this_process("v4wreap")
        assert ns.name == "v4wreap-%d" % os.getpid()
        assert dead.name not in names()
    finally:
        dead.delete()
