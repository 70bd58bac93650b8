# SPDX-License-Identifier: Apache-2.0
"""An idle worker naps instead of spinning, and still forwards at once
when traffic comes back."""
from __future__ import annotations

import os
import time

from tests.functional import util
from tests.functional.conftest import (KERNEL_MAC, VM_MAC, connected,
                                       relay_spec)


def _thread_cpu_seconds(name: str) -> float:
    """CPU time (user + system) of this process's thread called ``name``."""
    tick = os.sysconf("SC_CLK_TCK")
    for tid in os.listdir("/proc/self/task"):
        base = "/proc/self/task/%s/" % tid
        with open(base + "comm") as f:
            if f.read().strip() != name:
                continue
        with open(base + "stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / tick
    raise AssertionError("no thread named %s" % name)


def test_idle_worker_naps_and_wakes(engine, sockdir, veth, vm_factory,
                                    kernel_port, cpus):
    dpdk_if, kernel_if = veth()
    spec = relay_spec(90, sockdir, "net_af_packet90,iface=%s" % dpdk_if)
    engine.add_relay(spec)
    vm = vm_factory(spec.vhost_path)
    util.wait_for(connected(engine, 90), what="VM connected")
    vm.forward("rxonly")
    worker = "rte-worker-%d" % cpus["worker"]

    # A relay with a VM and a VF, and nothing to forward, for 5 s.
    w0 = engine.worker_stats()[0]
    c0, t0 = _thread_cpu_seconds(worker), time.monotonic()
    time.sleep(5)
    c1, t1 = _thread_cpu_seconds(worker), time.monotonic()
    w1 = engine.worker_stats()[0]
    share = (c1 - c0) / (t1 - t0)
    assert share < 0.10, "idle worker used %.0f%% of a CPU" % (share * 100)
    # (A loaded machine only lowers the share: a worker waiting for a CPU
    # burns none.)
    assert w1.naps > w0.naps and w1.busy_cycles == w0.busy_cycles

    # The first frames after the idle spell go straight through.
    port = kernel_port(kernel_if)
    port.send_frames(VM_MAC, KERNEL_MAC, 10)
    # How fast is bench/idle_wakeup.py's to measure, not a test's.
    util.wait_for(lambda: vm.port_stats().rx_packets == 10,
                  what="frames after idle")
    assert engine.relay(90).vf_to_vm.dropped_pkts == 0
    assert engine.worker_stats()[0].busy_cycles > w1.busy_cycles
