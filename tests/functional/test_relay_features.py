# SPDX-License-Identifier: Apache-2.0
"""What the relay offers the guest, where its memory sits, and where its
directions run."""
from __future__ import annotations

import struct

import pytest

from vio4wd_agent import exception
from vio4wd_agent.demo import rawport
from vio4wd_agent.relay.model import RelaySpec
from tests.functional import util
from tests.functional.conftest import (KERNEL_MAC, VM_MAC, connected,
                                       relay_spec)


def _vm_tx_offloads(vm) -> str:
    return vm.cmd("show port 0 tx_offload capabilities")


@pytest.mark.parametrize("vf,tso,expect_tso,expect_csum", [
    ("net_null20", False, False, False),   # nothing offered without TSO
    ("net_null20", True, False, False),    # net_null cannot finish it
    ("", True, False, False),              # no VF yet: nothing it cannot
])                                         # finish (see below)
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


def test_a_pool_move_that_fails_leaves_the_relay_forwarding(
        engine, sockdir, vm_factory):
    """A move to a node without memory (node 1 of this one-node machine)
    fails with DPDK's reason; the VF and the VM stay where they were and
    traffic goes on."""
    spec = relay_spec(25, sockdir, "net_null25")
    engine.add_relay(spec)
    vm = vm_factory(spec.vhost_path)
    util.wait_for(connected(engine, 25), what="VM connected")
    vm.forward("rxonly")
    with pytest.raises(exception.EngineError,
                       match="relay 25: cannot create a mempool .* on NUMA "
                       "node 1"):
        engine.set_numa_node(25, 1)
    st = engine.relay(25)
    assert st.vf_ready and st.vm_connected and st.numa_node == 0
    assert st.pool_moves == 0 and engine.resources().mempools == 1
    before = st.vf_to_vm.tx_pkts
    util.wait_for(lambda: engine.relay(25).vf_to_vm.tx_pkts > before + 1000,
                  what="traffic after the failed move")


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


def _udp_checksum_ok(frame: bytes) -> bool:
    """The UDP checksum of an IPv4/UDP frame is set and verifies."""
    ip = frame[14:34]
    ihl = (ip[0] & 0xF) * 4
    udp = frame[14 + ihl:]
    length = struct.unpack("!H", udp[4:6])[0]
    if struct.unpack("!H", udp[6:8])[0] == 0:
        return False
    pseudo = ip[12:20] + struct.pack("!BBH", 0, 17, length)
    data = pseudo + udp[:length]
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total == 0xFFFF


def test_offloads_follow_the_vf_and_are_finished_when_it_changes(
        engine, sockdir, vm_factory, veth, kernel_port, test_netns):
    """A socket made before its VF offers no offloads; once a VF that can
    finish them (net_tap: checksums, TSO) is attached, the next VM
    connection gets them.  When that VF is then swapped, under the same
    VM, for one that cannot (af_packet), the checksums the guest leaves
    to the VF are computed by the relay: they arrive right."""
    spec = relay_spec(24, sockdir, "", tso=True)
    engine.add_relay(spec)
    vm = vm_factory(spec.vhost_path)
    util.wait_for(connected(engine, 24), what="VM connected")
    caps = _vm_tx_offloads(vm)
    assert "TCP_TSO" not in caps and "UDP_CKSUM" not in caps, caps
    vm.stop()
    util.wait_for(lambda: not engine.relay(24).vm_connected,
                  what="VM gone")

    tap = "v4off24"
    engine.set_vf(RelaySpec(24, spec.vhost_path, tso=True,
                            vf="net_tap24,iface=%s" % tap))
    # The guest asks for UDP checksums in hardware and echoes what it
    # gets (testpmd's csum engine, UDP_CKSUM as a tx offload).
    vm = vm_factory(spec.vhost_path, extra=["--tx-offloads=0x4"])
    util.wait_for(connected(engine, 24), what="VM connected again")
    caps = _vm_tx_offloads(vm)
    assert "TCP_TSO" in caps and "UDP_CKSUM" in caps, caps
    vm.forward("csum")

    engine.clear_vf(24)
    dpdk_if, kernel_if = veth()
    engine.set_vf(RelaySpec(24, spec.vhost_path, tso=True,
                            vf="net_af_packet24,iface=%s" % dpdk_if))
    assert engine.relay(24).vm_connected      # the same VM all along
    port = kernel_port(kernel_if)

    def junk_checksum(i: int) -> bytes:
        # (A UDP checksum of 0 means "none": testpmd leaves those alone.)
        f = rawport.udp_frame(VM_MAC, KERNEL_MAC, i % 8, i, size=128)
        return f[:40] + b"\x12\x34" + f[42:]
    util.send_paced(lambda i: port.send(junk_checksum(i)), 50,
                    lambda: engine.relay(24).vf_to_vm.rx_pkts)
    st = util.drained(lambda: engine.relay(24), lambda s: (
        s.vf_to_vm.held == 0 and s.vm_to_vf.held == 0 and
        s.vm_to_vf.rx_pkts == s.vf_to_vm.tx_pkts))
    assert st.vm_to_vf.tx_pkts > 0
    frames = []
    port.sock.settimeout(util.DEADLINE)
    while len(frames) < st.vm_to_vf.tx_pkts:
        data, addr = port.sock.recvfrom(65535)
        if addr[2] != rawport.PACKET_OUTGOING and \
                rawport.udp_flow_seq(data) is not None:
            frames.append(data)
    assert all(_udp_checksum_ok(f) for f in frames), [f[:60].hex() for f in frames[:3]]
