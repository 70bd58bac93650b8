# SPDX-License-Identifier: Apache-2.0
"""Relay directions moved between workers while traffic flows: nothing is
lost beyond what the counters report, and nothing crashes."""
from __future__ import annotations

import itertools
import threading

import pytest

from vio4wd_agent import exception
from vio4wd_agent.demo import rawport
from vio4wd_agent.relay.model import Direction, RelaySpec
from tests.functional import util
from tests.functional.conftest import KERNEL_MAC, VM_MAC


@pytest.fixture
def remote(multi_worker_engine):
    yield multi_worker_engine
    for relay_id in multi_worker_engine.relay_ids():
        multi_worker_engine.remove_relay(relay_id)
    assert multi_worker_engine.resources().ports == 0


def test_100_moves_under_traffic(remote, sockdir, veth, vm_factory,
                                 kernel_port, test_netns):
    dpdk_if, kernel_if = veth()
    # A deep af_packet ring: the VM shares a CPU with this test's sender,
    # and af_packet does not report what overflows its ring (imissed).
    spec = RelaySpec(30, sockdir + "/m.sock",
                     vf="net_af_packet30,iface=%s,framecnt=8192" % dpdk_if)
    remote.add_relay(spec)
    vm = vm_factory(spec.vhost_path)
    util.wait_for(lambda: remote.relay(30).vm_connected, what="VM")
    vm.forward("macswap")
    port = kernel_port(kernel_if)
    total = 20000
    kernel_rx0 = test_netns.counters(kernel_if)["rx_packets"]
    # Paced by what the relay took: the af_packet ring never overflows
    # (it would not say so), so every frame sent is the relay's to count.
    sender = threading.Thread(target=util.send_paced, args=(
        lambda i: port.send(rawport.frame(VM_MAC, KERNEL_MAC, i)), total,
        lambda: remote.relay(30).vf_to_vm.rx_pkts))
    sender.start()
    cpus = itertools.cycle([1, 2, 3, None])
    moves = 0
    while moves < 100:
        for d in Direction:
            state = remote.move(30, d, next(cpus))
            moves += 1
        assert state.vf_ready and state.vm_connected
        # Every read is a consistent snapshot: nothing unaccounted for,
        # also in the middle of moves.
        for x in (state.vf_to_vm, state.vm_to_vf):
            assert x.rx_pkts == x.tx_pkts + x.dropped_pkts + x.held
    sender.join()

    a, b, vm_rx, vm_tx = util.drained_through_vm(
        lambda: remote.relay(30), vm,
        lambda: test_netns.counters(kernel_if)["rx_packets"] - kernel_rx0)
    assert a.rx_pkts == total
    assert a.rx_pkts == a.tx_pkts + a.dropped_pkts
    assert b.rx_pkts == b.tx_pkts + b.dropped_pkts
    # Moves never make a side look disconnected; the only losses are
    # counted "queue full" ones (three workers time-share one CPU here).
    assert a.drop_noconn_pkts == 0 and b.drop_noconn_pkts == 0
    # Directions spread over four lcores' mbuf caches never starve the
    # VF of mbufs (the pool holds what every lcore's cache can keep).
    assert remote.relay(30).vf_rx_errors == 0


def test_bad_moves_leave_the_relay_untouched(remote, sockdir):
    remote.add_relay(RelaySpec(31, sockdir + "/b.sock", cpus=(2, 3)))
    for cpu in (0, 4, 99):
        with pytest.raises(exception.InvalidArgument,
                           match="CPU %d for VM->VF is not one of" % cpu):
            remote.move(31, Direction.VM_TO_VF, cpu)
    with pytest.raises(exception.NotFound, match="relay 32 does not exist"):
        remote.move(32, Direction.VF_TO_VM, 1)
    st = remote.relay(31)
    assert (st.vf_to_vm.cpu, st.vm_to_vf.cpu) == (2, 3)
