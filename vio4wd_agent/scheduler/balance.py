# SPDX-License-Identifier: Apache-2.0
"""Which worker each relay direction should run on: a pure function of
the measured loads, so it is tested without a data plane.

A direction's load is its packet rate plus its byte rate / BYTES_PER_PACKET
(per-packet work dominates; the relay here moves ~14 Mpps of 64-byte and
~3.8 Mpps of 1518-byte frames, so a packet costs about as much as 500
bytes of copying).  Pinned directions stay where they are and count on
their worker.  Starting from where the others run, the direction whose
move off the busiest worker lowers the peak most goes to another worker
allowed for it (its relay's NUMA node, unless cross_numa), until no move
helps: few moves, each worth making.  The plan is taken only when it
lowers the busiest worker's load by at least ``sensitivity`` percent, so
a higher sensitivity moves less often.
"""
from __future__ import annotations

import dataclasses

from vio4wd_agent.relay.model import Direction

BYTES_PER_PACKET = 512.0
# Below this total load (packets/s) there is nothing worth moving for.
IDLE_LOAD = 1000.0


@dataclasses.dataclass(frozen=True)
class Load:
    relay_id: int
    direction: Direction
    cpu: int | None            # where it runs now
    load: float                # packets/s + bytes/s / BYTES_PER_PACKET
    numa: int | None = None    # the relay's node
    pinned: bool = False


@dataclasses.dataclass(frozen=True)
class Move:
    relay_id: int
    direction: Direction
    src: int | None
    dst: int
    load: float


@dataclasses.dataclass(frozen=True)
class Plan:
    moves: list[Move]
    busiest_before: float
    busiest_after: float


def load_of(pkts_per_s: float, bytes_per_s: float) -> float:
    return pkts_per_s + bytes_per_s / BYTES_PER_PACKET


def _busiest(placed: dict[int, float]) -> float:
    return max(placed.values(), default=0.0)


def plan(loads: list[Load], workers: dict[int, int | None], *,
         sensitivity: float, cross_numa: bool = False,
         max_moves: int = 64) -> Plan:
    """``workers``: worker CPU -> its NUMA node.  Returns the moves to make
    (none when the gain is below ``sensitivity`` percent)."""
    placed = {cpu: 0.0 for cpu in workers}
    at: dict[tuple[int, Direction], int | None] = {}
    for item in loads:
        at[(item.relay_id, item.direction)] = item.cpu
        if item.cpu in placed:
            placed[item.cpu] += item.load
    busiest = _busiest(placed)
    if not workers or sum(placed.values()) < IDLE_LOAD:
        return Plan([], busiest, busiest)

    def allowed(item: Load) -> list[int]:
        cpus = [cpu for cpu, node in workers.items()
                if cross_numa or item.numa is None or node == item.numa]
        return cpus or list(workers)

    movable = [i for i in loads if not i.pinned and i.load > 0]
    # Directions on no worker we know (just added) are placed first.
    for item in sorted((i for i in movable if i.cpu not in placed),
                       key=lambda i: -i.load):
        dst = min(allowed(item), key=lambda cpu: (placed[cpu], cpu))
        placed[dst] += item.load
        at[(item.relay_id, item.direction)] = dst
    # Then: take from the busiest worker the move that lowers the peak of
    # the pair most, until none does.  Few moves, each one worth it.
    for _ in range(max_moves):
        src = max(placed, key=lambda cpu: (placed[cpu], -cpu))
        best: tuple[float, Load, int] | None = None
        for item in movable:
            if at[(item.relay_id, item.direction)] != src:
                continue
            for dst in allowed(item):
                if dst == src:
                    continue
                peak = max(placed[src] - item.load, placed[dst] + item.load)
                if peak < placed[src] - 1e-9 and (best is None or
                                                  peak < best[0]):
                    best = (peak, item, dst)
        if best is None:
            break
        _, item, dst = best
        placed[src] -= item.load
        placed[dst] += item.load
        at[(item.relay_id, item.direction)] = dst

    after = _busiest(placed)
    if busiest <= 0 or (busiest - after) * 100.0 < sensitivity * busiest:
        return Plan([], busiest, busiest)
    moves = [Move(i.relay_id, i.direction, i.cpu,
                  at[(i.relay_id, i.direction)] or 0, i.load)
             for i in movable
             if at[(i.relay_id, i.direction)] != i.cpu]
    return Plan(moves, busiest, after)
