# SPDX-License-Identifier: Apache-2.0
"""The demo: a real relay with live counters, no hardware needed.

relay 0 joins a DPDK af_packet port on a veth (in a namespace the demo
creates) to a vhost-user socket; a dpdk-testpmd virtio-user "VM" on that
socket swaps MACs and sends every frame back.  The kernel end of the veth
sends frames and counts what returns, so both directions carry traffic.
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from typing import TextIO

from oslo_config import cfg

from vio4wd_agent import conf as vconf
from vio4wd_agent.agent import Agent
from vio4wd_agent.conf import settings as settings_mod
from vio4wd_agent.demo import hugepages, netns, rawport, testpmd
from vio4wd_agent.relay.model import RelayState

VM_MAC = "02:76:34:77:64:01"
PEER_MAC = "02:76:34:77:64:02"
VF_IF = "v4wvf0"
PEER_IF = "v4wpeer0"


class Traffic:
    """Kernel side: send frames at ``rate`` per second, count returns."""

    def __init__(self, ifname: str, rate: int) -> None:
        self.port = rawport.RawPort(ifname)
        self.rate = rate
        self.sent = 0
        self.received = 0
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._send, daemon=True),
                         threading.Thread(target=self._recv, daemon=True)]

    def start(self) -> None:
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(2)
        self.port.close()

    def _send(self) -> None:
        burst = max(1, self.rate // 100)
        next_t = time.monotonic()
        while not self._stop.is_set():
            for _ in range(burst):
                self.port.send(rawport.frame(VM_MAC, PEER_MAC, self.sent))
                self.sent += 1
            next_t += burst / self.rate
            delay = next_t - time.monotonic()
            if delay > 0:
                time.sleep(delay)

    def _recv(self) -> None:
        while not self._stop.is_set():
            self.received += len(self.port.receive(0.2))


def _rate(now: int, before: int, dt: float) -> str:
    return _si((now - before) / dt)


def _si(value: float) -> str:
    for unit, scale in (("M", 1e6), ("k", 1e3)):
        if value >= scale:
            return "%.2f%s" % (value / scale, unit)
    return "%.0f" % value


class View:
    """One block of rates and counters per second."""

    HEADER = ("%-6s | %-28s | %-28s | %-15s" %
              ("time", "VF->VM  rx/s   tx/s   drop", "VM->VF  rx/s   tx/s   drop",
               "kernel sent/rcvd"))

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.prev: tuple[float, RelayState, int, int] | None = None
        self.lines = 0

    def show(self, t0: float, state: RelayState, traffic: Traffic) -> None:
        now = time.monotonic()
        if self.prev is not None:
            if self.lines % 20 == 0:
                self.out.write(self.HEADER + "\n")
            pt, ps, psent, precv = self.prev
            dt = now - pt
            a, pa = state.vf_to_vm, ps.vf_to_vm
            b, pb = state.vm_to_vf, ps.vm_to_vf
            self.out.write(
                "%5.0fs | %6s %6s %6s %6s | %6s %6s %6s %6s | %7s %7s\n" % (
                    now - t0,
                    "",
                    _rate(a.rx_pkts, pa.rx_pkts, dt),
                    _rate(a.tx_pkts, pa.tx_pkts, dt),
                    _rate(a.dropped_pkts, pa.dropped_pkts, dt),
                    "",
                    _rate(b.rx_pkts, pb.rx_pkts, dt),
                    _rate(b.tx_pkts, pb.tx_pkts, dt),
                    _rate(b.dropped_pkts, pb.dropped_pkts, dt),
                    _rate(traffic.sent, psent, dt),
                    _rate(traffic.received, precv, dt)))
            self.out.flush()
            self.lines += 1
        self.prev = (now, state, traffic.sent, traffic.received)


def summary(state: RelayState, traffic: Traffic, out: TextIO) -> None:
    a, b = state.vf_to_vm, state.vm_to_vf
    out.write(
        "\nrelay 0 totals (counters are monotonic, never reset):\n"
        "  VF->VM: received %d, sent %d, dropped %d (VM not connected %d, "
        "VM queue full %d)\n"
        "  VM->VF: received %d, sent %d, dropped %d (VF not ready %d, "
        "VF queue full %d)\n"
        "  kernel side: sent %d frames, got %d back\n" % (
            a.rx_pkts, a.tx_pkts, a.dropped_pkts, a.drop_noconn_pkts,
            a.drop_full_pkts, b.rx_pkts, b.tx_pkts, b.dropped_pkts,
            b.drop_noconn_pkts, b.drop_full_pkts, traffic.sent,
            traffic.received))


def demo_conf(workdir: str, huge_dir: str | None,
              worker: int, main_lcore: int) -> cfg.ConfigOpts:
    """The embedded default: one static relay on the veth stand-in."""
    conf = cfg.ConfigOpts()
    vconf.register_opts(conf)
    conf([], project="vio4wd-demo", default_config_files=[])
    overrides = {
        ("dataplane", "worker_cpus"): str(worker),
        ("dataplane", "main_lcore"): main_lcore,
        ("dataplane", "hugepage_dir"): huge_dir or "",
        ("dataplane", "file_prefix"): "vio4wd-demo-%d" % os.getpid(),
        ("dataplane", "expected_relays"): 1,
        ("dataplane", "log_level"): 4,
        ("vhost", "socket_dir"): os.path.join(workdir, "sockets"),
        ("relay", "static_vfs"): ["net_af_packet0,iface=%s=0" % VF_IF],
        ("agent", "pid_file"): "",
        ("agent", "state_dir"): "",
        ("metrics", "enabled"): False,
        ("libvirt", "enabled"): False,
    }
    for opt in ("port_control", "stats", "core_sched", "config"):
        overrides[("control", "zmq_%s_ep" % opt)] = "ipc://%s/%s" % (
            workdir, opt)
    for (group, opt), value in overrides.items():
        conf.set_override(opt, value, group=group)
    return conf


def run(duration: float, rate: int, out: TextIO) -> int:
    if os.geteuid() != 0:
        out.write("vio4wd-demo must run as root (DPDK, namespaces)\n")
        return 1
    cpus = settings_mod.online_cpus()
    if len(cpus) < 2:
        out.write("vio4wd-demo needs at least 2 CPUs\n")
        return 1
    main_lcore, worker = cpus[0], cpus[-1]
    vm_cpu = cpus[-2] if len(cpus) > 2 else cpus[0]
    workdir = tempfile.mkdtemp(prefix="vio4wd-demo-")
    huge = hugepages.Hugepages(os.path.join(workdir, "hugepages"), 512)
    ns = netns.NetNamespace.of_this_process("vio4wd-demo")
    agent = vm = traffic = None
    try:
        huge_dir = huge.setup()
        if huge_dir:
            out.write("hugepages: 512 x 2 MB reserved, mounted on %s\n"
                      % huge_dir)
        else:
            out.write("hugepages unavailable (%s): falling back to "
                      "--no-huge\n" % huge.reason)
        ns.create()
        ns.add_veth(VF_IF, PEER_IF)
        ns.enter()
        out.write("namespace %s: veth %s (relay's VF stand-in) <-> %s "
                  "(kernel side)\n" % (ns.name, VF_IF, PEER_IF))
        s = settings_mod.build(demo_conf(workdir, huge_dir, worker,
                                         main_lcore))
        agent = Agent(s)
        agent.start()
        state = agent.engine.relay(0)
        out.write("relay 0: %s <-> %s, worker CPU %s\n"
                  % (state.vf_name, state.vhost_path, state.vf_to_vm.cpu))
        vm = testpmd.TestPmd(
            [testpmd.virtio_user_vdev(state.vhost_path, mac=VM_MAC)],
            lcores="0@%d,1@%d" % (vm_cpu, vm_cpu),
            file_prefix="vio4wd-demo-vm-%d" % os.getpid(),
            hugepage_dir=huge_dir,
            extra_args=["--rxd=1024", "--txd=1024"],
            log_path=os.path.join(workdir, "testpmd.log")).start()
        vm.forward("macswap")
        out.write("VM: dpdk-testpmd (pid %s) on the socket, swapping MACs "
                  "and sending every frame back\n" % vm.pid)
        traffic = Traffic(PEER_IF, rate)
        traffic.start()
        out.write("kernel side: %d frames/s from %s\n\n" % (rate, PEER_IF))
        view = View(out)
        t0 = time.monotonic()
        while duration <= 0 or time.monotonic() - t0 < duration:
            view.show(t0, agent.engine.relay(0), traffic)
            time.sleep(1.0)
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        if traffic is not None:
            traffic.stop()
        if vm is not None:
            vm.stop()
        if agent is not None:
            try:
                if traffic is not None:
                    summary(agent.engine.relay(0), traffic, out)
            finally:
                agent.stop()
        ns.delete()
        huge.teardown()
        shutil.rmtree(workdir, ignore_errors=True)
        out.write("demo stopped; namespace, sockets and hugepages removed\n")


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="vio4wd-demo",
        description="Run relay 0 between a veth stand-in VF and a "
                    "dpdk-testpmd VM, with live counters.")
    parser.add_argument("--duration", type=float, default=30.0,
                        help="seconds to run; 0 runs until Ctrl-C "
                             "(default: %(default)s)")
    parser.add_argument("--rate", type=int, default=20000,
                        help="frames per second from the kernel side "
                             "(default: %(default)s)")
    args = parser.parse_args(argv)
    if args.rate <= 0:
        parser.error("--rate must be positive")
    # SIGTERM cleans up like Ctrl-C does.
    signal.signal(signal.SIGTERM, _interrupt)
    return run(args.duration, args.rate, sys.stdout)
