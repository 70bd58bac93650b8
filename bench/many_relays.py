#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Many relays on one worker: aggregate rate, fairness, and what idle
relays cost a busy one.

Each relay: a VF stand-in ``net_null,size=64`` (VF->VM traffic as fast as
the relay takes it) and its own ``net_virtio_user`` port of one
dpdk-testpmd "VM" process in rxonly mode (the VM counts what each relay
delivered).  The relays are the vhost-user clients (testpmd serves the
sockets).  All relays share the agent's one worker (the last CPU); the VM
and the agent's main lcore share the other CPU: on this 2-CPU machine that
is as far as it goes (a second worker would take the VM's CPU).

Measured per configuration, over ``--rounds`` fresh agent+VM pairs:

- aggregate Mpps over all busy relays, and its ratio to one relay alone;
- the min/max per-relay share (min rate / max rate over the busy relays);
- 32 relays of which 31 idle (``no-rx=1`` VF, VM sends nothing) and one
  busy: the busy relay's rate over one relay alone.

Usage (root): .venv/bin/python bench/many_relays.py [--rounds N]
    [--counts 1,8,16,32] [--window S]
"""
from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import time

from vio4wd_agent.demo import testpmd

from measure import STANDALONE, Machine, start_agent, stop_agent  # bench/

RX_RE = re.compile(r"RX-packets:\s+(\d+)")


class Bench(Machine):
    def __init__(self, args: argparse.Namespace) -> None:
        super().__init__("v4wmany-", 1536)
        self.args = args
        self.seq = 0

    def run(self, busy: int, idle: int) -> list[float]:
        """Per busy relay, packets/s the VM received from it."""
        self.seq += 1
        d = os.path.join(self.tmp, "r%d" % self.seq)
        os.makedirs(d)
        n = busy + idle
        vfs = ["net_null%d,size=64%s=%d" % (i, "" if i < busy else
                                            ",no-rx=1", i)
               for i in range(n)]
        conf = os.path.join(d, "agent.conf")
        with open(conf, "w") as f:
            f.write("[dataplane]\nworker_cpus = %d\nmain_lcore = %d\n"
                    "hugepage_dir = %s\nfile_prefix = v4wmany%d\n"
                    "expected_relays = %d\nlog_level = 3\n"
                    "[vhost]\nsocket_dir = %s\nclient_mode = true\n"
                    "[relay]\n%s\n%s"
                    % (self.worker, self.main, self.huge_dir or "", self.seq,
                       n, d, "\n".join("static_vfs = %s" % v for v in vfs),
                       STANDALONE))
        vdevs = [testpmd.virtio_user_vdev(
            os.path.join(d, "virtio-forwarder%d.sock" % i), server=True,
            index=i) for i in range(n)]
        # The relays connect (and reconnect) to the VM's sockets; the VM
        # waits for them at start.
        agent = start_agent(conf)
        vm = testpmd.TestPmd(
            vdevs, lcores="0@%d,1@%d" % (self.vm_cpu, self.vm_cpu),
            file_prefix="v4wmanyvm%d" % self.seq, hugepage_dir=self.huge_dir,
            mbufs=max(16384, 2048 * n), extra_args=["--nb-cores=1"])
        try:
            vm.start(timeout=120)
            deadline = time.monotonic() + 90
            while not all(vm.link_up(i) for i in range(n)):
                if time.monotonic() > deadline:
                    raise RuntimeError("not every VM port came up")
                time.sleep(0.2)
            vm.forward("rxonly")
            time.sleep(self.args.warmup)
            before = [self._rx(vm, i) for i in range(busy)]
            t0 = time.monotonic()
            time.sleep(self.args.window)
            after = [self._rx(vm, i) for i in range(busy)]
            took = time.monotonic() - t0
            return [(a - b) / took for a, b in zip(after, before)]
        finally:
            stop_agent(agent)
            vm.stop()

    @staticmethod
    def _rx(vm: testpmd.TestPmd, port: int) -> int:
        m = RX_RE.search(vm.cmd("show port stats %d" % port))
        if m is None:
            raise RuntimeError("no RX-packets for port %d" % port)
        return int(m.group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--window", type=float, default=3.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--counts", default="1,8,16,32")
    args = parser.parse_args()
    if os.geteuid() != 0:
        parser.error("run as root")
    counts = [int(c) for c in args.counts.split(",")]
    bench = Bench(args)
    agg: dict[int, list[float]] = {c: [] for c in counts}
    share: dict[int, list[float]] = {c: [] for c in counts}
    lone: list[float] = []
    try:
        for rnd in range(args.rounds):
            for c in counts:
                rates = bench.run(c, 0)
                agg[c].append(sum(rates))
                share[c].append(min(rates) / max(rates))
                print("round %d: %2d busy relays: %.2f Mpps in all, per "
                      "relay %.3f-%.3f Mpps" % (
                          rnd + 1, c, sum(rates) / 1e6, min(rates) / 1e6,
                          max(rates) / 1e6), flush=True)
            [rate] = bench.run(1, 31)
            lone.append(rate)
            print("round %d: 1 busy + 31 idle relays: busy one %.2f Mpps"
                  % (rnd + 1, rate / 1e6), flush=True)
    finally:
        bench.close()
    print()
    one = statistics.median(agg[counts[0]]) if counts[0] == 1 else None
    for c in counts:
        line = "%2d relays on one worker: %.2f Mpps in all" % (
            c, statistics.median(agg[c]) / 1e6)
        if one:
            line += " (%.2fx one relay)" % (statistics.median(agg[c]) / one)
        line += ", min/max per-relay share %.2f" % statistics.median(
            share[c])
        print(line)
    if one:
        print("1 busy + 31 idle relays: busy one at %.2fx one relay alone"
              % (statistics.median(lone) / one))
    return 0


if __name__ == "__main__":
    sys.exit(main())
