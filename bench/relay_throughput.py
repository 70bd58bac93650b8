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

Method (default, ``--method interleave``).  These VMs are bimodal: the
host moves the vCPUs, and a cache-line hand-off between the two CPUs
takes ~55 ns (fast mode) or ~250 ns (slow), for seconds at a time, so two
forwarders measured seconds apart are often measured in different modes.
So every forwarder is started with its own VM at once, and the pairs take
turns: one runs while the others are stopped with SIGSTOP, for a slice of
``--slice`` s counted after ``--settle`` s; a cycle gives each pair one
slice (the order rotates per cycle), and the ratio of a cycle's two
slices, a fraction of a second apart, is measured in one mode.  The
printed ratio is the median over all cycles of all runs; each run starts
every process afresh (``--runs``), and the per-run medians beside it show
whether a process's own start (its memory, say) mattered.

``--method windows`` is the earlier method: fresh processes per 5 s
window, the forwarders one after the other, every window bracketed by a
ping-pong probe (bench/pingpong.c) while the CPUs are idle: both probes
fast or both slow tag the window with that mode, anything else as mixed;
the ratio is the median over pairs (relay and peer, same round) with the
same tag, or over all pairs when fewer than three matched (it says
which).  Its pairs are seconds apart and the probes miss mode changes
during a window: its ratios scatter far more than interleaved cycles do.

Usage (root):
    .venv/bin/python bench/relay_throughput.py [--runs 6] [--cycles 10]
        [--peers testpmd,ovs] [--sizes 64,1518] [--directions vf2vm,vm2vf]
        [--variant NAME=VALUE] [--method windows [--rounds 16]
        [--large-rounds 8] [--window 5]] [--replay LOG]
The last line is always ``relay/testpmd VF->VM=x.xx VM->VF=y.yy`` (64 B).
"""
from __future__ import annotations

import argparse
import collections
import collections.abc
import dataclasses
import math
import os
import re
import signal
import statistics
import subprocess
import sys
import time
import typing

from vio4wd_agent.demo import testpmd

from measure import (STANDALONE, Machine, signal_all,  # bench/
                     start_agent, stop_agent, take_turns)

OVS_VSWITCHD = "/usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk"
FAST_NS = 100.0
DIRS = (("vf2vm", "VF->VM"), ("vm2vf", "VM->VF"))


def null_vdev(direction: str, size: int) -> str:
    return "net_null0,size=%d%s" % (size, ",no-rx=1" if direction == "vm2vf"
                                    else "")


class Host(Machine):
    """CPUs, hugepages, the VM and the probe shared by all forwarders."""

    def __init__(self, args: argparse.Namespace) -> None:
        super().__init__("v4wbench-", 1024)
        self.args = args
        self.pingpong = os.path.join(self.tmp, "pingpong")
        subprocess.run(["gcc", "-O2", "-pthread", "-o", self.pingpong,
                        os.path.join(os.path.dirname(__file__),
                                     "pingpong.c")], check=True)
        self.seq = 0
        self.last_switches: int | None = None

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

    def start_vm(self, sock: str, direction: str, size: int,
                 prefix: str) -> testpmd.TestPmd:
        """The VM (vhost-user server on ``sock``), its link up, receiving
        (VF->VM) or sending ``size``-byte frames (VM->VF)."""
        vm = testpmd.TestPmd(
            [testpmd.virtio_user_vdev(sock, server=True)],
            lcores="0@%d,1@%d" % (self.vm_cpu, self.vm_cpu),
            file_prefix=prefix, hugepage_dir=self.huge_dir, mbufs=16384)
        vm.start(timeout=90)
        try:
            vm.wait_links()
            if direction == "vf2vm":
                vm.forward("rxonly")
            else:
                vm.forward("txonly", "set txpkts %d" % size)
        except BaseException:
            vm.stop()
            raise
        return vm

    def vm_rate(self, run: "Running", direction: str, size: int) -> float:
        """A VM on the forwarder ``run``: its packets/s (median of 0.25 s
        samples).  The forwarder's voluntary context switches during the
        window go to ``self.last_switches`` when it can count them."""
        vm = self.start_vm(run.sock, direction, size, "v4wbvm%d" % self.seq)
        try:
            time.sleep(self.args.warmup)
            samples = []
            sw0 = run.switches() if run.switches else 0
            t0, s0 = time.monotonic(), vm_count(vm, direction)
            end = t0 + self.args.window
            while t0 < end:
                time.sleep(0.25)
                t1, s1 = time.monotonic(), vm_count(vm, direction)
                samples.append((s1 - s0) / (t1 - t0))
                t0, s0 = t1, s1
            self.last_switches = (run.switches() - sw0) if run.switches \
                else None
            return statistics.median(samples)
        finally:
            vm.stop()


def vm_count(vm: testpmd.TestPmd, direction: str) -> int:
    """What the VM received (VF->VM) or what the forwarder took from it."""
    stats = vm.port_stats()
    return stats.rx_packets if direction == "vf2vm" else stats.tx_packets


class Running(typing.NamedTuple):
    """A forwarder started for one size and direction."""
    sock: str                                    # the VM connects here
    pids: list[int]                              # its processes
    close: "collections.abc.Callable[[], None]"
    switches: "collections.abc.Callable[[], int] | None" = None


class Forwarder:
    name = ""

    def __init__(self, host: Host) -> None:
        self.host = host

    def start(self, direction: str, size: int) -> Running:
        raise NotImplementedError

    def window(self, direction: str, size: int) -> float:
        """Fresh forwarder and VM, one window: the VM's packets/s."""
        run = self.start(direction, size)
        try:
            return self.host.vm_rate(run, direction, size)
        finally:
            run.close()


