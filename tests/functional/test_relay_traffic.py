# SPDX-License-Identifier: Apache-2.0
"""A relay between net_af_packet on a veth and a testpmd virtio-user VM:
frames cross both ways and the relay's counters equal what was sent."""
from __future__ import annotations

from tests.functional import util
from tests.functional.conftest import (KERNEL_MAC, VM_MAC, connected,
                                       relay_spec)


def test_kernel_to_vm_and_back(engine, sockdir, veth, vm_factory,
                               kernel_port, test_netns):
    dpdk_if, kernel_if = veth()
    spec = relay_spec(1, sockdir, "net_af_packet1,iface=%s" % dpdk_if)
    state = engine.add_relay(spec)
    assert state.vf_ready and not state.vm_connected
    assert state.vf_to_vm.cpu is not None

    vm = vm_factory(spec.vhost_path)
    util.wait_for(connected(engine, 1), what="VM connected")
    vm.forward("rxonly")
    port = kernel_port(kernel_if)

    # kernel -> VF -> relay -> VM
    port.send_frames(VM_MAC, KERNEL_MAC, 1000)
    util.wait_for(lambda: vm.port_stats().rx_packets >= 1000, what="VM rx")
    relay = util.wait_stable(lambda: engine.relay(1).vf_to_vm)
    assert vm.port_stats().rx_packets == 1000
    assert relay.rx_pkts == 1000
    assert relay.tx_pkts == 1000
    assert relay.tx_bytes == relay.rx_bytes == 1000 * 60  # no FCS on veth
    assert relay.dropped_pkts == 0 and relay.held == 0

    # VM -> relay -> VF -> kernel
    before = test_netns.counters(kernel_if)["rx_packets"]
    vm.forward("txonly", "set txpkts 64")
    util.wait_for(lambda: engine.relay(1).vm_to_vf.rx_pkts > 5000,
                  what="VM traffic reaching the relay")
    vm.cmd("stop")
    vm_sent = vm.port_stats().tx_packets
    out = util.wait_stable(lambda: engine.relay(1).vm_to_vf)
    assert out.rx_pkts == vm_sent
    assert out.held == 0
    assert out.tx_pkts + out.dropped_pkts == out.rx_pkts
    assert out.drop_noconn_pkts == 0
    assert out.tx_pkts > 0
    got = util.wait_stable(
        lambda: test_netns.counters(kernel_if)["rx_packets"]) - before
    assert got == out.tx_pkts
    assert out.tx_bytes == out.tx_pkts * 64


def test_frames_keep_content_and_order(engine, sockdir, veth, vm_factory,
                                       kernel_port):
    """The VM bounces frames (macswap): the kernel gets every sequence
    number back, in order."""
    dpdk_if, kernel_if = veth()
    spec = relay_spec(2, sockdir, "net_af_packet2,iface=%s" % dpdk_if)
    engine.add_relay(spec)
    vm = vm_factory(spec.vhost_path)
    util.wait_for(connected(engine, 2), what="VM connected")
    vm.forward("macswap")
    port = kernel_port(kernel_if)
    port.send_frames(VM_MAC, KERNEL_MAC, 500, size=200)
    seqs = port.receive(timeout=10, until=500)
    assert seqs == list(range(500))
    st = engine.relay(2)
    assert st.vf_to_vm.tx_pkts == st.vm_to_vf.tx_pkts == 500
