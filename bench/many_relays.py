#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Many relays on one worker: aggregate rate, fairness, and what idle
relays cost a busy one.

Each relay: a VF stand-in ``net_null,size=64`` (VF->VM traffic as fast as
the relay takes it) and its own ``net_virtio_user`` port of one
dpdk-testpmd "VM" process in rxonly mode (the VM counts what each relay
delivered).  The relays are the vhost-user clients (testpmd serves the
sockets).  All relays of an agent share its one worker (the last CPU);
the VM and the agent's main lcore share the other CPU: on this 2-CPU
machine that is as far as it goes (a second worker would take the VM's
CPU).

Every configuration is compared with one relay alone, interleaved as in
``relay_throughput.py``: both agents and their VMs run at once and take
turns under SIGSTOP, ``--slice`` s each after ``--settle`` s, the order
swapped every cycle, so the two slices of a cycle see the same speed mode
of the host's CPUs.  Per configuration, over ``--rounds`` fresh starts of
``--cycles`` cycles:

- aggregate Mpps over all busy relays, and its ratio to one relay alone
  (median over cycles of the per-cycle ratios);
- the min/max per-relay share (min rate / max rate over the busy relays);
- 32 relays of which 31 idle (``no-rx=1`` VF, VM sends nothing) and one
  busy: the busy relay's rate over one relay alone.

Usage (root): .venv/bin/python bench/many_relays.py [--rounds N]
    [--counts 8,16,32] [--cycles N] [--slice S]