def worker_switches(pid: int, cpu: int) -> "collections.abc.Callable[[], int]":
    """A reader of the voluntary context switches of the agent's worker
    thread on ``cpu`` (a worker that naps makes them; one that polls
    without rest does not).  The thread is looked up on the first read
    (the agent starts it after it starts) and kept."""
    name = "rte-worker-%d" % cpu
    found: list[str] = []

    def status() -> str:
        for tid in os.listdir("/proc/%d/task" % pid):
            base = "/proc/%d/task/%s/" % (pid, tid)
            try:
                with open(base + "comm") as f:
                    if f.read().strip() == name:
                        return base + "status"
            except OSError:
                continue
        raise RuntimeError("no thread %s in process %d" % (name, pid))

    def read() -> int:
        if not found:
            found.append(status())
        with open(found[0]) as f:
            for line in f:
                if line.startswith("voluntary_ctxt_switches:"):
                    return int(line.split()[1])
        raise RuntimeError("no voluntary_ctxt_switches in " + found[0])
    return read


class Relay(Forwarder):
    name = "relay"

    def __init__(self, host: Host, env: dict[str, str] | None = None,
                 name: str = "relay") -> None:
        super().__init__(host)
        self.env = dict(os.environ, **(env or {}))
        self.name = name

    def start(self, direction: str, size: int) -> Running:
        h = self.host
        d = h.window_dir()
        conf = os.path.join(d, "agent.conf")
        with open(conf, "w") as f:
            f.write("[dataplane]\nworker_cpus = %d\nmain_lcore = %d\n"
                    "hugepage_dir = %s\nfile_prefix = v4wbench%d\n"
                    "expected_relays = 1\nlog_level = 3\n"
                    "[vhost]\nsocket_dir = %s\nclient_mode = true\n"
                    "[relay]\nstatic_vfs = %s=0\n%s"
                    % (h.worker, h.main, h.huge_dir or "", h.seq, d,
                       null_vdev(direction, size), STANDALONE))
        agent = start_agent(conf, env=self.env)
        return Running(os.path.join(d, "virtio-forwarder0.sock"),
                       [agent.pid], lambda: stop_agent(agent),
                       worker_switches(agent.pid, h.worker))


class TestpmdIo(Forwarder):
    name = "testpmd"

    def start(self, direction: str, size: int) -> Running:
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
        except BaseException:
            fwd.stop()
            raise
        assert fwd.pid is not None
        return Running(sock, [fwd.pid], fwd.stop)


