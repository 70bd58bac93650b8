# SPDX-License-Identifier: Apache-2.0
"""What the benchmarks share: percentiles, a listening probe, a data plane
on hugepages, the machine's CPUs and hugepages, the agent as a process."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from typing import (Any, Callable, Iterable, Iterator, Protocol, Sequence,
                    TypeVar)

from vio4wd_agent.conf.settings import online_cpus
from vio4wd_agent.demo import hugepages
from vio4wd_agent.relay import eal
from vio4wd_agent.relay.engine import RelayEngine


def percentile(values: list[float], p: float) -> float:
    """The ``p`` quantile (0..1) of ``values``, nearest rank, same unit."""
    values = sorted(values)
    return values[min(len(values) - 1, int(p * len(values)))]


def ms(values: list[float], p: float) -> float:
    """``percentile`` of values in seconds, in milliseconds."""
    return percentile(values, p) * 1000


def listening(path: str) -> bool:
    """Someone accepts connections on the unix socket at ``path``."""
    s = socket.socket(socket.AF_UNIX)
    try:
        s.connect(path)
        return True
    except OSError:
        return False
    finally:
        s.close()


def start_on_hugepages(engine: RelayEngine, huge: hugepages.Hugepages,
                       main: int, worker: int, prefix: str) -> str | None:
    """Mount ``huge`` and start ``engine`` on it (main lcore, one worker);
    the mount point, or None (saying why) when there are no hugepages."""
    huge_dir = huge.setup()
    if huge_dir is None:
        print("needs hugepages: %s" % huge.reason)
        return None
    engine.start(eal.build_eal_args(
        main_lcore=main, worker_cpus=[worker], file_prefix=prefix,
        memory=eal.MemoryPlan(huge_dir, 0, "bench"), log_level=3))
    return huge_dir


AGENT = os.path.join(os.path.dirname(sys.executable), "vio4wd-agent")

# The end of an agent configuration for a benchmark's relays: no pid file,
# journal, metrics, libvirt, port control or ZeroMQ servers.
STANDALONE = ("[agent]\npid_file =\nstate_dir =\n"
              "[metrics]\nenabled = false\n[libvirt]\nenabled = false\n"
              "[control]\nport_control = none\nzmq_stats_ep =\n"
              "zmq_core_sched_ep =\nzmq_config_ep =\n")


class Machine:
    """The CPUs and hugepages of a benchmark: the main lcore on the first
    CPU, the relay worker on the last, the VM on the one before it (on the
    first too, with two CPUs); a scratch directory."""

    def __init__(self, prefix: str, pages: int) -> None:
        cpus = online_cpus()
        self.main, self.worker = cpus[0], cpus[-1]
        self.vm_cpu = cpus[-2] if len(cpus) > 2 else cpus[0]
        self.tmp = tempfile.mkdtemp(prefix=prefix)
        self.huge = hugepages.Hugepages(os.path.join(self.tmp, "huge"), pages)
        self.huge_dir = self.huge.setup()
        if self.huge_dir is None:
            print("no hugepages (%s): using --no-huge" % self.huge.reason)

    def close(self) -> None:
        self.huge.teardown()
        shutil.rmtree(self.tmp, ignore_errors=True)


def start_agent(conf: str, env: dict[str, str] | None = None,
                output: Any = subprocess.DEVNULL) -> subprocess.Popen:
    """The installed agent on configuration file ``conf``."""
    return subprocess.Popen([AGENT, "--config-file", conf], stdout=output,
                            stderr=subprocess.STDOUT if output is not
                            subprocess.DEVNULL else subprocess.DEVNULL,
                            env=env)


def stop_agent(agent: subprocess.Popen, timeout: float = 60) -> None:
    agent.send_signal(signal.SIGTERM)
    try:
        agent.wait(timeout)
    except subprocess.TimeoutExpired:
        agent.kill()
        agent.wait()


def signal_all(pids: Iterable[int | None], sig: int) -> None:
    """Send ``sig`` to each of ``pids`` still there (None: skipped)."""
    for pid in pids:
        if pid:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass


class Party(Protocol):
    """Processes that take turns (see take_turns)."""

    def signal(self, sig: int) -> None:
        """SIGSTOP or SIGCONT every process of the party."""


P = TypeVar("P", bound=Party)
R = TypeVar("R")


def take_turns(parties: Sequence[P], cycles: int, settle: float,
               measure: Callable[[P], R]) -> Iterator[list[R]]:
    """Interleaved measurement: only one party runs at a time, the others
    stopped with SIGSTOP.  Every cycle each party runs once, in an order
    rotated per cycle: it is resumed before the last one is stopped (the
    CPUs never idle, so the host has no reason to move them), given
    ``settle`` s, then ``measure(party)`` (which takes its own time).
    Yields each cycle's results in the parties' order; the turns of one
    cycle are a fraction of a second apart, so whatever speed mode the
    host puts the CPUs in, every party of the cycle sees it.  Every party
    is left stopped at the end: close them one at a time (a process that
    quits while others poll may take its time)."""
    for party in parties:
        party.signal(signal.SIGSTOP)
    running: P | None = None
    try:
        for cycle in range(cycles):
            got: dict[int, R] = {}
            k = cycle % len(parties)
            for i in list(range(k, len(parties))) + list(range(k)):
                party = parties[i]
                party.signal(signal.SIGCONT)
                if running is not None and running is not party:
                    running.signal(signal.SIGSTOP)
                running = party
                time.sleep(settle)
                got[i] = measure(party)
            yield [got[i] for i in range(len(parties))]
    finally:
        for party in parties:
            party.signal(signal.SIGSTOP)
