#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Soak: does anything grow when relays and VMs come and go for a while?

On hugepages, with traffic all along (relay 0: a net_null VF flooding a
connected dpdk-testpmd VM, which sends back as fast as it can):

1. ``--cycles`` (1000) times: add relay 1 (a net_null VF with 4 queue
   pairs), remove it; every 10th cycle a bond of two net_null members
   instead;
2. ``--vm-cycles`` (200) times: a dpdk-testpmd VM connects to relay 2
   (net_null VF), takes traffic, quits.

Free hugepages, open fds, the process's RSS and the DPDK heap in use are
read after a warm-up and at the end; the script exits 1 if any grew
beyond its noise allowance (RSS: 8 MB, for Python's own allocator).

Usage (root): .venv/bin/python bench/soak.py [--cycles N] [--vm-cycles N]
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time

from vio4wd_agent.conf.settings import online_cpus
from vio4wd_agent.demo import hugepages, testpmd
from vio4wd_agent.relay.engine import RelayEngine
from vio4wd_agent.relay.model import RelaySpec
from measure import start_on_hugepages  # bench/measure.py

MB = 1024 * 1024


@dataclasses.dataclass(frozen=True)
class Reading:
    free_hugepages: int
    fds: int
    rss_kb: int
    heap_bytes: int

    def show(self) -> str:
        return ("free hugepages %d, fds %d, RSS %.1f MB, DPDK heap in use "
                "%.2f MB" % (self.free_hugepages, self.fds,
                             self.rss_kb / 1024, self.heap_bytes / MB))


def read(engine: RelayEngine) -> Reading:
    with open(hugepages.FREE, encoding="ascii") as f:
        free = int(f.read())
    rss = 0
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    return Reading(free, len(os.listdir("/proc/self/fd")), rss,
                   engine.memory().alloc_bytes)


def wait(predicate, what: str, timeout: float = 60) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError("timed out waiting for %s" % what)
        time.sleep(0.01)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cycles", type=int, default=1000)
    ap.add_argument("--vm-cycles", type=int, default=200)
    args = ap.parse_args()

    cpus = online_cpus()
    worker, vm_cpu = cpus[-1], cpus[0]
    tmp = tempfile.mkdtemp(prefix="v4wsoak-")
    huge = hugepages.Hugepages(os.path.join(tmp, "huge"), 1024)
    engine = RelayEngine()
    vms: list[testpmd.TestPmd] = []
    huge_dir: str | None = None

    def vm(path: str, name: str) -> testpmd.TestPmd:
        t = testpmd.TestPmd(
            [testpmd.virtio_user_vdev(path)],
            lcores="0@%d,1@%d" % (vm_cpu, vm_cpu), file_prefix=name,
            hugepage_dir=huge_dir, mbufs=8192,
            log_path=os.path.join(tmp, "testpmd.log"))
        vms.append(t)
        return t.start()

    try:
        huge_dir = start_on_hugepages(engine, huge, cpus[0], worker,
                                      "v4wsoak")
        if huge_dir is None:
            return 1

        # Traffic all along: relay 0 and its VM, both ways.
        engine.add_relay(RelaySpec(0, os.path.join(tmp, "r0.sock"),
                                   vf="net_null100"))
        load = vm(os.path.join(tmp, "r0.sock"), "v4wsoakload")
        wait(lambda: engine.relay(0).vm_connected, "the traffic VM")
        load.forward("macswap")
        engine.add_relay(RelaySpec(2, os.path.join(tmp, "r2.sock"),
                                   vf="net_null102"))

        one = RelaySpec(1, os.path.join(tmp, "r1.sock"), vf="net_null101",
                        vf_queues=4)
        bond = RelaySpec(1, os.path.join(tmp, "r1.sock"), vf="net_bonding1",
                         bond_members=("net_null103", "net_null104"))

        def relay_cycles(n: int) -> None:
            for i in range(n):
                engine.add_relay(bond if i % 10 == 9 else one)
                engine.remove_relay(1)

        def vm_cycles(n: int, base: int) -> None:
            for i in range(n):
                t = vm(os.path.join(tmp, "r2.sock"), "v4wsoak%d" % (base + i))
                wait(lambda: engine.relay(2).vm_connected, "VM %d" % i)
                t.forward("rxonly")
                wait(lambda: t.port_stats().rx_packets > 1000,
                     "traffic to VM %d" % i)
                t.stop()
                vms.remove(t)
                wait(lambda: not engine.relay(2).vm_connected,
                     "VM %d gone" % i)

        relay_cycles(10)                   # warm-up: lazily made state
        vm_cycles(2, 10000)
        start = read(engine)
        t0 = time.monotonic()
        relay_cycles(args.cycles)
        t1 = time.monotonic()
        vm_cycles(args.vm_cycles, 0)
        t2 = time.monotonic()
        end = read(engine)
        traffic = engine.relay(0)
        assert traffic.vm_connected and traffic.vf_to_vm.tx_pkts > 0

        print("relay add/remove cycles: %d in %.1f s (every 10th a bond)"
              % (args.cycles, t1 - t0))
        print("VM connect/disconnect cycles: %d in %.1f s"
              % (args.vm_cycles, t2 - t1))
        print("traffic relay 0 meanwhile: %d packets to the VM, %d from it"
              % (traffic.vf_to_vm.tx_pkts, traffic.vm_to_vf.rx_pkts))
        print("start: %s" % start.show())
        print("end:   %s" % end.show())
        grew = []
        if end.free_hugepages < start.free_hugepages:
            grew.append("hugepages held")
        if end.fds > start.fds:
            grew.append("fds")
        if end.heap_bytes > start.heap_bytes:
            grew.append("DPDK heap")
        if end.rss_kb > start.rss_kb + 8 * 1024:
            grew.append("RSS")
        print("growth: %s" % (", ".join(grew) or "none"))
        return 1 if grew else 0
    finally:
        for t in vms:
            t.stop()
        engine.shutdown()
        huge.teardown()


if __name__ == "__main__":
    sys.exit(main())
