# SPDX-License-Identifier: Apache-2.0
"""The core scheduler's planner, on made-up loads."""
from __future__ import annotations

from vio4wd_agent.relay.model import Direction
from vio4wd_agent.scheduler.balance import Load, load_of, plan

A, B = Direction.VF_TO_VM, Direction.VM_TO_VF
TWO = {1: 0, 2: 0}


def moves(p):
    return sorted((m.relay_id, m.direction, m.src, m.dst) for m in p.moves)


def test_load_weighs_bytes_as_well_as_packets():
    assert load_of(1000, 0) == 1000
    assert load_of(1000, 64000) == 1125
    assert load_of(1000, 1518000) > 3 * load_of(1000, 64000)


def test_two_heavy_directions_on_one_worker_are_split():
    p = plan([Load(1, A, 1, 1e6), Load(2, A, 1, 1e6), Load(1, B, 2, 10)],
             TWO, sensitivity=25)
    assert len(p.moves) == 1 and p.moves[0].dst == 2
    assert (p.busiest_before, p.busiest_after) == (2e6, 1e6 + 10)


def test_balanced_or_idle_stays_put():
    assert plan([Load(1, A, 1, 1e6), Load(2, A, 2, 1e6)], TWO,
                sensitivity=1).moves == []
    assert plan([Load(1, A, 1, 400), Load(2, A, 1, 400)], TWO,
                sensitivity=1).moves == []          # below IDLE_LOAD
    assert plan([], {}, sensitivity=1).moves == []


def test_sensitivity_is_the_gain_needed():
    loads = [Load(1, A, 1, 100e3), Load(2, A, 1, 90e3), Load(3, A, 2, 80e3)]
    # best: 90k to CPU 2 -> peaks 190k -> 170k, a 10.5% gain
    assert plan(loads, TWO, sensitivity=25).moves == []
    p = plan(loads, TWO, sensitivity=10)
    assert moves(p) == [(2, A, 1, 2)] and p.busiest_after == 170e3


def test_pinned_directions_stay_and_count():
    p = plan([Load(1, A, 1, 1e6, pinned=True), Load(2, A, 1, 1e6),
              Load(3, A, 1, 1e6, pinned=True)], TWO, sensitivity=10)
    assert moves(p) == [(2, A, 1, 2)]
    # only pinned ones on the busy worker: nothing to do
    assert plan([Load(1, A, 1, 1e6, pinned=True),
                 Load(2, A, 1, 1e6, pinned=True)], TWO,
                sensitivity=1).moves == []


def test_few_moves_and_a_fair_result():
    loads = [Load(i, d, 1, 1e5) for i in range(4) for d in (A, B)]
    p = plan(loads, {1: 0, 2: 0, 3: 0, 4: 0}, sensitivity=10)
    assert len(p.moves) == 6 and p.busiest_after == 2e5
    per_cpu = {}
    for m in p.moves:
        per_cpu[m.dst] = per_cpu.get(m.dst, 0) + 1
    assert sorted(per_cpu.values()) == [2, 2, 2]


def test_numa_local_unless_global():
    workers = {1: 0, 2: 0, 3: 1}
    loads = [Load(1, A, 1, 1e6, numa=0), Load(2, A, 1, 1e6, numa=0),
             Load(3, A, 2, 1e6, numa=0)]
    assert plan(loads, workers, sensitivity=10).moves == []
    p = plan(loads, workers, sensitivity=10, cross_numa=True)
    assert [m.dst for m in p.moves] == [3]
    # a relay whose node has no worker may go anywhere
    p = plan([Load(1, A, 1, 1e6, numa=5), Load(2, A, 1, 1e6, numa=5)],
             TWO, sensitivity=10)
    assert len(p.moves) == 1


def test_one_worker_has_nowhere_to_move():
    assert plan([Load(1, A, 1, 1e6), Load(2, A, 1, 1e6)], {1: 0},
                sensitivity=1).moves == []
