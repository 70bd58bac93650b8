#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Throughput of the vio4wd relay vs dpdk-testpmd io forwarding and
OVS-DPDK, forwarding between the same devices.

- VF stand-in: ``net_null0,size=S`` (VM->VF: ``no-rx=1`` as well, so the
  forwarder is not fed VF->VM traffic at the same time);
- VM: dpdk-testpmd with ``net_virtio_user0`` as the vhost-user server
  (every forwarder is the vhost-user client: the relay in client mode,
  testpmd's ``net_vhost0,client=1``, OVS's ``dpdkvhostuserclient``), in
  ``rxonly`` (VF->VM: counts what it receives) or ``txonly`` (VM->VF: a
  txonly VM counts only what the forwarder took off its ring);
- the forwarding core (relay worker, testpmd forwarding lcore, OVS PMD
  thread) on the last CPU, the VM on the other.

Method.  Every window starts fresh processes (hugepages for all of them
when the machine can give some), warms up, then samples the VM's counter
every 0.25 s; its rate is the median sample.  The forwarders take turns
within a round (rotating the order each round).  These VMs are bimodal:
the host moves the vCPUs, and a cache-line hand-off between the two CPUs
takes ~55 ns (fast mode) or ~250 ns (slow), for seconds at a time.  Every
window is bracketed by a ping-pong probe (bench/pingpong.c) while the CPUs
are idle: both probes fast or both slow tag the window with that mode,
anything else as mixed.  A pair of windows (relay and peer, same round)
is a same-mode pair when both carry the same tag, fast or slow; each
ratio printed is the median over the same-mode pairs (with the fast and
slow medians beside it), or over all pairs when fewer than three matched
(it says which).

Usage (root):
    .venv/bin/python bench/relay_throughput.py [--rounds 16]
        [--large-rounds 8] [--window 5] [--peers testpmd,ovs]
        [--sizes 64,1518] [--directions vf2vm,vm2vf]