class OvsDpdk(Forwarder):
    """ovsdb-server + ovs-vswitchd-dpdk, a netdev bridge with the null
    port and a dpdkvhostuserclient port, and one flow each way."""

    name = "ovs"

    def __init__(self, host: Host) -> None:
        super().__init__(host)
        if not os.path.exists(OVS_VSWITCHD):
            raise SystemExit("OVS-DPDK missing: apt-get install "
                             "openvswitch-switch-dpdk (make bench does)")

    def start(self, direction: str, size: int) -> Running:
        h = self.host
        d = h.window_dir()
        env = dict(os.environ, OVS_RUNDIR=d, OVS_LOGDIR=d, OVS_DBDIR=d)
        db = "unix:%s/db.sock" % d
        vsctl = ["ovs-vsctl", "--db=" + db, "--timeout=30"]

        def run(*cmd: str) -> None:
            subprocess.run(cmd, env=env, check=True, capture_output=True)

        def pid(name: str) -> int | None:
            try:
                with open(os.path.join(d, name + ".pid")) as f:
                    return int(f.read())
            except (OSError, ValueError):
                return None

        def close() -> None:
            for name in ("vswitchd", "ovsdb"):
                p = pid(name)
                if p is None:
                    continue
                try:
                    os.kill(p, signal.SIGTERM)
                    for _ in range(100):
                        os.kill(p, 0)
                        time.sleep(0.05)
                except OSError:
                    pass

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
        except BaseException:
            close()
            raise
        return Running(sock, [p for p in (pid("vswitchd"), pid("ovsdb"))
                              if p is not None], close)


def mode(probes: tuple[float, float]) -> str:
    """The CPUs' hand-off mode around a window, from the probes."""
    if all(p < FAST_NS for p in probes):
        return "fast"
    if all(p >= FAST_NS for p in probes):
        return "slow"
    return "mixed"


