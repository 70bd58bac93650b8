# SPDX-License-Identifier: Apache-2.0
"""9000-byte frames both ways, with mergeable rx buffers: the VF stand-in
is net_null (af_packet and tap stop at 1518/1504 bytes)."""
from __future__ import annotations

from tests.functional import util
from tests.functional.conftest import connected, relay_spec

SIZE = 9000


def test_jumbo_both_ways(engine, sockdir, vm_factory):
    spec = relay_spec(80, sockdir, "net_null80,size=%d" % SIZE, jumbo=True,
                      mrgbuf=True)
    assert engine.add_relay(spec).mtu == 9000
    vm = vm_factory(spec.vhost_path, mbufs=16384,
                    extra=["--max-pkt-len=9018", "--enable-scatter"])
    util.wait_for(connected(engine, 80), what="VM connected")

    # VF -> VM: the guest's 2 KB buffers are merged to hold each frame.
    vm.forward("rxonly")
    util.wait_for(lambda: vm.port_stats().rx_packets > 1000,
                  what="jumbo frames at the VM")
    vm.cmd("stop")
    got = vm.port_stats()
    assert got.rx_bytes == got.rx_packets * SIZE
    a = engine.relay(80).vf_to_vm
    assert a.tx_bytes == a.tx_pkts * SIZE and a.tx_pkts >= got.rx_packets

    # VM -> VF: the guest sends 9000-byte frames in five segments.
    vm.forward("txonly", "set txpkts 2000,2000,2000,2000,1000")
    util.wait_for(lambda: engine.relay(80).vm_to_vf.tx_pkts > 1000,
                  what="jumbo frames from the VM")
    vm.cmd("stop")
    sent = vm.port_stats()
    b = util.drained(lambda: engine.relay(80).vm_to_vf, lambda d: (
        d.held == 0 and d.rx_pkts == sent.tx_packets))
    assert b.rx_pkts == sent.tx_packets and b.rx_bytes == sent.tx_bytes
    assert b.rx_bytes == b.rx_pkts * SIZE
    assert b.tx_pkts == b.rx_pkts and b.tx_bytes == b.rx_bytes
