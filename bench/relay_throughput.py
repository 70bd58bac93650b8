#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""64-byte throughput of the vio4wd relay vs dpdk-testpmd io forwarding.

Both forward between the same devices: ``net_null`` as the VF stand-in and
a dpdk-testpmd virtio-user "VM" on the vhost-user socket, with the
forwarding worker on the same CPU.  Each window starts fresh processes;
relay and testpmd windows alternate; the result is the median of the
paired ratios.

Throughput on these VMs is bimodal: the host moves the vCPUs, and the same
test runs in a fast or a slow mode (a cache-line hand-off between the two
CPUs takes ~55 ns or ~250 ns) that lasts seconds.  So every window is
bracketed by a ping-pong probe (bench/pingpong.c) while the CPUs are idle;
a pair counts as fast-mode when all four of its probes are fast, and the
result is the median of the fast-mode pairs' ratios (of all pairs, said
so, when fewer than three pairs were fast).  A window's rate is the median
of its 0.25 s samples.

    VF->VM: net_null floods, the VM (rxonly) counts what it receives.
    VM->VF: the VM (txonly) sends; net_null (no-rx=1) takes and frees.
            A txonly VM counts only what the forwarder took off its ring.

Usage (root): .venv/bin/python bench/relay_throughput.py [--rounds N]
The last line reads ``relay/testpmd VF->VM=x.xx VM->VF=y.yy``.
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

from vio4wd_agent.conf.settings import online_cpus
from vio4wd_agent.demo import hugepages, testpmd

AGENT = os.path.join(os.path.dirname(sys.executable), "vio4wd-agent")


