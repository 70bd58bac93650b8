#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""What an idle relay worker costs, and how fast it wakes.

A relay on a veth (af_packet VF stand-in) with a dpdk-testpmd VM that
bounces every frame (macswap).  Measures:

- the CPU share of the idle worker thread over 5 s (from /proc);
- round-trip time of one frame from the kernel side through relay, VM and
  relay back, after 50 ms of silence (the worker is deep in its naps) and
  warm (the next frame right after the previous came back).

The difference between the two is what the naps add to the first packet.

With ``--busy-neighbour`` a second relay shares the worker, its VF
stand-in (``net_null``, 64 B) sending as fast as the relay takes it and
the VM bouncing that back too: the worker never naps, and the measured
relay's directions, silent for 50 ms, are in their idle state (polled
every 32nd round).  Then the cold RTT is what that costs the first
packet; the worker's round time is printed beside it.

Usage (root): .venv/bin/python bench/idle_wakeup.py [--samples N]
    [--busy-neighbour]
"""
from __future__ import annotations

import argparse
import os
import select
import sys
import tempfile
import time

from vio4wd_agent.conf.settings import online_cpus
from vio4wd_agent.demo import hugepages, netns, rawport, testpmd
from vio4wd_agent.relay import eal
from vio4wd_agent.relay.engine import RelayEngine
from vio4wd_agent.relay.model import RelaySpec
from measure import percentile  # bench/measure.py

VM_MAC, PEER_MAC = "02:76:34:77:64:11", "02:76:34:77:64:12"


def thread_cpu(name: str) -> float:
    tick = os.sysconf("SC_CLK_TCK")
    for tid in os.listdir("/proc/self/task"):
        with open("/proc/self/task/%s/comm" % tid) as f:
            if f.read().strip() == name:
                with open("/proc/self/task/%s/stat" % tid) as g:
                    fields = g.read().rsplit(")", 1)[1].split()
                return (int(fields[11]) + int(fields[12])) / tick
    raise RuntimeError("no thread %s" % name)


def rtt(port: rawport.RawPort, seq: int) -> float:
    data = rawport.frame(VM_MAC, PEER_MAC, seq)
    t0 = time.perf_counter()
    port.send(data)
    while True:
        ready, _, _ = select.select([port.sock], [], [], 1.0)
        if not ready:
            raise RuntimeError("frame %d did not come back" % seq)
        frame, addr = port.sock.recvfrom(65535)
        if addr[2] != rawport.PACKET_OUTGOING and \
                rawport.frame_seq(frame) == seq:
            return time.perf_counter() - t0



def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--busy-neighbour", action="store_true",
                        help="a second relay keeps the worker busy")
    args = parser.parse_args()
    cpus = online_cpus()
    main_cpu, worker = cpus[0], cpus[-1]
    vm_cpu = cpus[-2] if len(cpus) > 2 else cpus[0]
    tmp = tempfile.mkdtemp(prefix="v4widle-")
    huge = hugepages.Hugepages(os.path.join(tmp, "huge"), 512)
    ns = netns.NetNamespace.of_this_process("v4widle").create()
    vm = None
    engine = RelayEngine()
    try:
        huge_dir = huge.setup()
        ns.add_veth("iv0", "iv1")
        ns.enter()
        engine.start(eal.build_eal_args(
            main_lcore=main_cpu, worker_cpus=[worker], file_prefix="v4widle",
            memory=eal.MemoryPlan(huge_dir, 256, "bench"), log_level=3))
        sock = os.path.join(tmp, "idle.sock")
        engine.add_relay(RelaySpec(0, sock, vf="net_af_packet0,iface=iv0"))
        vdevs = [testpmd.virtio_user_vdev(sock, mac=VM_MAC)]
        if args.busy_neighbour:
            busy_sock = os.path.join(tmp, "busy.sock")
            engine.add_relay(RelaySpec(1, busy_sock,
                                       vf="net_null0,size=64"))
            vdevs.append(testpmd.virtio_user_vdev(busy_sock, index=1))
        # Each port bounces what it receives (no pairing of ports).
        vm = testpmd.TestPmd(vdevs, lcores="0@%d,1@%d" % (vm_cpu, vm_cpu),
                             file_prefix="v4widlevm", hugepage_dir=huge_dir,
                             extra_args=["--port-topology=loop"]).start()
        deadline = time.monotonic() + 60
        while not all(engine.relay(i).vm_connected
                      for i in range(len(vdevs))):
            if time.monotonic() > deadline:
                raise RuntimeError("the VM did not connect in 60 s")
            time.sleep(0.05)
        vm.forward("macswap")
        port = rawport.RawPort("iv1")
        name = "rte-worker-%d" % worker

        time.sleep(1)
        c0, t0 = thread_cpu(name), time.monotonic()
        r0 = sum(w.rounds for w in engine.worker_stats())
        time.sleep(5)
        took = time.monotonic() - t0
        share = (thread_cpu(name) - c0) / took
        rounds = (sum(w.rounds for w in engine.worker_stats()) - r0) / took

        cold, warm = [], []
        for i in range(args.samples):
            time.sleep(0.05)
            cold.append(rtt(port, 2 * i))
            warm.append(rtt(port, 2 * i + 1))
        us = 1e6
        c50, c99, w50, w99 = (percentile(v, q) * us for v, q in (
            (cold, .5), (cold, .99), (warm, .5), (warm, .99)))
        if args.busy_neighbour:
            print("worker busy with the neighbour: %.0f rounds/s (%.1f us "
                  "a round), %.1f%% of one CPU" % (
                      rounds, 1e6 / rounds, share * 100))
        else:
            print("idle worker CPU: %.1f%% of one CPU over 5 s"
                  % (share * 100))
        print("RTT after 50 ms idle: p50 %.0f us, p99 %.0f us, max %.0f us"
              % (c50, c99, max(cold) * us))
        print("RTT warm:             p50 %.0f us, p99 %.0f us, max %.0f us"
              % (w50, w99, max(warm) * us))
        print("wake-up cost (cold - warm p50): %.0f us" % (c50 - w50))
        # The round trip crosses the napping worker twice (VF->VM, then
        # VM->VF just after), so it bounds the first packet's delay.
        if not args.busy_neighbour:
            print("idle CPU=%.1f%% first_packet_rtt_p99_us=%.0f" % (
                share * 100, c99))
    finally:
        if vm is not None:
            vm.stop()
        engine.shutdown()
        ns.delete()
        huge.teardown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
