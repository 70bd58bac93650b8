# SPDX-License-Identifier: Apache-2.0
"""Relay directions moved between workers while traffic flows: nothing is
lost beyond what the counters report, and nothing crashes."""
from __future__ import annotations

import itertools
import threading

import pytest

from vio4wd_agent import exception
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
    sender = threading.Thread(target=port.send_frames,
                              args=(VM_MAC, KERNEL_MAC, total))
    sender.start()
    cpus = itertools.cycle([1, 2, 3, None])
    moves = 0
    while moves < 100:
        for d in Direction:
            state = remote.move(30, d, next(cpus))
            moves += 1
        assert state.vf_ready and state.vm_connected
    sender.join()
    a = util.wait_stable(lambda: remote.relay(30).vf_to_vm)
    b = util.wait_stable(lambda: remote.relay(30).vm_to_vf)
    # What the VF's ring could not hold while a burst was held is the
    # VF's own count; everything else reached the relay.
    assert a.rx_pkts + remote.relay(30).vf_rx_missed == total
    assert a.rx_pkts == a.tx_pkts + a.dropped_pkts and a.held == 0
    vm.cmd("stop")
    assert vm.port_stats().rx_packets == a.tx_pkts
    assert b.rx_pkts == vm.port_stats().tx_packets
    assert b.rx_pkts == b.tx_pkts + b.dropped_pkts and b.held == 0
    got = test_netns.counters(kernel_if)["rx_packets"]
    assert got == b.tx_pkts
    # Moves never make a side look disconnected; the only losses are
    # counted "queue full" ones (three workers time-share one CPU here).
    assert a.drop_noconn_pkts == 0 and b.drop_noconn_pkts == 0


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