"""
from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import sys
import time

from vio4wd_agent.demo import testpmd

from measure import (STANDALONE, Machine, signal_all,  # bench/
                     start_agent, stop_agent, take_turns)

PORT_RE = re.compile(r"NIC statistics for port (\d+)\s.*?RX-packets:\s+(\d+)",
                     re.S)


class Setup:
    """An agent with ``busy`` + ``idle`` relays on its one worker and the
    VM whose ports they serve, forwarding."""

    def __init__(self, bench: "Bench", busy: int, idle: int) -> None:
        bench.seq += 1
        self.name = "%d busy%s" % (busy, " + %d idle" % idle if idle else "")
        self.busy = busy
        d = os.path.join(bench.tmp, "r%d" % bench.seq)
        os.makedirs(d)
        n = busy + idle
        vfs = ["net_null%d,size=64%s" % (i, "" if i < busy else ",no-rx=1")
               for i in range(n)]
        conf = os.path.join(d, "agent.conf")
        with open(conf, "w") as f:
            f.write("[dataplane]\nworker_cpus = %d\nmain_lcore = %d\n"
                    "hugepage_dir = %s\nfile_prefix = v4wmany%d\n"
                    "expected_relays = %d\nlog_level = 3\n"
                    "[vhost]\nsocket_dir = %s\nclient_mode = true\n"
                    "[relay]\n%s\n%s"
                    % (bench.worker, bench.main, bench.huge_dir or "",
                       bench.seq, n, d,
                       "\n".join("static_vfs = %s=%d" % (v, i)
                                 for i, v in enumerate(vfs)), STANDALONE))
        # The relays connect (and reconnect) to the VMs' sockets; a VM
        # waits for them at start.  The idle relays' ports are on a VM of
        # their own that does not forward: the busy relays' VM polls only
        # theirs, so what the idle ones cost is the worker's alone.
        self.agent = start_agent(conf)
        self.vm = self.idle_vm = None
        try:
            self.vm = self._vm(bench, d, range(busy), "v4wmanyvm%d")
            self.vm.forward("rxonly")
            if idle:
                self.idle_vm = self._vm(bench, d, range(busy, n),
                                        "v4wmanyidle%d")
        except BaseException:
            self.close()
            raise

    @staticmethod
    def _vm(bench: "Bench", d: str, relays: range,
            prefix: str) -> testpmd.TestPmd:
        vdevs = [testpmd.virtio_user_vdev(
            os.path.join(d, "virtio-forwarder%d.sock" % r), server=True,
            index=i) for i, r in enumerate(relays)]
        vm = testpmd.TestPmd(
            vdevs, lcores="0@%d,1@%d" % (bench.vm_cpu, bench.vm_cpu),
            file_prefix=prefix % bench.seq, hugepage_dir=bench.huge_dir,
            mbufs=max(16384, 2048 * len(vdevs)), extra_args=["--nb-cores=1"])
        try:
            vm.start(timeout=120)
            vm.wait_links(len(vdevs), timeout=90)
        except BaseException:
            vm.stop()
            raise
        return vm

    def received(self) -> list[int]:
        """What each busy relay delivered so far, in one VM command."""
        assert self.vm is not None
        got = {int(p): int(c) for p, c in
               PORT_RE.findall(self.vm.cmd("show port stats all"))}
        return [got[i] for i in range(self.busy)]

    def signal(self, sig: int) -> None:
        signal_all([self.agent.pid] + [vm.pid for vm in (self.vm,
                                                         self.idle_vm)
                                       if vm is not None], sig)

    def close(self) -> None:
        """Resumed if it was stopped, then closed."""
        self.signal(signal.SIGCONT)
        try:
            for vm in (self.vm, self.idle_vm):
                if vm is not None:
                    vm.stop()
        finally:
            stop_agent(self.agent)


class Bench(Machine):
    def __init__(self, args: argparse.Namespace) -> None:
        super().__init__("v4wmany-", 1536)
        self.args = args
        self.seq = 0

    def interleave(self, setups: list[Setup]) -> list[list[list[float]]]:
        """Per cycle, per setup, the packets/s of each busy relay, the
        setups taking turns (measure.take_turns)."""
        def measure(s: Setup) -> list[float]:
            t0, c0 = time.monotonic(), s.received()
            time.sleep(self.args.slice)
            t1, c1 = time.monotonic(), s.received()
            return [(b - a) / (t1 - t0) for a, b in zip(c0, c1)]
        return list(take_turns(setups, self.args.cycles, self.args.settle,
                               measure))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--cycles", type=int, default=10)
    parser.add_argument("--slice", type=float, default=0.5)
    parser.add_argument("--settle", type=float, default=0.2)
    parser.add_argument("--counts", default="8,16,32")
    args = parser.parse_args()
    if os.geteuid() != 0:
        parser.error("run as root")
    configs = [(int(c), 0) for c in args.counts.split(",")] + [(1, 31)]
    bench = Bench(args)
    ratio: dict[tuple[int, int], list[float]] = {c: [] for c in configs}
    share: dict[tuple[int, int], list[float]] = {c: [] for c in configs}
    agg: dict[tuple[int, int], list[float]] = {c: [] for c in configs}
    alone: list[float] = []
    try:
        for rnd in range(args.rounds):
            for busy, idle in configs:
                lone = Setup(bench, 1, 0)
                try:
                    many = Setup(bench, busy, idle)
                    try:
                        cycles = bench.interleave([lone, many])
                    finally:
                        many.close()
                finally:
                    lone.close()
                for one, rates in cycles:
                    alone.append(one[0])
                    agg[(busy, idle)].append(sum(rates))
                    ratio[(busy, idle)].append(sum(rates) / one[0])
                    share[(busy, idle)].append(min(rates) / max(rates))
                print("round %d: %s: %.2f Mpps in all, %.2fx one relay "
                      "alone (median of %d cycles), per relay %.3f-%.3f "
                      "Mpps in the last" % (
                          rnd + 1, many.name,
                          statistics.median(sum(r) for _, r in cycles) / 1e6,
                          statistics.median(sum(r) / o[0]
                                            for o, r in cycles),
                          len(cycles), min(cycles[-1][1]) / 1e6,
                          max(cycles[-1][1]) / 1e6), flush=True)
    finally:
        bench.close()
    print()
    print("one relay alone: %.2f Mpps (median of %d slices)"
          % (statistics.median(alone) / 1e6, len(alone)))
    for busy, idle in configs:
        c = (busy, idle)
        if idle:
            print("1 busy + %d idle relays: busy one at %.2fx one relay "
                  "alone (%.2f Mpps; %d cycles)" % (
                      idle, statistics.median(ratio[c]),
                      statistics.median(agg[c]) / 1e6, len(ratio[c])))
        else:
            print("%2d relays on one worker: %.2f Mpps in all (%.2fx one "
                  "relay alone), min/max per-relay share %.2f; %d cycles"
                  % (busy, statistics.median(agg[c]) / 1e6,
                     statistics.median(ratio[c]),
                     statistics.median(share[c]), len(ratio[c])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
