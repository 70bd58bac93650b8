# SPDX-License-Identifier: Apache-2.0
"""The VM side coming and going: client-mode reconnects, disconnects under
traffic, and the counters that say what happened meanwhile."""
from __future__ import annotations

import os

from vio4wd_agent.demo import rawport
from tests.functional import util
from tests.functional.conftest import (KERNEL_MAC, VM_MAC, connected,
                                       relay_spec)


def _conserved(d) -> bool:  # type: ignore[no-untyped-def]
    return d.rx_pkts == d.tx_pkts + d.dropped_pkts + d.held


def test_vf_not_polled_without_vm(engine, sockdir, vm_factory):
    """A relay with no VM leaves its VF alone (net_null would hand it
    frames as fast as it polls): nothing taken, nothing dropped in
    software, the worker's time left to relays that have a VM."""
    spec = relay_spec(6, sockdir, "net_null6")
    engine.add_relay(spec)
    util.rounds_pass(engine)
    idle = engine.relay(6).vf_to_vm
    assert idle.rx_pkts == 0 and idle.dropped_pkts == 0
    vm = vm_factory(spec.vhost_path)
    util.wait_for(connected(engine, 6), what="VM connected")
    vm.forward("rxonly")
    util.wait_for(lambda: vm.port_stats().rx_packets > 10000,
                  what="VF->VM once the VM is there")


def test_client_mode_reconnects_when_vm_restarts(engine, sockdir, veth,
                                                 vm_factory, kernel_port):
    dpdk_if, kernel_if = veth()
    spec = relay_spec(3, sockdir, "net_af_packet3,iface=%s" % dpdk_if,
                      client=True)
    state = engine.add_relay(spec)
    assert state.client and not state.vm_connected
    # In client mode the socket belongs to the VM: nothing there yet.
    assert not os.path.exists(spec.vhost_path)
    port = kernel_port(kernel_if)

    for round_no in (1, 2):
        vm = vm_factory(spec.vhost_path, server=True)
        util.wait_for(connected(engine, 3),
                      what="relay reconnected (round %d)" % round_no)
        assert engine.relay(3).vm_connects == round_no
        vm.forward("rxonly")
        # Paced by the VM: it never lags enough to lose a frame.
        util.send_paced(lambda i: port.send(rawport.frame(
            VM_MAC, KERNEL_MAC, round_no * 1000 + i)), 200,
            lambda: vm.port_stats().rx_packets, what="the VM")
        assert vm.port_stats().rx_packets == 200
        vm.stop()
        util.wait_for(lambda: not engine.relay(3).vm_connected,
                      what="disconnect seen")

    # Frames sent while no VM is there are not taken off the VF: the relay
    # does not poll a VF without a VM (a NIC's ring fills and drops in
    # hardware; this af_packet stand-in's ring holds them).
    before = engine.relay(3).vf_to_vm
    for i in range(100):
        port.send(rawport.frame(VM_MAC, KERNEL_MAC, 5000 + i))
    util.rounds_pass(engine)
    assert engine.relay(3).vf_to_vm == before
    # Taken once a VM is there: nothing was lost on the VF.  (This VM's
    # queue has no buffers until its forwarding starts, so they may count
    # as "VM queue full"; a guest driver posts buffers first.)
    vm = vm_factory(spec.vhost_path, server=True)
    util.wait_for(connected(engine, 3), what="relay reconnected (round 3)")
    after = util.drained(lambda: engine.relay(3).vf_to_vm,
                         lambda d: d.held == 0 and
                         d.rx_pkts == before.rx_pkts + 100)
    assert after.tx_pkts + after.dropped_pkts == 500
    assert _conserved(after)


def test_vm_killed_under_traffic_then_back(engine, sockdir, vm_factory):
    """Both directions loaded (net_null floods VF->VM, the VM floods
    VM->VF) when the VM is SIGKILLed: no crash, drops counted as not
    connected, traffic resumes when a VM comes back."""
    spec = relay_spec(4, sockdir, "net_null4")
    engine.add_relay(spec)
    vm = vm_factory(spec.vhost_path)
    util.wait_for(connected(engine, 4), what="VM connected")
    vm.forward("txonly", "set txpkts 64")
    util.wait_for(lambda: engine.relay(4).vm_to_vf.tx_pkts > 100000,
                  what="VM->VF traffic")
    # A VM in txonly never drains its rx ring: VF->VM fills it, then
    # counts "VM queue full" drops.
    util.wait_for(lambda: engine.relay(4).vf_to_vm.drop_full_pkts > 1000,
                  what="VM queue full drops")
    # While the VM is connected nothing counts as "not connected".
    noconn = engine.relay(4).vf_to_vm.drop_noconn_pkts
    full = engine.relay(4).vf_to_vm.drop_full_pkts
    util.wait_for(lambda: engine.relay(4).vf_to_vm.drop_full_pkts > full,
                  what="more VM queue full drops")
    assert engine.relay(4).vf_to_vm.drop_noconn_pkts == noconn
    vm.kill()
    util.wait_for(lambda: not engine.relay(4).vm_connected,
                  what="disconnect seen")
    # Not polled without a VM: the VF->VM count stops (what was held when
    # the VM went, one burst at most, counts as "not connected").
    mid = util.drained(lambda: engine.relay(4), lambda r: True,
                       what="VF->VM to stop")
    assert mid.vf_to_vm.drop_noconn_pkts - noconn <= 32
    util.rounds_pass(engine)
    assert engine.relay(4).vf_to_vm == mid.vf_to_vm
    assert engine.relay(4).vm_to_vf.rx_pkts == mid.vm_to_vf.rx_pkts

    vm2 = vm_factory(spec.vhost_path)
    util.wait_for(connected(engine, 4), what="VM reconnected")
    vm2.forward("rxonly")
    util.wait_for(lambda: vm2.port_stats().rx_packets > 10000,
                  what="traffic resumed to the new VM")
    end = engine.relay(4)
    assert end.vm_connects == 2
    for d in (end.vf_to_vm, end.vm_to_vf):
        assert _conserved(d), d
    vm2.stop()
    util.wait_for(lambda: not engine.relay(4).vm_connected,
                  what="second disconnect")


def test_relay_removed_while_vm_sends(engine, sockdir, vm_factory):
    """Removal never leaves a worker on freed memory: remove and re-add the
    same relay under VM traffic, many times."""
    spec = relay_spec(5, sockdir, "net_null5")
    engine.add_relay(spec)
    vm = vm_factory(spec.vhost_path)
    util.wait_for(connected(engine, 5), what="VM connected")
    vm.forward("txonly", "set txpkts 64")
    for _ in range(10):
        engine.remove_relay(5)
        engine.add_relay(spec)
    # testpmd (server side gone) does not reconnect: the relay is up,
    # empty-handed, and consistent.
    state = engine.relay(5)
    assert _conserved(state.vf_to_vm) and _conserved(state.vm_to_vf)
