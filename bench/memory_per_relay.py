#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Hugepage memory per relay, and how many relays one process holds.

Starts the data plane on hugepages, adds relays (net_null VF stand-ins, no
VM) and reads the DPDK heap in use before and after: the difference per
relay is what a relay costs (mempool, queues, relay state).  Done at MTU
1500 and with jumbo frames, and for socket-only relays (no VF).

Usage (root): .venv/bin/python bench/memory_per_relay.py
"""
from __future__ import annotations

import os
import sys
import tempfile

from vio4wd_agent.conf.settings import online_cpus
from vio4wd_agent.demo import hugepages
from vio4wd_agent.relay.engine import RelayEngine
from vio4wd_agent.relay.model import RelaySpec
from measure import start_on_hugepages  # bench/measure.py

MB = 1024 * 1024


def measure(engine: RelayEngine, tmp: str, count: int, **kw: object) -> float:
    before = engine.memory().alloc_bytes
    for i in range(count):
        engine.add_relay(RelaySpec(i, os.path.join(tmp, "%d.sock" % i),
                                   vf="net_null%d" % i,
                                   **kw))  # type: ignore[arg-type]
    used = engine.memory().alloc_bytes - before
    for i in range(count):
        engine.remove_relay(i)
    return used / count / MB


def main() -> int:
    cpus = online_cpus()
    tmp = tempfile.mkdtemp(prefix="v4wmem-")
    huge = hugepages.Hugepages(os.path.join(tmp, "huge"), 1024)
    engine = RelayEngine()
    try:
        if start_on_hugepages(engine, huge, cpus[0], cpus[-1],
                              "v4wmem") is None:
            return 1
        base = engine.memory().alloc_bytes / MB
        ports = engine.limits().max_ethports
        mtu = measure(engine, tmp, ports)
        jumbo = measure(engine, tmp, 8, jumbo=True)
        only = 256
        before = engine.memory().alloc_bytes
        for i in range(only):
            engine.add_relay(RelaySpec(i, os.path.join(tmp, "s%d.sock" % i)))
        sock = (engine.memory().alloc_bytes - before) / only / MB
        for i in range(only):
            engine.remove_relay(i)
        print("data plane base: %.1f MB of hugepage memory" % base)
        print("per relay, MTU 1500: %.2f MB" % mtu)
        print("per relay, jumbo (9000): %.2f MB" % jumbo)
        print("per socket-only relay (no VF): %.2f MB" % sock)
        print("relays per process: %d with a VF (RTE_MAX_ETHPORTS of this "
              "DPDK build; a bond takes one port per member plus one), %d "
              "in all (RTE_MAX_VHOST_DEVICE)" % (
                  ports, engine.limits().max_relays))
        print("MB/relay=%.2f jumbo_MB/relay=%.2f" % (mtu, jumbo))
    finally:
        engine.shutdown()
        huge.teardown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
