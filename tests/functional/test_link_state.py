# SPDX-License-Identifier: Apache-2.0
"""The VF's link: polled, reported with the reason a relay is not
forwarding, and (on request) passed on to the guest."""
from __future__ import annotations

from vio4wd_agent.relay.model import RelaySpec
from vio4wd_agent.demo import rawport
from tests.functional import util
from tests.functional.conftest import KERNEL_MAC, VM_MAC, connected


def test_reason_follows_the_relay_state(engine, sockdir, vm_factory,
                                        test_netns):
    assert engine.add_relay(RelaySpec(95, sockdir + "/s.sock")).reason == \
        "no VF attached"
    spec = RelaySpec(96, sockdir + "/t.sock", vf="net_tap96,iface=v4lt96")
    st = engine.add_relay(spec)
    assert st.vf_link_up and st.reason == "no VM connected"
    vm = vm_factory(spec.vhost_path)
    util.wait_for(connected(engine, 96), what="VM connected")
    util.wait_for(lambda: engine.relay(96).forwarding, what="forwarding")

    test_netns.link_set("v4lt96", "down")
    util.wait_for(lambda: engine.relay(96).reason == "VF link down",
                  what="link down seen")
    assert not engine.relay(96).vf_link_up
    # What the VM sends meanwhile is counted as "VF not connected".
    vm.forward("txonly", "set txpkts 64")
    util.wait_for(lambda: engine.relay(96).vm_to_vf.drop_noconn_pkts > 1000,
                  what="drops while the link is down")
    assert engine.relay(96).vm_to_vf.tx_pkts == 0
    vm.cmd("stop")
    test_netns.link_set("v4lt96", "up")
    util.wait_for(lambda: engine.relay(96).forwarding, what="link back up")
    vm.forward("txonly", "set txpkts 64")
    util.wait_for(lambda: engine.relay(96).vm_to_vf.tx_pkts > 1000,
                  what="traffic after the link returned")


def test_guest_link_follows_the_vf(engine, sockdir, vm_factory, kernel_port,
                                   test_netns):
    """With link_follows_vf a client-mode relay lets go of the VM while
    the VF's link is down: the VM sees its link drop, then come back, and
    traffic resumes."""
    spec = RelaySpec(97, sockdir + "/f.sock", vf="net_tap97,iface=v4lt97",
                     client=True, link_follows_vf=True)
    engine.add_relay(spec)
    vm = vm_factory(spec.vhost_path, server=True)
    util.wait_for(connected(engine, 97), what="connected")
    util.wait_for(vm.link_up, what="VM link up")

    test_netns.link_set("v4lt97", "down")
    util.wait_for(lambda: not engine.relay(97).vm_connected,
                  what="relay let go of the VM")
    util.wait_for(lambda: not vm.link_up(), what="VM link down")
    assert engine.relay(97).reason == "VF link down"

    test_netns.link_set("v4lt97", "up")
    util.wait_for(connected(engine, 97), what="reconnected")
    util.wait_for(vm.link_up, what="VM link up again")
    vm.forward("rxonly")
    port = kernel_port("v4lt97")
    util.send_paced(lambda i: port.send(rawport.frame(VM_MAC, KERNEL_MAC, i)),
                    100, lambda: vm.port_stats().rx_packets,
                    what="the VM, after the link returned")