The last line is always ``relay/testpmd VF->VM=x.xx VM->VF=y.yy`` (64 B).
"""
from __future__ import annotations

import argparse
import collections
import collections.abc
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
OVS_VSWITCHD = "/usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk"
FAST_NS = 100.0
DIRS = (("vf2vm", "VF->VM"), ("vm2vf", "VM->VF"))


def null_vdev(direction: str, size: int) -> str:
    return "net_null0,size=%d%s" % (size, ",no-rx=1" if direction == "vm2vf"
                                    else "")


class Host:
    """CPUs, hugepages, the VM and the probe shared by all forwarders."""

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
        self.pingpong = os.path.join(self.tmp, "pingpong")
        subprocess.run(["gcc", "-O2", "-pthread", "-o", self.pingpong,
                        os.path.join(os.path.dirname(__file__),
                                     "pingpong.c")], check=True)
        self.seq = 0
        self.last_switches: int | None = None

    def close(self) -> None:
        self.huge.teardown()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def window_dir(self) -> str:
        self.seq += 1
        path = os.path.join(self.tmp, "w%d" % self.seq)
        os.makedirs(path)
        return path

    def probe(self) -> float:
        out = subprocess.run([self.pingpong, str(self.main),
                              str(self.worker), "100000"],
                             capture_output=True, text=True, check=True)
        return float(out.stdout)

    def vm_rate(self, sock: str, direction: str, size: int,
                switches: "collections.abc.Callable[[], int] | None" = None
                ) -> float:
        """Start the VM (vhost-user server) on ``sock``: packets/s.
        ``switches``: reads the forwarder's voluntary context switches;
        those made during the window go to ``self.last_switches``."""
        vm = testpmd.TestPmd(
            [testpmd.virtio_user_vdev(sock, server=True)],
            lcores="0@%d,1@%d" % (self.vm_cpu, self.vm_cpu),
            file_prefix="v4wbvm%d" % self.seq, hugepage_dir=self.huge_dir,
            mbufs=16384)
        vm.start(timeout=90)
        try:
            deadline = time.monotonic() + 30
            while not vm.link_up():
                if time.monotonic() > deadline:
                    raise RuntimeError("VM link did not come up")
                time.sleep(0.1)
            if direction == "vf2vm":
                vm.forward("rxonly")
            else:
                vm.forward("txonly", "set txpkts %d" % size)
            time.sleep(self.args.warmup)
            key = "rx_packets" if direction == "vf2vm" else "tx_packets"
            samples = []
            sw0 = switches() if switches else 0
            t0, s0 = time.monotonic(), getattr(vm.port_stats(), key)
            end = t0 + self.args.window
            while t0 < end:
                time.sleep(0.25)
                t1, s1 = time.monotonic(), getattr(vm.port_stats(), key)
                samples.append((s1 - s0) / (t1 - t0))
                t0, s0 = t1, s1
            self.last_switches = (switches() - sw0) if switches else None
            return statistics.median(samples)
        finally:
            vm.stop()


def worker_switches(pid: int, cpu: int) -> int:
    """Voluntary context switches of the agent's worker thread on ``cpu``
    (a worker that naps makes them; one that polls without rest does
    not)."""
    name = "rte-worker-%d" % cpu
    for tid in os.listdir("/proc/%d/task" % pid):
        base = "/proc/%d/task/%s/" % (pid, tid)
        try:
            with open(base + "comm") as f:
                if f.read().strip() != name:
                    continue
            with open(base + "status") as f:
                for line in f:
                    if line.startswith("voluntary_ctxt_switches:"):
                        return int(line.split()[1])
        except OSError:
            continue
    raise RuntimeError("no thread %s in process %d" % (name, pid))


class Relay:
    name = "relay"

    def __init__(self, host: Host) -> None:
        self.host = host

    def window(self, direction: str, size: int) -> float:
        h = self.host
        d = h.window_dir()
        conf = os.path.join(d, "agent.conf")
        with open(conf, "w") as f:
            f.write("[dataplane]\nworker_cpus = %d\nmain_lcore = %d\n"
                    "hugepage_dir = %s\nfile_prefix = v4wbench%d\n"
                    "expected_relays = 1\nlog_level = 3\n"
                    "[vhost]\nsocket_dir = %s\nclient_mode = true\n"
                    "[relay]\nstatic_vfs = %s=0\n"
                    "[agent]\npid_file =\nstate_dir =\n"
                    "[metrics]\nenabled = false\n[libvirt]\nenabled = false\n"
                    "[control]\nport_control = none\nzmq_stats_ep =\n"
                    "zmq_core_sched_ep =\nzmq_config_ep =\n"
                    % (h.worker, h.main, h.huge_dir or "", h.seq, d,
                       null_vdev(direction, size)))
        agent = subprocess.Popen([AGENT, "--config-file", conf],
                                 stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
        try:
            return h.vm_rate(os.path.join(d, "virtio-forwarder0.sock"),
                             direction, size,
                             switches=lambda: worker_switches(
                                 agent.pid, h.worker))
        finally:
            agent.send_signal(signal.SIGTERM)
            agent.wait(30)


class TestpmdIo:
    name = "testpmd"

    def __init__(self, host: Host) -> None:
        self.host = host

    def window(self, direction: str, size: int) -> float:
        h = self.host
        sock = os.path.join(h.window_dir(), "vhost0.sock")
        fwd = testpmd.TestPmd(
            [null_vdev(direction, size),
             "net_vhost0,iface=%s,queues=1,client=1" % sock],
            lcores="0@%d,1@%d" % (h.main, h.worker),
            file_prefix="v4wbfwd%d" % h.seq, hugepage_dir=h.huge_dir,
            mbufs=16384, extra_args=["--forward-mode=io"])
        fwd.start()
        try:
            fwd.cmd("start")
            return h.vm_rate(sock, direction, size)
        finally:
            fwd.stop()


class OvsDpdk:
    """ovsdb-server + ovs-vswitchd-dpdk, a netdev bridge with the null
    port and a dpdkvhostuserclient port, and one flow each way."""

    name = "ovs"

    def __init__(self, host: Host) -> None:
        self.host = host
        if not os.path.exists(OVS_VSWITCHD):
            raise SystemExit("OVS-DPDK missing: apt-get install "
                             "openvswitch-switch-dpdk (make bench does)")

    def window(self, direction: str, size: int) -> float:
        h = self.host
        d = h.window_dir()
        env = dict(os.environ, OVS_RUNDIR=d, OVS_LOGDIR=d, OVS_DBDIR=d)
        db = "unix:%s/db.sock" % d
        vsctl = ["ovs-vsctl", "--db=" + db, "--timeout=30"]

        def run(*cmd: str) -> None:
            subprocess.run(cmd, env=env, check=True, capture_output=True)

        run("ovsdb-tool", "create", d + "/conf.db",
            "/usr/share/openvswitch/vswitch.ovsschema")
        run("ovsdb-server", d + "/conf.db", "--remote=punix:%s/db.sock" % d,
            "--pidfile=%s/ovsdb.pid" % d, "--detach",
            "--log-file=%s/ovsdb.log" % d, "--unixctl=%s/ovsdb.ctl" % d)
        try:
            run(*vsctl, "--no-wait", "init")
            run(*vsctl, "--no-wait", "set", "Open_vSwitch", ".",
                "other_config:dpdk-init=true",
                "other_config:dpdk-lcore-mask=%#x" % (1 << h.main),
                "other_config:pmd-cpu-mask=%#x" % (1 << h.worker),
                "other_config:dpdk-socket-mem=512",
                "other_config:dpdk-extra=--no-pci --file-prefix v4wbovs%d"
                % h.seq + (" --huge-dir %s" % h.huge_dir if h.huge_dir
                           else " --no-huge -m 1024"))
            run(OVS_VSWITCHD, db, "--pidfile=%s/vswitchd.pid" % d,
                "--detach", "--log-file=%s/vswitchd.log" % d,
                "--unixctl=%s/vswitchd.ctl" % d)
            sock = d + "/vhu0.sock"
            run(*vsctl, "add-br", "br0", "--", "set", "bridge", "br0",
                "datapath_type=netdev")
            run(*vsctl, "add-port", "br0", "null0", "--", "set",
                "Interface", "null0", "type=dpdk",
                "options:dpdk-devargs=%s" % null_vdev(direction, size))
            run(*vsctl, "add-port", "br0", "vhu0", "--", "set", "Interface",
                "vhu0", "type=dpdkvhostuserclient",
                "options:vhost-server-path=%s" % sock)
            run("ovs-ofctl", "del-flows", "br0")
            run("ovs-ofctl", "add-flow", "br0",
                "in_port=null0,actions=output:vhu0")
            run("ovs-ofctl", "add-flow", "br0",
                "in_port=vhu0,actions=output:null0")
            return h.vm_rate(sock, direction, size)
        finally:
            for pidfile in ("vswitchd.pid", "ovsdb.pid"):
                try:
                    with open(os.path.join(d, pidfile)) as f:
                        pid = int(f.read())
                    os.kill(pid, signal.SIGTERM)
                    for _ in range(100):
                        os.kill(pid, 0)
                        time.sleep(0.05)
                except (OSError, ValueError):
                    pass


def mode(probes: tuple[float, float]) -> str:
    """The VM's speed mode over a window, from the probes around it."""
    if all(p < FAST_NS for p in probes):
        return "fast"
    if all(p >= FAST_NS for p in probes):
        return "slow"
    return "mixed"


