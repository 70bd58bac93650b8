# SPDX-License-Identifier: Apache-2.0
"""What Neutron hears of the ports and VMs (pure logic)."""
from __future__ import annotations

import dataclasses

from vio4wd_agent.neutron import ports
from vio4wd_agent.relay.model import DirectionStats, RelaySpec, RelayState

P1 = "4f1c2d3e-5a6b-4c7d-8e9f-001122334455"
P2 = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f00112233"


def state(relay_id: int, vf_ready: bool = True, vm: bool = True,
          connects: int = 1) -> RelayState:
    d = DirectionStats(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, None)
    return RelayState(relay_id, "/s/%d" % relay_id, "vf", 0, vf_ready, vm,
                      False, 0, None, 1500, 0, connects, d, d)


def spec(relay_id: int, port: str = "") -> RelaySpec:
    return RelaySpec(relay_id, "/s/%d" % relay_id, vf="net_null0",
                     port_id=port)


def test_up_needs_the_vf_and_the_vm():
    specs = {1: spec(1, P1), 2: spec(2, P2), 3: spec(3)}
    want = ports.desired(specs, [state(1), state(2, vm=False), state(3)])
    assert want == {P1: True, P2: False}
    # a port whose relay the data plane does not show is down
    assert ports.desired({1: spec(1, P1)}, []) == {P1: False}
    assert ports.desired({1: spec(1, P1)},
                         [state(1, vf_ready=False)]) == {P1: False}
    # QEMU on the socket, its guest paused (device not ready): up
    paused = dataclasses.replace(state(1, vm=False), vm_on_socket=True)
    assert ports.desired({1: spec(1, P1)}, [paused]) == {P1: True}


def test_only_changes_are_sent_until_acknowledged():
    status = ports.PortStatus()
    assert status.pending({P1: True, P2: False}) == ([P1], [P2])
    # not acknowledged: asked again
    assert status.pending({P1: True, P2: False}) == ([P1], [P2])
    status.acknowledged([P1], [])
    assert status.pending({P1: True, P2: False}) == ([], [P2])
    status.acknowledged([], [P2])
    assert status.pending({P1: True, P2: False}) == ([], [])
    assert status.pending({P1: False, P2: True}) == ([P2], [P1])


def test_a_gone_relay_is_down_once_then_forgotten():
    status = ports.PortStatus()
    status.acknowledged([P1], [])
    assert status.pending({}) == ([], [P1])
    assert status.pending({}) == ([], [P1])       # until acknowledged
    status.acknowledged([], [P1])
    assert status.pending({}) == ([], [])
    assert status.told() == {}


def test_resync_tells_everything_again():
    status = ports.PortStatus()
    status.acknowledged([P1], [P2])
    status.resync()
    assert status.pending({P1: True, P2: False}) == ([P1], [P2])
    # a port told up before the resync and gone since: down
    status.acknowledged([P1], [P2])
    status.resync()
    assert status.pending({P2: False}) == ([], [P1, P2])


def test_vm_connect_and_disconnect_events():
    watch = ports.VmWatch()
    specs = {1: spec(1, P1)}
    assert watch.events(specs, [state(1, vm=False, connects=0)]) == []
    [ev] = watch.events(specs, [state(1, vm=True, connects=1)])
    assert ev.connected and ev.spec.port_id == P1
    assert watch.events(specs, [state(1, vm=True, connects=1)]) == []
    # reconnected between two looks: both
    evs = watch.events(specs, [state(1, vm=True, connects=2)])
    assert [e.connected for e in evs] == [False, True]
    [ev] = watch.events(specs, [state(1, vm=False, connects=2)])
    assert not ev.connected
    # a relay gone and made again starts afresh
    assert watch.events({}, []) == []
    [ev] = watch.events(specs, [dataclasses.replace(state(1), relay_id=1)])
    assert ev.connected
