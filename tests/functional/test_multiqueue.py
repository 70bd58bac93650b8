# SPDX-License-Identifier: Apache-2.0
"""Multiqueue: the guest's queue pairs all carry traffic, each flow keeps
its order, and the totals add up."""
from __future__ import annotations

import collections

from vio4wd_agent.demo import rawport
from vio4wd_agent.relay.model import Direction
from tests.functional import util
from tests.functional.conftest import (KERNEL_MAC, VM_MAC, connected,
                                       relay_spec)


def test_four_queue_pairs_64_flows(engine, sockdir, veth, vm_factory,
                                   kernel_port, test_netns):
    dpdk_if, kernel_if = veth()
    spec = relay_spec(40, sockdir, "net_af_packet40,iface=%s" % dpdk_if)
    engine.add_relay(spec)
    vm = vm_factory(spec.vhost_path, queues=4,
                    extra=["--rxq=4", "--txq=4"])
    util.wait_for(connected(engine, 40), what="VM connected")
    util.wait_for(lambda: engine.relay(40).vm_queues == 4,
                  what="4 queue pairs enabled")
    assert engine.relay(40).vm_txq_mask == 0xF
    # io forwarding: what arrives on rx queue i leaves on tx queue i.
    vm.forward("io")
    port = kernel_port(kernel_if)
    flows, per_flow = 64, 40
    total = flows * per_flow
    kernel_rx0 = test_netns.counters(kernel_if)["rx_packets"]
    util.send_paced(lambda i: port.send(rawport.udp_frame(
        VM_MAC, KERNEL_MAC, i % flows, i // flows)), total,
        lambda: engine.relay(40).vf_to_vm.rx_pkts)

    # Everything that went in is somewhere: each stage passed on what it
    # took, or counted it as dropped.
    a, b, vm_rx, vm_tx = util.drained_through_vm(
        lambda: engine.relay(40), vm,
        lambda: test_netns.counters(kernel_if)["rx_packets"] - kernel_rx0)
    kernel_rx = test_netns.counters(kernel_if)["rx_packets"] - kernel_rx0
    assert a.rx_pkts == total
    assert a.rx_pkts == a.tx_pkts + a.dropped_pkts
    assert b.rx_pkts == b.tx_pkts + b.dropped_pkts
    assert a.drop_noconn_pkts == 0 and b.drop_noconn_pkts == 0
    got = port.receive_flows(timeout=util.DEADLINE, until=kernel_rx)
    assert len(got) == kernel_rx == b.tx_pkts

    # Every flow's frames came back in the order they were sent.
    seen = collections.defaultdict(list)
    for flow, n in got:
        seen[flow].append(n)
    for flow, seqs in seen.items():
        assert seqs == sorted(seqs), "flow %d reordered" % flow
    assert len(seen) == flows

    # Every queue carried traffic both ways; per-queue sums are the totals.
    to_vm = engine.queue_stats(40, Direction.VF_TO_VM)[:4]
    from_vm = engine.queue_stats(40, Direction.VM_TO_VF)[:4]
    assert all(q.pkts > 0 for q in to_vm), to_vm
    assert all(q.pkts > 0 for q in from_vm), from_vm
    assert sum(q.pkts for q in to_vm) == a.tx_pkts
    assert sum(q.pkts for q in from_vm) == b.rx_pkts
    # The VM saw the same split on its own queues.
    xstats = vm.cmd("show port xstats 0")
    for q in range(4):
        assert "rx_q%d_good_packets: %d" % (q, to_vm[q].pkts) in xstats, xstats


def test_relay_serving_fewer_pairs_than_the_guest_enables(
        engine, sockdir, veth, vm_factory, kernel_port):
    """A relay limited to 2 pairs spreads over those two only, even when
    the guest enables 4 (and says so in the log)."""
    dpdk_if, kernel_if = veth()
    spec = relay_spec(41, sockdir, "net_af_packet41,iface=%s" % dpdk_if,
                      max_queues=2)
    engine.add_relay(spec)
    vm = vm_factory(spec.vhost_path, queues=4, extra=["--rxq=4", "--txq=4"])
    util.wait_for(connected(engine, 41), what="VM connected")
    util.wait_for(lambda: engine.relay(41).vm_rxq_mask == 0xF,
                  what="guest enabled 4 pairs")
    assert engine.relay(41).max_queues == 2
    vm.forward("rxonly")
    port = kernel_port(kernel_if)
    util.send_paced(lambda i: port.send(rawport.udp_frame(
        VM_MAC, KERNEL_MAC, i, 0)), 64,
        lambda: engine.relay(41).vf_to_vm.rx_pkts)
    a = util.drained(lambda: engine.relay(41).vf_to_vm,
                     lambda d: d.held == 0)
    assert a.rx_pkts == 64 == a.tx_pkts + a.dropped_pkts
    qs = engine.queue_stats(41, Direction.VF_TO_VM)
    assert all(q.pkts > 0 for q in qs[:2])
    assert sum(q.pkts for q in qs) == a.tx_pkts
    xstats = vm.cmd("show port xstats 0")
    assert "rx_q2_good_packets: 0" in xstats
    assert "rx_q3_good_packets: 0" in xstats


def test_vf_with_several_queues(engine, sockdir, veth, vm_factory,
                                kernel_port):
    """A VF stand-in with 4 queue pairs (af_packet fans flows out over
    its queues): the relay polls and feeds every one."""
    dpdk_if, kernel_if = veth()
    spec = relay_spec(42, sockdir, "net_af_packet42,iface=%s,qpairs=4"
                      % dpdk_if, vf_queues=4)
    assert engine.add_relay(spec).vf_queues == 4
    vm = vm_factory(spec.vhost_path, queues=4, extra=["--rxq=4", "--txq=4"])
    util.wait_for(connected(engine, 42), what="VM connected")
    util.wait_for(lambda: engine.relay(42).vm_queues == 4, what="4 pairs")
    vm.forward("io")
    port = kernel_port(kernel_if)
    util.send_paced(lambda i: port.send(rawport.udp_frame(
        VM_MAC, KERNEL_MAC, i % 64, i // 64)), 640,
        lambda: engine.relay(42).vf_to_vm.rx_pkts)

    a, b, vm_rx, vm_tx = util.drained_through_vm(lambda: engine.relay(42),
                                                 vm)
    assert a.rx_pkts == 640 and a.tx_pkts + a.dropped_pkts == 640
    assert b.rx_pkts == b.tx_pkts + b.dropped_pkts
    rxq = engine.queue_stats(42, Direction.VF_TO_VM)
    txq = engine.queue_stats(42, Direction.VM_TO_VF)
    assert all(q.vf_pkts > 0 for q in rxq[:4]), rxq
    assert all(q.vf_pkts > 0 for q in txq[:4]), txq
    assert sum(q.vf_pkts for q in rxq) == 640
    assert sum(q.vf_pkts for q in txq) == b.tx_pkts
    got = port.receive_flows(timeout=util.DEADLINE, until=b.tx_pkts)
    assert len(got) == b.tx_pkts