def wait_path(path: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise RuntimeError("%s did not appear" % path)
        time.sleep(0.02)


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        cpus = online_cpus()
        self.main, self.worker = cpus[0], cpus[-1]
        self.vm_cpu = cpus[-2] if len(cpus) > 2 else cpus[0]
        self.tmp = tempfile.mkdtemp(prefix="v4wbench-")
        self.huge = hugepages.Hugepages(os.path.join(self.tmp, "huge"), 1024)
        self.huge_dir = self.huge.setup()
        if self.huge_dir is None:
            print("no hugepages (%s): using --no-huge" % self.huge.reason)
        self.seq = 0
        self.pingpong = os.path.join(self.tmp, "pingpong")
        subprocess.run(["gcc", "-O2", "-pthread", "-o", self.pingpong,
                        os.path.join(os.path.dirname(__file__),
                                     "pingpong.c")], check=True)

    def close(self) -> None:
        self.huge.teardown()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def _socket(self) -> str:
        self.seq += 1
        d = os.path.join(self.tmp, "s%d" % self.seq)
        os.makedirs(d)
        return d

    def probe(self) -> float:
        out = subprocess.run([self.pingpong, str(self.main),
                              str(self.worker), "100000"],
                             capture_output=True, text=True, check=True)
        return float(out.stdout)

    def _vm_rate(self, sock: str, direction: str) -> float:
        """Start the VM on ``sock``; packets/s it receives or sends."""
        # Both VM lcores on the VM's CPU: its prompt thread must not steal
        # from the forwarder under test when we read the counters.
        vm = testpmd.TestPmd(
            [testpmd.virtio_user_vdev(sock)],
            lcores="0@%d,1@%d" % (self.vm_cpu, self.vm_cpu),
            file_prefix="v4wbvm%d" % self.seq, hugepage_dir=self.huge_dir,
            mbufs=16384)
        vm.start()
        try:
            deadline = time.monotonic() + 15
            while not vm.link_up():
                if time.monotonic() > deadline:
                    raise RuntimeError("VM link did not come up")
                time.sleep(0.1)
            if direction == "vf2vm":
                vm.forward("rxonly")
            else:
                vm.forward("txonly", "set txpkts 64")
            time.sleep(self.args.warmup)
            key = "rx_packets" if direction == "vf2vm" else "tx_packets"
            samples = []
            t0, s0 = time.monotonic(), getattr(vm.port_stats(), key)
            end = t0 + self.args.window
            while t0 < end:
                time.sleep(0.25)
                t1, s1 = time.monotonic(), getattr(vm.port_stats(), key)
                samples.append((s1 - s0) / (t1 - t0))
                t0, s0 = t1, s1
            return statistics.median(samples)
        finally:
            vm.stop()

    def null_vdev(self, direction: str) -> str:
        return "net_null0" + (",no-rx=1" if direction == "vm2vf" else "")

    def relay_window(self, direction: str) -> float:
        d = self._socket()
        conf = os.path.join(d, "agent.conf")
        with open(conf, "w") as f:
            f.write("[dataplane]\nworker_cpus = %d\nmain_lcore = %d\n"
                    "hugepage_dir = %s\nfile_prefix = v4wbench%d\n"
                    "expected_relays = 1\nlog_level = 3\n"
                    "[vhost]\nsocket_dir = %s\n"
                    "[relay]\nstatic_vfs = %s=0\n[agent]\npid_file =\n"
                    % (self.worker, self.main, self.huge_dir or "",
                       self.seq, d, self.null_vdev(direction)))
        agent = subprocess.Popen([AGENT, "--config-file", conf],
                                 stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
        try:
            sock = os.path.join(d, "virtio-forwarder0.sock")
            wait_path(sock)
            return self._vm_rate(sock, direction)
        finally:
            agent.send_signal(signal.SIGTERM)
            agent.wait(30)

    def testpmd_window(self, direction: str) -> float:
        d = self._socket()
        sock = os.path.join(d, "vhost0.sock")
        fwd = testpmd.TestPmd(
            [self.null_vdev(direction),
             "net_vhost0,iface=%s,queues=1" % sock],
            lcores="0@%d,1@%d" % (self.main, self.worker),
            file_prefix="v4wbfwd%d" % self.seq, hugepage_dir=self.huge_dir,
            mbufs=16384, extra_args=["--forward-mode=io"])
        fwd.start()
        try:
            fwd.cmd("start")
            return self._vm_rate(sock, direction)
        finally:
            fwd.stop()


FAST_NS = 100.0


def summarize(name: str, pairs: list[tuple[float, bool]]) -> str:
    fast = [r for r, is_fast in pairs if is_fast]
    if len(fast) >= 3:
        return "%s=%.2f" % (name, statistics.median(fast))
    return "%s=%.2f" % (name, statistics.median(r for r, _ in pairs))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--window", type=float, default=2.0)
    parser.add_argument("--warmup", type=float, default=0.5)
    args = parser.parse_args()
    if os.geteuid() != 0:
        parser.error("run as root")
    bench = Bench(args)
    pairs: dict[str, list[tuple[float, bool]]] = {"vf2vm": [], "vm2vf": []}
    try:
        for rnd in range(args.rounds):
            for direction in ("vf2vm", "vm2vf"):
                order = ["relay", "testpmd"] if rnd % 2 == 0 else \
                    ["testpmd", "relay"]
                rates, probes = {}, []
                for who in order:
                    window = bench.relay_window if who == "relay" else \
                        bench.testpmd_window
                    probes.append(bench.probe())
                    rates[who] = window(direction)
                    probes.append(bench.probe())
                ratio = rates["relay"] / rates["testpmd"]
                fast = all(p < FAST_NS for p in probes)
                pairs[direction].append((ratio, fast))
                print("round %d %s: relay %.2f Mpps, testpmd io %.2f Mpps, "
                      "ratio %.3f, probes %s ns%s" % (
                          rnd + 1, direction, rates["relay"] / 1e6,
                          rates["testpmd"] / 1e6, ratio,
                          "/".join("%.0f" % p for p in probes),
                          " (fast mode)" if fast else ""), flush=True)
    finally:
        bench.close()
    for direction, name in (("vf2vm", "VF->VM"), ("vm2vf", "VM->VF")):
        n_fast = sum(1 for _, f in pairs[direction] if f)
        print("%s: %d of %d pairs in fast mode%s" % (
            name, n_fast, len(pairs[direction]),
            "" if n_fast >= 3 else "; median over all pairs"))
    print("relay/testpmd %s %s" % (summarize("VF->VM", pairs["vf2vm"]),
                                   summarize("VM->VF", pairs["vm2vf"])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
