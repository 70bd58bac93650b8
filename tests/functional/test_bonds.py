# SPDX-License-Identifier: Apache-2.0
"""A relay whose VF side is a bond of VF stand-ins (net_tap members, whose
link follows the kernel interface)."""
from __future__ import annotations

import pytest

from vio4wd_agent import exception
from vio4wd_agent.relay.model import RelaySpec
from vio4wd_agent.demo import rawport
from tests.functional import util
from tests.functional.conftest import KERNEL_MAC, VM_MAC, connected


def _taps(base: int) -> tuple[list[str], list[str]]:
    ifs = ["v4b%dt%d" % (base, i) for i in range(2)]
    return ["net_tap%d,iface=%s" % (base + i, name)
            for i, name in enumerate(ifs)], ifs


def test_active_backup_fails_over(engine, sockdir, vm_factory, kernel_port,
                                  test_netns):
    members, ifs = _taps(50)
    spec = RelaySpec(50, sockdir + "/b.sock", vf="net_bonding50",
                     bond_members=tuple(members))
    st = engine.add_relay(spec)
    assert st.bond_members == 2 and st.bond_mode == 1
    util.wait_for(lambda: engine.relay(50).active_member == 0,
                  what="first member active")
    vm = vm_factory(spec.vhost_path)
    util.wait_for(connected(engine, 50), what="VM connected")

    def rx(dev: str) -> int:
        return test_netns.counters(dev)["rx_packets"]

    def vm_sends(count: int) -> None:
        before = engine.relay(50).vm_to_vf.tx_pkts
        vm.forward("txonly", "set txpkts 64")
        util.wait_for(lambda: engine.relay(50).vm_to_vf.tx_pkts >
                      before + count, what="VM traffic through the bond")
        vm.cmd("stop")
        sent = vm.port_stats().tx_packets
        util.drained(lambda: engine.relay(50).vm_to_vf,
                     lambda d: d.held == 0 and d.rx_pkts == sent)

    # VM -> bond -> active member 0 (the kernel sees it on that tap).
    b0, b1 = rx(ifs[0]), rx(ifs[1])
    vm_sends(1000)
    assert rx(ifs[0]) - b0 >= 1000 and rx(ifs[1]) == b1

    # Member 0 loses its link: the bond moves to member 1, traffic goes on.
    test_netns.link_set(ifs[0], "down")
    util.wait_for(lambda: engine.relay(50).active_member == 1,
                  what="failover to member 1")
    b0, b1 = rx(ifs[0]), rx(ifs[1])
    vm_sends(1000)
    assert rx(ifs[1]) - b1 >= 1000 and rx(ifs[0]) == b0

    # And frames from the kernel on the now active member reach the VM.
    vm.forward("rxonly")
    port = kernel_port(ifs[1])
    rx0 = vm.port_stats().rx_packets
    util.send_paced(lambda i: port.send(rawport.frame(VM_MAC, KERNEL_MAC, i)),
                    200, lambda: vm.port_stats().rx_packets - rx0,
                    what="the VM (through member 1)")
    out = util.drained(lambda: engine.relay(50).vm_to_vf,
                       lambda d: d.held == 0)
    assert out.rx_pkts == out.tx_pkts + out.dropped_pkts

    # Member 0's link returns: it is back in, and primary again.
    test_netns.link_set(ifs[0], "up")
    util.wait_for(lambda: engine.relay(50).active_member == 0,
                  what="member 0 primary again")
    b0 = rx(ifs[0])
    vm_sends(1000)
    assert rx(ifs[0]) - b0 >= 1000

    engine.remove_relay(50)
    # Bond and members are gone: the names can be used again at once.
    engine.add_relay(spec)
    assert engine.resources().ports == 3


@pytest.mark.parametrize("mode", range(7))
def test_every_bond_mode_forms(engine, sockdir, mode):
    members, _ = _taps(60 + 2 * mode)
    st = engine.add_relay(RelaySpec(60 + mode, sockdir + "/m%d.sock" % mode,
                                    vf="net_bonding6%d" % mode,
                                    bond_members=tuple(members),
                                    bond_mode=mode))
    assert st.bond_mode == mode and st.bond_members == 2 and st.vf_ready


BAD_BONDS = [
    (dict(bond_members=("net_null70",)), "a bond needs 2 to 8 members, 1"),
    (dict(bond_members=tuple("net_null7%d" % i for i in range(9))),
     "a bond needs 2 to 8 members, 9"),
    (dict(bond_members=("net_null70", "net_null71"), bond_mode=7),
     "unknown bond mode 7"),
    (dict(vf="bond0", bond_members=("net_null70", "net_null71")),
     "must be net_bonding followed by"),
    (dict(bond_members=("net_null70", "net_null70")), "given twice"),
    (dict(bond_members=("net_null70", "net_bogus1")), "net_bogus1"),
]


@pytest.mark.parametrize("change,text", BAD_BONDS,
                         ids=[b[1] for b in BAD_BONDS])
def test_bad_bonds(engine, sockdir, change, text):
    engine.add_relay(RelaySpec(71, sockdir + "/ok.sock", vf="net_null79"))
    spec = RelaySpec(**{**RelaySpec(70, sockdir + "/bad.sock",
                                    vf="net_bonding70").__dict__, **change})
    with pytest.raises(exception.EngineError) as info:
        engine.add_relay(spec)
    assert text in str(info.value)
    # Nothing half-made is left: only the bystander's port exists.
    assert engine.relay_ids() == [71]
    assert engine.resources().ports == 1


def test_member_already_in_use(engine, sockdir):
    engine.add_relay(RelaySpec(72, sockdir + "/a.sock", vf="net_null72"))
    with pytest.raises(exception.ResourceBusy,
                       match="bond member 'net_null72' is already used by "
                             "relay 72"):
        engine.add_relay(RelaySpec(73, sockdir + "/b.sock",
                                   vf="net_bonding73",
                                   bond_members=("net_null73", "net_null72")))
    assert engine.resources().ports == 1
