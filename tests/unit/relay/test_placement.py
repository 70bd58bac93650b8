# SPDX-License-Identifier: Apache-2.0
"""The placement policy of the data plane (pure C functions, no EAL)."""
from __future__ import annotations

from vio4wd_agent.relay._dpdk import ffi, lib

NONE = lib.V4W_NONE


def test_pool_node_before_the_vm():
    assert lib.v4w_pick_node(1, 0, 0) == 1          # a hint wins
    assert lib.v4w_pick_node(NONE, 1, 0) == 1       # else the VF's node
    assert lib.v4w_pick_node(NONE, NONE, 1) == 1    # vdev: the main lcore's
    assert lib.v4w_pick_node(NONE, NONE, NONE) == 0


def test_pool_follows_the_vm():
    assert lib.v4w_move_target(0, 1) == 1
    assert lib.v4w_move_target(1, 1) == NONE        # already there
    assert lib.v4w_move_target(0, NONE) == NONE     # VM's node unknown


def _pick(nodes: list[int], load: list[int], node: int) -> int:
    return lib.v4w_pick_worker(ffi.new("int32_t[]", nodes),
                               ffi.new("uint32_t[]", load), len(nodes), node)


def test_worker_on_the_relays_node_first():
    nodes = [0, 0, 1, 1]
    assert _pick(nodes, [5, 3, 0, 0], 0) == 1       # least loaded on node 0
    assert _pick(nodes, [5, 3, 1, 0], 1) == 3
    assert _pick(nodes, [0, 0, 0, 0], 1) == 2       # ties: lower index


def test_worker_elsewhere_when_the_node_has_none():
    assert _pick([0, 0], [4, 2], 1) == 1
    assert _pick([0, 1], [4, 2], NONE) == 1          # no preference
    assert _pick([], [], 0) == NONE
