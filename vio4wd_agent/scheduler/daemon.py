# SPDX-License-Identifier: Apache-2.0
"""The core scheduler's thread: every poll interval it samples the relays
(the stats server's sample()/rates()), turns the rates into per-direction
loads, asks the planner where they should run and submits the moves to the
RelayManager (not journaled: a balance is a state of traffic, not a pin)."""
from __future__ import annotations

import logging
from typing import Callable

from vio4wd_agent import manager as mgr
from vio4wd_agent import service
from vio4wd_agent.conf import parsing
from vio4wd_agent.control import stats
from vio4wd_agent.relay.engine import RelayEngine
from vio4wd_agent.relay.model import Direction
from vio4wd_agent.scheduler import balance

LOG = logging.getLogger(__name__)


class CoreBalancer(service.Periodic):
    name = "core balancer"
    thread_name = "core-scheduler"

    def __init__(self, manager: mgr.RelayManager, engine: RelayEngine, *,
                 poll_interval: float, sensitivity: float,
                 cross_numa: bool = False,
                 cpu_node: Callable[[int], int | None] = lambda cpu: None,
                 log_level: int | None = None) -> None:
        super().__init__()
        self.manager = manager
        self.engine = engine
        self.interval = poll_interval
        self.sensitivity = sensitivity
        self.cross_numa = cross_numa
        self.cpu_node = cpu_node
        self.moves = 0
        self.rounds = 0
        self._last: stats.Sample | None = None
        self._workers: dict[int, int | None] | None = None
        if log_level is not None:
            LOG.setLevel(parsing.python_log_level(log_level))

    def start(self) -> None:
        super().start()
        LOG.info("core scheduler: balancing every %.1f s, sensitivity "
                 "%.0f%%, %s", self.interval, self.sensitivity,
                 "across NUMA nodes" if self.cross_numa else
                 "within NUMA nodes")

    # ---- one round --------------------------------------------------------
    def step(self) -> balance.Plan | None:
        """Sample; with a previous sample, plan and move.  Returns the plan
        (None on the first round)."""
        now = stats.sample(self.engine)
        last, self._last = self._last, now
        self.rounds += 1
        if last is None:
            return None
        if self._workers is None:       # fixed once the data plane runs
            self._workers = {cpu: self.cpu_node(cpu)
                             for cpu in self.engine.workers()}
        loads = self._loads(last, now)
        plan = balance.plan(loads, self._workers,
                            sensitivity=self.sensitivity,
                            cross_numa=self.cross_numa)
        for move in plan.moves:
            try:
                service.result(self.manager.submit(mgr.MoveDirection(
                    move.relay_id, move.direction, move.dst,
                    source="core balancer", persist=False)),
                    "core scheduler: relay %d %s to CPU %d" % (
                        move.relay_id, move.direction.name, move.dst))
                self.moves += 1
            except Exception as exc:    # e.g. the relay went meanwhile
                LOG.warning("core scheduler: relay %d %s not moved to CPU "
                            "%d: %s", move.relay_id, move.direction.name,
                            move.dst, exc)
        LOG.debug("core scheduler: round %d: %d direction(s) on %d "
                  "worker(s), busiest %.0f, %d move(s)", self.rounds,
                  len(loads), len(self._workers), plan.busiest_before,
                  len(plan.moves))
        if plan.moves:
            LOG.info("core scheduler: %d direction(s) moved; busiest worker "
                     "%.0f -> %.0f (load units/s)", len(plan.moves),
                     plan.busiest_before, plan.busiest_after)
        return plan

    def _loads(self, last: stats.Sample,
               now: stats.Sample) -> list[balance.Load]:
        """A relay new since the last sample has no rates yet (load 0),
        so it stays where the data plane put it this round."""
        dt = now[0] - last[0]
        pinned = self.manager.pinned()
        loads = []
        for relay_id, state in now[1].items():
            r = stats.rates(last[1].get(relay_id), state, dt)
            for i, d in enumerate(Direction):
                # rates: rx packets, rx bytes, ... for VF->VM, then VM->VF
                loads.append(balance.Load(
                    relay_id, d, state.direction(d).cpu,
                    balance.load_of(r[4 * i], r[4 * i + 1]),
                    numa=state.numa_node,
                    pinned=pinned.get(relay_id, (False, False))[i]))
        return loads
