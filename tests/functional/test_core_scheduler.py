# SPDX-License-Identifier: Apache-2.0
"""The core scheduler on a real data plane with three workers: relay
directions crowded on one worker are spread by their measured load,
pinned ones stay."""
from __future__ import annotations

import pytest

from vio4wd_agent.manager import MoveDirection, RelayManager
from vio4wd_agent.relay.model import Direction, RelaySpec
from vio4wd_agent.scheduler.daemon import CoreBalancer
from vio4wd_agent.vhostuser.sockets import SocketPolicy
from tests.functional import util

A = Direction.VF_TO_VM


@pytest.fixture
def managed(multi_worker_engine, sockdir):
    policy = SocketPolicy(sockdir, "vf%u.sock", 0, 0, 0o600)
    mgr = RelayManager(multi_worker_engine, policy)
    mgr.start()
    yield mgr, multi_worker_engine, policy
    for relay_id in multi_worker_engine.relay_ids():
        mgr.remove(relay_id, source="test")
    mgr.stop()
    assert multi_worker_engine.resources().ports == 0


def crowd(mgr, remote, policy, vm_factory, ids, pinned=()):
    """Relays whose VF (net_null: frames as fast as they are read) feeds
    VF->VM, all of them on worker 1, and one VM with a port on each (a
    VF is polled only while its VM is there)."""
    for i in ids:
        mgr.add(RelaySpec(i, policy.path_for(i), vf="net_null%d" % i),
                source="test")
        mgr.submit(MoveDirection(i, A, 1, source="test",
                                 persist=i in pinned)).result()
    assert {remote.relay(i).vf_to_vm.cpu for i in ids} == {1}
    vm = vm_factory([policy.path_for(i) for i in ids])
    util.wait_for(lambda: all(remote.relay(i).vm_connected for i in ids),
                  what="the VM on every relay")
    vm.forward("rxonly")


def balance_round(balancer, remote, ids):
    """Two samples with real traffic on every relay between them (not a
    fixed time: three workers share one CPU here, and a loaded machine
    may run them very little for a while)."""
    balancer.step()
    base = {i: remote.relay(i).vf_to_vm.rx_pkts for i in ids}
    util.wait_for(lambda: all(remote.relay(i).vf_to_vm.rx_pkts >
                              base[i] + 100000 for i in ids),
                  what="traffic on every relay between two samples")
    return balancer.step()


def test_crowded_directions_are_spread(managed, vm_factory):
    mgr, remote, policy = managed
    crowd(mgr, remote, policy, vm_factory, (40, 41, 42))
    balancer = CoreBalancer(mgr, remote, poll_interval=1, sensitivity=25)
    plan = balance_round(balancer, remote, (40, 41, 42))
    assert plan is not None and len(plan.moves) == 2, plan
    assert sorted(remote.relay(i).vf_to_vm.cpu for i in (40, 41, 42)) == \
        [1, 2, 3]
    assert plan.busiest_after < plan.busiest_before * 0.75
    # balanced now: the next round leaves things where they are
    assert balance_round(balancer, remote, (40, 41, 42)).moves == []
    # the scheduler's moves are not pins
    assert mgr.pinned()[40] == (False, False)


def test_pinned_directions_stay(managed, vm_factory):
    mgr, remote, policy = managed
    crowd(mgr, remote, policy, vm_factory, (43, 44), pinned=(43,))
    assert mgr.pinned()[43] == (True, False)
    balancer = CoreBalancer(mgr, remote, poll_interval=1, sensitivity=25)
    plan = balance_round(balancer, remote, (43, 44))
    assert [(m.relay_id, m.src) for m in plan.moves] == [(44, 1)]
    assert remote.relay(43).vf_to_vm.cpu == 1
    assert remote.relay(44).vf_to_vm.cpu in (2, 3)
