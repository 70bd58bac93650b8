# SPDX-License-Identifier: Apache-2.0
"""A relay between net_af_packet on a veth and a testpmd virtio-user VM:
frames cross both ways and the relay's counters equal what was sent."""
from __future__ import annotations

from vio4wd_agent.demo import rawport
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
    util.send_paced(lambda i: port.send(rawport.frame(VM_MAC, KERNEL_MAC, i)),
                    1000, lambda: engine.relay(1).vf_to_vm.rx_pkts)
    relay, vm_rx = util.drained(
        lambda: (engine.relay(1).vf_to_vm, vm.port_stats().rx_packets),
        lambda v: v[0].held == 0 and v[0].tx_pkts == v[1])
    assert relay.rx_pkts == 1000
    assert relay.rx_bytes == 1000 * 60      # no FCS on veth
    # A VM that stalls for longer than the retry budget loses frames, but
    # only as counted "queue full" drops.
    assert relay.tx_pkts + relay.drop_full_pkts == 1000
    assert relay.drop_noconn_pkts == 0 and relay.tx_pkts > 0
    assert relay.tx_bytes == relay.tx_pkts * 60

    # VM -> relay -> VF -> kernel
    before = test_netns.counters(kernel_if)["rx_packets"]
    vm.forward("txonly", "set txpkts 64")
    util.wait_for(lambda: engine.relay(1).vm_to_vf.rx_pkts > 5000,
                  what="VM traffic reaching the relay")
    vm.cmd("stop")
    vm_sent = vm.port_stats().tx_packets
    out, got = util.drained(lambda: (
        engine.relay(1).vm_to_vf,
        test_netns.counters(kernel_if)["rx_packets"] - before),
        lambda v: v[0].held == 0 and v[0].rx_pkts == vm_sent and
        v[0].tx_pkts == v[1])
    assert out.tx_pkts + out.dropped_pkts == out.rx_pkts
    assert out.drop_noconn_pkts == 0
    assert out.tx_pkts > 0
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
    util.send_paced(lambda i: port.send(rawport.frame(VM_MAC, KERNEL_MAC, i,
                                                      size=200)),
                    500, lambda: engine.relay(2).vf_to_vm.rx_pkts)
    def stages():  # type: ignore[no-untyped-def]
        vs = vm.port_stats()
        return engine.relay(2), vs.rx_packets, vs.tx_packets

    st, vm_rx, vm_tx = util.drained(stages, lambda v: (
        v[0].vf_to_vm.held == 0 and v[0].vm_to_vf.held == 0 and
        v[0].vf_to_vm.tx_pkts == v[1] and v[0].vm_to_vf.rx_pkts == v[2]))
    seqs = port.receive(timeout=util.DEADLINE, until=st.vm_to_vf.tx_pkts)
    # Whatever was lost is counted (by the relay, or by testpmd as what
    # it received and did not send); everything else came back, in
    # order, with its content (tag and sequence number) intact.
    a, b = st.vf_to_vm, st.vm_to_vf
    assert a.rx_pkts == 500 == a.tx_pkts + a.dropped_pkts
    assert b.rx_pkts == vm_tx <= vm_rx == a.tx_pkts
    assert b.tx_pkts + b.dropped_pkts == b.rx_pkts
    assert a.drop_noconn_pkts == b.drop_noconn_pkts == 0
    assert len(seqs) == b.tx_pkts > 0
    assert seqs == sorted(set(seqs)) and set(seqs) <= set(range(500))
