# SPDX-License-Identifier: Apache-2.0
"""What the relay offers the guest, where its memory sits, and where its
directions run."""
from __future__ import annotations

import pytest

from vio4wd_agent import exception
from vio4wd_agent.relay.model import RelaySpec
from tests.functional import util
from tests.functional.conftest import connected, relay_spec


def _vm_tx_offloads(vm) -> str:
    return vm.cmd("show port 0 tx_offload capabilities")


@pytest.mark.parametrize("vf,tso,expect_tso,expect_csum", [
    ("net_null20", False, False, False),   # nothing offered without TSO
    ("net_null20", True, False, False),    # net_null cannot finish it
    ("", True, True, True),                # no VF yet: as configured
])
def test_offloads_offered_to_the_guest(engine, sockdir, vm_factory, vf, tso,
                                       expect_tso, expect_csum):
    spec = relay_spec(20, sockdir, vf, tso=tso)
    engine.add_relay(spec)
    vm = vm_factory(spec.vhost_path)
    util.wait_for(connected(engine, 20), what="VM connected")
    caps = _vm_tx_offloads(vm)
    assert ("TCP_TSO" in caps) == expect_tso, caps
    assert ("TCP_CKSUM" in caps) == expect_csum, caps


def test_socket_only_relay_counts_vm_traffic_as_vf_not_ready(
        engine, sockdir, vm_factory):
    spec = relay_spec(21, sockdir, "")
    state = engine.add_relay(spec)
    assert state.vf_port is None and not state.vf_ready
    vm = vm_factory(spec.vhost_path)
    util.wait_for(connected(engine, 21), what="VM connected")
    vm.forward("txonly", "set txpkts 64")
    util.wait_for(lambda: engine.relay(21).vm_to_vf.drop_noconn_pkts > 1000,
                  what="VM traffic dropped as VF not ready")
    vm.cmd("stop")
    sent = vm.port_stats().tx_packets
    out = util.drained(lambda: engine.relay(21).vm_to_vf, lambda d: (
        d.held == 0 and d.rx_pkts == sent))
    assert out.tx_pkts == 0
    assert out.rx_pkts == out.drop_noconn_pkts == sent


def test_numa_hint_places_the_pool_before_the_vm(engine, sockdir,
                                                vm_factory):
    spec = relay_spec(23, sockdir, "net_null23", numa_hint=0)
    st = engine.add_relay(spec)
    assert st.numa_node == 0 and st.vm_numa_node is None
    vm_factory(spec.vhost_path)
    util.wait_for(connected(engine, 23), what="VM connected")
    st = engine.relay(23)
    # The VM's memory is where the hint said: nothing to move.
    assert st.vm_numa_node == 0 and st.pool_moves == 0


def test_mempool_moves_to_a_numa_node_under_traffic(engine, sockdir,
                                                    vm_factory):
    """The move a VM connecting on another node triggers, forced here (one
    node on this machine): the pool is rebuilt, the VF restarted on it,
    traffic goes on and the counters still add up."""
    spec = relay_spec(22, sockdir, "net_null22")
    engine.add_relay(spec)
    vm = vm_factory(spec.vhost_path)
    util.wait_for(connected(engine, 22), what="VM connected")
    st = engine.relay(22)
    assert st.vm_numa_node == st.numa_node == 0 and st.pool_moves == 0
    vm.forward("txonly", "set txpkts 64")
    util.wait_for(lambda: engine.relay(22).vm_to_vf.tx_pkts > 10000,
                  what="traffic")
    for moves in range(1, 6):
        engine.set_numa_node(22, 0)
        st = engine.relay(22)
        assert st.pool_moves == moves and st.vf_ready and st.vm_connected
        before = st.vm_to_vf.tx_pkts
        util.wait_for(lambda: engine.relay(22).vm_to_vf.tx_pkts > before,
                      what="traffic after move %d" % moves)
    assert engine.resources().mempools == 1
    vm.cmd("stop")
    sent = vm.port_stats().tx_packets
    d = util.drained(lambda: engine.relay(22).vm_to_vf, lambda d: (
        d.held == 0 and d.rx_pkts == sent))
    assert d.rx_pkts == d.tx_pkts + d.dropped_pkts


def test_unpinned_directions_go_to_the_least_loaded_worker(
        multi_worker_engine, sockdir):
    e = multi_worker_engine
    assert e.workers() == [1, 2, 3]
    specs = [RelaySpec(i, "%s/p%d.sock" % (sockdir, i)) for i in range(4)]
    try:
        placed = []
        for s in specs[:3]:
            st = e.add_relay(s)
            placed.append([st.vf_to_vm.cpu, st.vm_to_vf.cpu])
        # Six directions over three workers: two each, in turn.
        assert placed == [[1, 2], [3, 1], [2, 3]]
        st = e.add_relay(RelaySpec(3, specs[3].vhost_path, cpus=(3, 3)))
        assert (st.vf_to_vm.cpu, st.vm_to_vf.cpu) == (3, 3)
        assert [w.directions for w in e.worker_stats()] == [2, 2, 4]
        for cpus, text in (((0, 1), "CPU 0 for VF->VM"),
                           ((4, None), "CPU 4 for VF->VM")):
            with pytest.raises(exception.InvalidArgument, match=text):
                e.add_relay(RelaySpec(9, sockdir + "/p9.sock", cpus=cpus))
        # Relay 0 leaves workers 1 and 2 one direction short: refilled.
        e.remove_relay(0)
        st = e.add_relay(specs[0])
        assert sorted([st.vf_to_vm.cpu, st.vm_to_vf.cpu]) == [1, 2]
    finally:
        for relay_id in e.relay_ids():
            e.remove_relay(relay_id)


def test_vf_attached_to_a_socket_only_relay_without_dropping_the_vm(
        engine, sockdir, vm_factory):
    spec = relay_spec(24, sockdir, "")
    engine.add_relay(spec)
    vm = vm_factory(spec.vhost_path)
    util.wait_for(connected(engine, 24), what="VM connected")
    vm.forward("rxonly")
    st = engine.set_vf(RelaySpec(24, spec.vhost_path, vf="net_null24"))
    assert st.vf_ready and st.vm_connected and st.vm_connects == 1
    util.wait_for(lambda: vm.port_stats().rx_packets > 1000,
                  what="traffic from the VF attached later")
    with pytest.raises(exception.ResourceBusy, match="already has VF"):
        engine.set_vf(RelaySpec(24, spec.vhost_path, vf="net_null25"))
    st = engine.clear_vf(24)
    assert st.vf_port is None and st.vm_connected and st.vm_connects == 1
    assert st.reason == "no VF attached"
    assert engine.resources().ports == 0
    # and again, with a bond this time
    st = engine.set_vf(RelaySpec(24, spec.vhost_path, vf="net_bonding24",
                                 bond_members=("net_null26", "net_null27")))
    assert st.bond_members == 2 and st.vm_connects == 1
    with pytest.raises(exception.EngineError, match="net_bogus0"):
        engine.clear_vf(24)
        engine.set_vf(RelaySpec(24, spec.vhost_path, vf="net_bogus0"))
    assert engine.relay(24).vf_port is None and engine.resources().ports == 0