def speed_split(rates: list[float]) -> float | None:
    """The rate between the VM's two speed modes when ``rates`` (every
    window of every forwarder, one size and direction) fall into two
    clusters at least 1.5x apart, each holding a fifth of the windows or
    more; None when they do not (one mode)."""
    logs = sorted(math.log(r) for r in rates if r > 0)
    n = len(logs)
    best: tuple[float, int] | None = None
    for k in range(max(2, n // 5), n - max(2, n // 5) + 1):
        lo, hi = logs[:k], logs[k:]
        cost = sum((x - statistics.fmean(lo)) ** 2 for x in lo) + \
            sum((x - statistics.fmean(hi)) ** 2 for x in hi)
        if best is None or cost < best[0]:
            best = (cost, k)
    if best is None:
        return None
    lo, hi = logs[:best[1]], logs[best[1]:]
    if statistics.median(hi) - statistics.median(lo) < math.log(1.5):
        return None
    return math.exp((lo[-1] + hi[0]) / 2)


class Window(typing.NamedTuple):
    round: int
    size: int
    direction: str
    name: str                       # relay, relay+, testpmd, ovs
    rate: float                     # packets/s
    probes: tuple[float, float]     # ns, before and after
    switches: int | None = None     # the worker's voluntary ones, if known


def clusters(got: list[Window], split: float, peer: str,
             pairs: list[tuple[float, Window, Window]]) -> str:
    """Bimodal rates: in each cluster, the relay's median rate over the
    peer's, how many windows of each landed there, and the median ratio
    of the pairs whose two windows both did."""
    per = []
    for high in (True, False):
        m = "high" if high else "low"
        rel = [w.rate for w in got if w.name == "relay" and
               (w.rate >= split) == high]
        oth = [w.rate for w in got if w.name == peer and
               (w.rate >= split) == high]
        if not rel or not oth:
            per.append("%s: relay %d, %s %d windows" % (m, len(rel), peer,
                                                        len(oth)))
            continue
        both = [x for x, a, b in pairs
                if (a.rate >= split) == (b.rate >= split) == high]
        per.append("%s %.2f (relay %d, %s %d windows; %d same-mode pairs%s)"
                   % (m, statistics.median(rel) / statistics.median(oth),
                      len(rel), peer, len(oth), len(both),
                      ", median %.2f" % statistics.median(both)
                      if both else ""))
    return "modes split at %.2f Mpps: %s" % (split / 1e6, "; ".join(per))


def ratio(got: list[Window], peer: str) -> tuple[float, str]:
    """relay/peer over the rounds of one size and direction (see report)."""
    rounds: dict[int, dict[str, Window]] = collections.defaultdict(dict)
    for w in got:
        rounds[w.round][w.name] = w
    pairs = [(r["relay"].rate / r[peer].rate, r["relay"], r[peer])
             for r in rounds.values() if "relay" in r and peer in r]
    # Same mode by the probes: both windows fast, or both slow.
    same = [x for x, a, b in pairs
            if mode(a.probes) != "mixed" and
            mode(a.probes) == mode(b.probes)]
    if len(same) >= 3:
        value, note = statistics.median(same), "%d same-mode pairs" % len(
            same)
    else:
        value = statistics.median(x for x, _, _ in pairs)
        note = "all %d pairs (%d same-mode)" % (len(pairs), len(same))
    split = speed_split([w.rate for w in got])
    if split is not None:
        note += "; rates bimodal: " + clusters(got, split, peer, pairs)
    return value, note


def report(windows: list[Window], names: list[str],
           sizes: list[int]) -> list[str]:
    """The ratio lines: the median over the pairs of windows (relay and a
    peer, same round) that the probes put in the same mode, fast or slow,
    when there are three or more, else over all pairs.  Where the rates
    themselves fall into two clusters (speed_split), the ratio within
    each cluster and how many windows of each forwarder landed in the
    high one are added: a diagnostic, not the ratio (a forwarder that is
    faster also lands in the high cluster more often)."""
    def one(peer: str, size: int, direction: str) -> tuple[float, str] | None:
        got = [w for w in windows
               if (w.size, w.direction) == (size, direction)]
        return ratio(got, peer) if got else None
    return ratio_lines(names, sizes, one)


def ratio_lines(names: list[str], sizes: list[int],
                one: "collections.abc.Callable[[str, int, str], "
                "tuple[float, str] | None]") -> list[str]:
    """A line per peer and size with ``one(peer, size, direction)``'s
    ratio (value, notes) for each direction that has one.  The
    relay/testpmd 64-byte line comes last, bare, its notes on the line
    before it."""
    lines, last = [], []
    for peer in names[1:]:
        for size in sizes:
            parts, notes = [], []
            for direction, label in DIRS:
                got = one(peer, size, direction)
                if got is None:
                    continue
                parts.append("%s=%.2f" % (label, got[0]))
                notes.append("%s: %s" % (label, got[1]))
            if not parts:
                continue
            if peer == "testpmd" and size == 64:
                last = ["(%s)" % "; ".join(notes),
                        "relay/testpmd %s" % " ".join(parts)]
            else:
                lines.append("relay/%s %dB %s   [%s]" % (
                    peer, size, " ".join(parts), "; ".join(notes)))
    return lines + last


class Slice(typing.NamedTuple):
    run: int
    cycle: int
    size: int
    direction: str
    name: str
    rate: float                     # packets/s
    switches: int | None = None     # the worker's voluntary ones, if known


@dataclasses.dataclass
class Pair:
    """A forwarder and its VM, interleaved with the other pairs."""
    name: str
    fwd: Running
    vm: testpmd.TestPmd | None = None

    def signal(self, sig: int) -> None:
        """Stop (SIGSTOP) or resume (SIGCONT) every process of the pair."""
        signal_all(self.fwd.pids + [self.vm.pid if self.vm else None], sig)


def interleaved(host: Host, systems: list[Forwarder], run_no: int,
                direction: str, size: int) -> list[Slice]:
    """Every forwarder with its own VM, all started at once, taking turns
    (measure.take_turns): a slice gives the running pair ``--settle`` s,
    then counts the VM's packets for ``--slice`` s."""
    args = host.args
    pairs: list[Pair] = []
    out: list[Slice] = []

    def measure(pair: Pair) -> tuple[str, float, int | None]:
        assert pair.vm is not None
        count = pair.fwd.switches
        sw0 = count() if count else 0
        t0, c0 = time.monotonic(), vm_count(pair.vm, direction)
        time.sleep(args.slice)
        t1, c1 = time.monotonic(), vm_count(pair.vm, direction)
        return (pair.name, (c1 - c0) / (t1 - t0),
                count() - sw0 if count else None)

    try:
        for system in systems:
            pairs.append(Pair(system.name, system.start(direction, size)))
            pairs[-1].vm = host.start_vm(pairs[-1].fwd.sock, direction,
                                         size, "v4wbvm%d" % host.seq)
            pairs[-1].signal(signal.SIGSTOP)
        for cycle, got in enumerate(take_turns(pairs, args.cycles,
                                               args.settle, measure), 1):
            out += [Slice(run_no, cycle, size, direction, name, rate, sw)
                    for name, rate, sw in got]
            print("run %d %dB %s cycle %d: %s" % (
                run_no, size, direction, cycle, " ".join(
                    "%s %.2f Mpps" % (name, rate / 1e6)
                    for name, rate, _ in got)), flush=True)
    finally:
        # One pair at a time, the others stopped (take_turns leaves them
        # so): a pair that shuts down while the others poll may take its
        # time (seen: a VM's last thread still running 30 s after
        # SIGKILL).
        for pair in pairs:
            pair.signal(signal.SIGSTOP)
        for pair in pairs:
            pair.signal(signal.SIGCONT)
            try:
                if pair.vm is not None:
                    pair.vm.stop()
            except subprocess.TimeoutExpired:
                print("%s's VM did not quit: %s" % (
                    pair.name, thread_states(pair.vm.pid if pair.vm
                                             else None)), flush=True)
            finally:
                pair.fwd.close()
    return out


def thread_states(pid: int | None) -> str:
    """State and wait channel of each thread of ``pid`` (diagnostics)."""
    if pid is None:
        return "no process"
    out = []
    try:
        for tid in sorted(os.listdir("/proc/%d/task" % pid)):
            base = "/proc/%d/task/%s/" % (pid, tid)
            with open(base + "stat") as f:
                stat = f.read()
            with open(base + "wchan") as f:
                wchan = f.read()
            out.append("%s %s %s" % (stat[stat.index("(") + 1:
                                          stat.rindex(")")],
                                     stat[stat.rindex(")") + 2], wchan))
    except (OSError, TypeError, ValueError):
        pass
    return "; ".join(out) or "gone"


def slice_report(slices: list[Slice], names: list[str],
                 sizes: list[int]) -> list[str]:
    """relay/peer: the median over cycles of the two slices' ratio; each
    run's median beside it (a run restarts every process: if those
    differ, the processes' own placement matters, not only the CPUs'
    mode), and in how many cycles the relay was ahead."""
    def one(peer: str, size: int, direction: str) -> tuple[float, str] | None:
        cycles: dict[tuple[int, int], dict[str, float]] = \
            collections.defaultdict(dict)
        for x in slices:
            if (x.size, x.direction) == (size, direction):
                cycles[(x.run, x.cycle)][x.name] = x.rate
        ratios = {key: c["relay"] / c[peer] for key, c in cycles.items()
                  if c.get("relay") and c.get(peer)}
        if not ratios:
            return None
        per_run = ["%.2f" % statistics.median(
            v for (r, _), v in ratios.items() if r == run)
            for run in sorted({r for r, _ in ratios})]
        return statistics.median(ratios.values()), \
            "%d cycles, relay ahead in %d; per run %s" % (
                len(ratios), sum(v > 1 for v in ratios.values()),
                " ".join(per_run))
    return ratio_lines(names, sizes, one)


def replay(paths: list[str]) -> int:
    """Print the summary again from saved outputs: the round lines of
    the windows method, else the cycle lines of the interleaved one.
    Several logs are pooled, each one's runs (rounds) numbered after the
    last one's."""
    def lines(pattern: str) -> list[re.Match]:
        rx, out, offset = re.compile(pattern), [], 0
        for path in paths:
            top = offset
            with open(path) as f:
                for line in f:
                    m = rx.match(line)
                    if m is None:
                        continue
                    n = int(m.group(1)) + offset
                    top = max(top, n)
                    out.append(rx.match(line[:m.start(1)] + str(n) +
                                        line[m.end(1):]))
            offset = top
        return [m for m in out if m is not None]

    def order(items: "list[Window] | list[Slice]") -> tuple[list[str],
                                                         list[int]]:
        names = list(dict.fromkeys(x.name for x in items))
        if "relay" in names:            # the relay first: peers follow
            names.remove("relay")
            names.insert(0, "relay")
        return names, list(dict.fromkeys(x.size for x in items))

    windows = [Window(int(m.group(1)), int(m.group(2)), m.group(3), name,
                      float(rate) * 1e6, (float(p0), float(p1)))
               for m in lines(r"round (\d+) (\d+)B (\w+): (.*)")
               for name, rate, p0, p1 in re.findall(
                   r"([\w+]+) ([\d.]+) Mpps \(probes (\d+)/(\d+) ns",
                   m.group(4))]
    if windows:
        out = report(windows, *order(windows))
    else:
        slices = [Slice(int(m.group(1)), int(m.group(4)), int(m.group(2)),
                        m.group(3), name, float(rate) * 1e6)
                  for m in lines(r"run (\d+) (\d+)B (\w+) cycle (\d+): "
                                 r"(.*)")
                  for name, rate in re.findall(r"([\w+]+) ([\d.]+) Mpps",
                                               m.group(5))]
        out = slice_report(slices, *order(slices))
    for line in out:
        print(line)
    return 0


def summary(items: "list[Window] | list[Slice]", per: str) -> None:
    """The median rate of each forwarder, size and direction, and the
    relay worker's voluntary context switches where they were counted."""
    print()
    for key in sorted({(x.name, x.size, x.direction) for x in items}):
        mine = [x for x in items if (x.name, x.size, x.direction) == key]
        print("median %s %dB %s: %.2f Mpps" % (
            *key, statistics.median(x.rate for x in mine) / 1e6))
        values = [x.switches for x in mine if x.switches is not None]
        if values:
            print("  %s worker voluntary context switches per %s: median "
                  "%d, max %d" % (key[0], per, statistics.median(values),
                                  max(values)))


def interleave_main(host: Host, systems: list[Forwarder], sizes: list[int],
                    args: argparse.Namespace) -> int:
    slices: list[Slice] = []
    try:
        for run_no in range(1, args.runs + 1):
            for size in sizes:
                for direction, _ in DIRS:
                    if direction in args.directions.split(","):
                        slices += interleaved(host, systems, run_no,
                                              direction, size)
    finally:
        host.close()
    summary(slices, "%.1f s slice" % args.slice)
    for line in slice_report(slices, [s.name for s in systems], sizes):
        print(line)
    return 0


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
    parser.add_argument("--variant", metavar="NAME=VALUE", action="append",
                        default=[],
                        help="also run the relay with this environment "
                        "variable set (a peer named relay+, for A/B tests "
                        "of a data-plane change)")
    parser.add_argument("--method", choices=("interleave", "windows"),
                        default="interleave",
                        help="interleave: all forwarders up at once, "
                        "taking turns in short slices (default); windows: "
                        "fresh processes per window, probes around each")
    parser.add_argument("--runs", type=int, default=6,
                        help="interleave: process restarts per size and "
                        "direction")
    parser.add_argument("--cycles", type=int, default=10,
                        help="interleave: slices per forwarder and run")
    parser.add_argument("--slice", type=float, default=0.5,
                        help="interleave: seconds counted per slice")
    parser.add_argument("--settle", type=float, default=0.1,
                        help="interleave: seconds before counting")
    parser.add_argument("--replay", metavar="LOG", nargs="+",
                        help="summarize saved outputs again (several are "
                        "pooled); run nothing")
    args = parser.parse_args()
    if args.replay:
        return replay(args.replay)
    if os.geteuid() != 0:
        parser.error("run as root")
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.large_rounds is None:
        args.large_rounds = max(1, args.rounds // 2)
    host = Host(args)
    kinds = {"testpmd": TestpmdIo, "ovs": OvsDpdk}
    systems = [Relay(host)] + [kinds[p](host) for p in
                               args.peers.split(",") if p]
    if args.variant:
        systems.append(Relay(host, dict(v.split("=", 1)
                                        for v in args.variant), "relay+"))
    if args.method == "interleave":
        return interleave_main(host, systems, sizes, args)
    windows: list[Window] = []
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
                    this = {}
                    for system in order:
                        before = host.probe()
                        rate = system.window(direction, size)
                        this[system.name] = Window(
                            rnd + 1, size, direction, system.name, rate,
                            (before, host.probe()), host.last_switches)
                    windows += this.values()
                    print(" ".join(
                        ["round %d %dB %s:" % (rnd + 1, size, direction)] +
                        ["%s %.2f Mpps (probes %.0f/%.0f ns, %s)"
                         % (w.name, w.rate / 1e6, *w.probes, mode(w.probes))
                         for w in (this[s.name] for s in systems)]),
                        flush=True)
    finally:
        host.close()
    summary(windows, "%.0f s window" % args.window)
    for line in report(windows, [s.name for s in systems], sizes):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
