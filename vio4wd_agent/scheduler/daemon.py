# SPDX-License-Identifier: Apache-2.0
"""The core scheduler's thread: every poll interval it reads the relays'
counters, turns the difference into per-direction loads, asks the planner
where they should run and submits the moves to the RelayManager (not
journaled: a balance is a state of traffic, not a pin)."""
from __future__ import annotations

import logging
import threading
import time
from typing import Callable

from vio4wd_agent import manager as mgr
from vio4wd_agent.relay.engine import RelayEngine
from vio4wd_agent.relay.model import Direction, RelayState
from vio4wd_agent.scheduler import balance

LOG = logging.getLogger(__name__)

# syslog level (VIO4WD_CORE_SCHED_LOG_LEVEL) -> Python logging level
_LEVELS = {0: logging.CRITICAL, 1: logging.CRITICAL, 2: logging.CRITICAL,
           3: logging.ERROR, 4: logging.WARNING, 5: logging.INFO,
           6: logging.INFO, 7: logging.DEBUG}

_Sample = tuple[float, dict[int, tuple[int, int, int, int]]]


class CoreBalancer:
    name = "core scheduler"

    def __init__(self, manager: mgr.RelayManager, engine: RelayEngine, *,
                 poll_interval: float, sensitivity: float,
                 cross_numa: bool = False,
                 cpu_node: Callable[[int], int | None] = lambda cpu: None,
                 log_level: int | None = None) -> None:
        self.manager = manager
        self.engine = engine
        self.poll_interval = poll_interval
        self.sensitivity = sensitivity
        self.cross_numa = cross_numa
        self.cpu_node = cpu_node
        self.moves = 0
        self.rounds = 0
        self._last: _Sample | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if log_level is not None:
            LOG.setLevel(_LEVELS[log_level])

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run,
                                        name="core-scheduler", daemon=True)
        self._thread.start()
        LOG.info("core scheduler: balancing every %.1f s, sensitivity "
                 "%.0f%%, %s", self.poll_interval, self.sensitivity,
                 "across NUMA nodes" if self.cross_numa else
                 "within NUMA nodes")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.wait(self.poll_interval):
            try:
                self.step()
            except Exception:       # a bad round must not end balancing
                LOG.exception("core scheduler: round failed")

    # ---- one round --------------------------------------------------------
    def step(self) -> balance.Plan | None:
        """Sample; with a previous sample, plan and move.  Returns the plan
        (None on the first round)."""
        now = time.monotonic()
        relays = self.engine.relays()
        sample = (now, {r.relay_id: _counters(r) for r in relays})
        last, self._last = self._last, sample
        self.rounds += 1
        if last is None:
            return None
        loads = self._loads(relays, last, sample)
        workers = {cpu: self.cpu_node(cpu) for cpu in self.engine.workers()}
        plan = balance.plan(loads, workers, sensitivity=self.sensitivity,
                            cross_numa=self.cross_numa)
        for move in plan.moves:
            try:
                self.manager.submit(mgr.MoveDirection(
                    move.relay_id, move.direction, move.dst,
                    source="core scheduler", persist=False)).result()
                self.moves += 1
            except Exception as exc:    # e.g. the relay went meanwhile
                LOG.warning("core scheduler: relay %d %s not moved to CPU "
                            "%d: %s", move.relay_id, move.direction.name,
                            move.dst, exc)
        LOG.debug("core scheduler: round %d: %d direction(s) on %d "
                  "worker(s), busiest %.0f, %d move(s)", self.rounds,
                  len(loads), len(workers), plan.busiest_before,
                  len(plan.moves))
        if plan.moves:
            LOG.info("core scheduler: %d direction(s) moved; busiest worker "
                     "%.0f -> %.0f (load units/s)", len(plan.moves),
                     plan.busiest_before, plan.busiest_after)
        return plan

    def _loads(self, relays: list[RelayState], last: _Sample,
               sample: _Sample) -> list[balance.Load]:
        dt = sample[0] - last[0]
        pinned = self.manager.pinned()
        loads = []
        for r in relays:
            before, now = last[1].get(r.relay_id), sample[1][r.relay_id]
            deltas = [b - a for a, b in zip(before, now)] if before else []
            fresh = not deltas or min(deltas) < 0 or dt <= 0
            for i, d in enumerate(Direction):
                load = 0.0 if fresh else balance.load_of(
                    deltas[2 * i] / dt, deltas[2 * i + 1] / dt)
                loads.append(balance.Load(
                    r.relay_id, d, r.direction(d).cpu, load,
                    numa=r.numa_node,
                    # a relay new since the last sample waits a round
                    pinned=fresh or pinned.get(r.relay_id,
                                               (False, False))[i]))
        return loads


def _counters(r: RelayState) -> tuple[int, int, int, int]:
    return (r.vf_to_vm.rx_pkts, r.vf_to_vm.rx_bytes,
            r.vm_to_vf.rx_pkts, r.vm_to_vf.rx_bytes)