def summarize(pairs: list[tuple[float, str]]) -> tuple[float, str]:
    """Median ratio over the same-mode pairs (``mode`` is "fast", "slow"
    or "" for a pair whose windows differ), else over all pairs."""
    same = [r for r, m in pairs if m]
    by_mode = []
    for name in ("fast", "slow"):
        got = [r for r, m in pairs if m == name]
        if got:
            by_mode.append("%s %.2f over %d" % (
                name, statistics.median(got), len(got)))
    if len(same) >= 3:
        return statistics.median(same), "%d same-mode pairs: %s" % (
            len(same), ", ".join(by_mode))
    return (statistics.median(r for r, _ in pairs),
            "all %d pairs (%d same-mode)" % (len(pairs), len(same)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=16,
                        help="rounds at small frames (< 512 B)")
    parser.add_argument("--large-rounds", type=int, default=None,
                        help="rounds at large frames (default: half of "
                        "--rounds)")
    parser.add_argument("--window", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=0.5)
    parser.add_argument("--peers", default="testpmd",
                        help="comma list of testpmd, ovs")
    parser.add_argument("--sizes", default="64,1518",
                        help="comma list of frame sizes")
    parser.add_argument("--directions", default="vf2vm,vm2vf",
                        help="comma list of vf2vm, vm2vf")
    args = parser.parse_args()
    if os.geteuid() != 0:
        parser.error("run as root")
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.large_rounds is None:
        args.large_rounds = max(1, args.rounds // 2)
    host = Host(args)
    kinds = {"testpmd": TestpmdIo, "ovs": OvsDpdk}
    systems = [Relay(host)] + [kinds[p](host) for p in
                               args.peers.split(",")]
    ratios: dict[tuple[str, int, str], list[tuple[float, str]]] = \
        collections.defaultdict(list)
    rates: dict[tuple[str, int, str], list[float]] = \
        collections.defaultdict(list)
    switches: dict[tuple[int, str], list[int]] = collections.defaultdict(list)
    try:
        for rnd in range(max(args.rounds, args.large_rounds)):
            order = systems[rnd % len(systems):] + \
                systems[:rnd % len(systems)]
            for size in sizes:
                if rnd >= (args.rounds if size < 512 else args.large_rounds):
                    continue
                for direction, _ in DIRS:
                    if direction not in args.directions.split(","):
                        continue
                    got, probes = {}, {}
                    for system in order:
                        before = host.probe()
                        got[system.name] = system.window(direction, size)
                        probes[system.name] = (before, host.probe())
                        rates[(system.name, size, direction)].append(
                            got[system.name])
                        if system.name == "relay" and \
                                host.last_switches is not None:
                            switches[(size, direction)].append(
                                host.last_switches)
                    line = ["round %d %dB %s:" % (rnd + 1, size, direction)]
                    for system in systems:
                        line.append("%s %.2f Mpps (probes %.0f/%.0f ns, %s)"
                                    % (system.name, got[system.name] / 1e6,
                                       *probes[system.name],
                                       mode(probes[system.name])))
                    print(" ".join(line), flush=True)
                    for peer in systems[1:]:
                        m = mode(probes["relay"])
                        same = m if m != "mixed" and \
                            m == mode(probes[peer.name]) else ""
                        ratios[(peer.name, size, direction)].append(
                            (got["relay"] / got[peer.name], same))
    finally:
        host.close()
    print()
    for (name, size, direction), values in sorted(rates.items()):
        print("median %s %dB %s: %.2f Mpps" % (
            name, size, direction, statistics.median(values) / 1e6))
    for (size, direction), values in sorted(switches.items()):
        print("relay worker voluntary context switches per %.0f s window, "
              "%dB %s: median %d, max %d" % (
                  args.window, size, direction, statistics.median(values),
                  max(values)))
    lines = []
    for peer in systems[1:]:
        for size in sizes:
            parts, notes = [], []
            for direction, label in DIRS:
                if not ratios[(peer.name, size, direction)]:
                    continue
                value, note = summarize(ratios[(peer.name, size, direction)])
                parts.append("%s=%.2f" % (label, value))
                notes.append("%s: %s" % (label, note))
            head = "relay/%s" % peer.name
            if not (peer.name == "testpmd" and size == 64):
                head += " %dB" % size
            lines.append((peer.name == "testpmd" and size == 64,
                          "%s %s   [%s]" % (head, " ".join(parts),
                                            "; ".join(notes)),
                          "%s %s" % (head, " ".join(parts))))
    # The relay/testpmd 64-byte line is printed last, bare (its notes just
    # before it).
    for last, text, bare in sorted(lines, key=lambda x: x[0]):
        if last:
            print("(%s)" % text.split("[", 1)[1].rstrip("]"))
        print(bare if last else text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
