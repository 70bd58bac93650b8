# SPDX-License-Identifier: Apache-2.0
"""OVSDB Interface rows drive relays: a real ovsdb-server (no vswitchd;
ovs-vsctl --no-wait), keys added, changed and removed, the server
restarted, junk ignored, and traffic through a relay OVSDB asked for."""
from __future__ import annotations


import pytest

from vio4wd_agent.control import client, protocol
from vio4wd_agent.demo import rawport
from tests.functional import util
from tests.functional.agentproc import native_agent
from tests.functional.conftest import KERNEL_MAC, VM_MAC
from tests.functional.ovsdb_server import OvsdbServer


@pytest.fixture
def ovsdb(tmp_path):
    base = tmp_path / "ovsdb"
    base.mkdir()
    server = OvsdbServer(base).create().start()
    server.vsctl("--no-wait", "add-br", "br-int")
    yield server
    server.stop()


def relays(agent) -> dict[int, object]:  # type: ignore[no-untyped-def]
    answer = client.request(agent.ep("stats"), protocol.StatsRequest(),
                            protocol.StatsResponse)
    return {r.id: r for r in answer.relay}


def add_port(ovsdb, ifname: str, **ext: str) -> None:  # type: ignore[no-untyped-def]
    args = ["--no-wait", "add-port", "br-int", ifname]
    if ext:
        args += ["--", "set", "Interface", ifname] + [
            "external_ids:%s=%s" % kv for kv in ext.items()]
    ovsdb.vsctl(*args)


def test_interfaces_drive_relays(tmp_path, cpus, hugepage_dir, ovsdb, veth,
                                 vm_factory, kernel_port):
    ifs = [veth() for _ in range(3)]
    add_port(ovsdb, ifs[0][0], virtio_forwarder="3")
    agent = native_agent(tmp_path, cpus, hugepage_dir, ovsdb.agent_config,
                         "ovs")
    agent.start().wait_ready()
    try:
        # Rows that were there before the agent: synced at start.
        util.wait_for(lambda: 3 in relays(agent), what="relay 3 from OVSDB")
        r3 = relays(agent)[3]
        assert r3.vf.pci_addr_str == "net_af_packet_ovs3"
        assert "slow path" in agent.output()
        sock = agent.socket_dir / "virtio-forwarder3.sock"
        vm = vm_factory(str(sock))
        util.wait_for(lambda: relays(agent)[3].active, what="VM connected")
        vm.forward("rxonly")
        port = kernel_port(ifs[0][1])
        util.send_paced(lambda i: port.send(rawport.frame(
            VM_MAC, KERNEL_MAC, i)), 200, lambda: vm.port_stats().rx_packets,
            what="the VM, through the OVSDB relay")
        assert vm.port_stats().rx_packets == 200

        # Another interface with the other key; one with junk.
        add_port(ovsdb, ifs[1][0], virtio_relay="5")
        add_port(ovsdb, ifs[2][0], virtio_forwarder="five")
        util.wait_for(lambda: 5 in relays(agent), what="relay 5")
        util.wait_for(lambda: "not a relay id" in agent.output(),
                      what="junk logged")
        assert sorted(relays(agent)) == [3, 5]

        # ovsdb-server restarts: nothing is duplicated, dropped or redone.
        before = relays(agent)[3].vf_to_vm.pkts_rx_from_vf
        ovsdb.stop()
        ovsdb.start()
        ovsdb.vsctl("--no-wait", "set", "Interface", ifs[2][0],
                    "external_ids:virtio_forwarder=6")
        util.wait_for(lambda: 6 in relays(agent), what="resynced: relay 6")
        now = relays(agent)
        assert sorted(now) == [3, 5, 6]
        assert now[3].active and now[3].vf_to_vm.pkts_rx_from_vf == before
        assert vm.link_up()

        # A key that changes moves the relay; a key that goes removes it.
        ovsdb.vsctl("--no-wait", "set", "Interface", ifs[1][0],
                    "external_ids:virtio_relay=7")
        util.wait_for(lambda: sorted(relays(agent)) == [3, 6, 7],
                      what="relay 5 became 7")
        ovsdb.vsctl("--no-wait", "remove", "Interface", ifs[0][0],
                    "external_ids", "virtio_forwarder")
        util.wait_for(lambda: sorted(relays(agent)) == [6, 7],
                      what="relay 3 gone")
        assert not sock.exists()
        ovsdb.vsctl("--no-wait", "del-port", "br-int", ifs[2][0])
        util.wait_for(lambda: sorted(relays(agent)) == [7],
                      what="relay 6 gone with its port")
        assert agent.proc.poll() is None
    finally:
        agent.stop()


def test_unreachable_ovsdb_is_retried(tmp_path, cpus, hugepage_dir, veth):
    base = tmp_path / "late"
    base.mkdir()
    server = OvsdbServer(base).create()
    agent = native_agent(tmp_path, cpus, hugepage_dir, server.agent_config,
                         "ovslate")
    agent.start().wait_ready()
    try:
        util.wait_for(lambda: "not reachable yet" in agent.output(),
                      what="the agent waits for OVSDB")
        server.start()
        server.vsctl("--no-wait", "add-br", "br0")
        dpdk_if, _ = veth()
        server.vsctl("--no-wait", "add-port", "br0", dpdk_if, "--", "set",
                     "Interface", dpdk_if, "external_ids:virtio_forwarder=1")
        util.wait_for(lambda: 1 in relays(agent),
                      what="relay once OVSDB came up")
    finally:
        agent.stop()
        server.stop()


def test_a_row_before_its_netdev_is_retried(tmp_path, cpus, hugepage_dir,
                                            ovsdb, test_netns):
    """A row written before its netdev exists is relayed once the netdev
    appears (no other change in OVSDB); one whose row goes while waiting
    never becomes a relay."""
    agent = native_agent(tmp_path, cpus, hugepage_dir, ovsdb.agent_config,
                         "ovslate")
    agent.start().wait_ready()
    try:
        add_port(ovsdb, "v4late0", virtio_forwarder="7")
        add_port(ovsdb, "v4late1", virtio_forwarder="8")
        util.wait_for(lambda: "Interface v4late1 (relay 8) has no netdev "
                      "here yet" in agent.output(), what="the wait logged")
        ovsdb.vsctl("--no-wait", "del-port", "br-int", "v4late1")
        util.wait_for(lambda: "relay 8 (Interface v4late1) no longer "
                      "wanted" in agent.output(), what="the row gone")
        test_netns.add_veth("v4late0", "v4late0k")
        test_netns.add_veth("v4late1", "v4late1k")
        util.wait_for(lambda: 7 in relays(agent), what="relay 7 once its "
                      "netdev appeared")
        assert relays(agent)[7].vf.pci_addr_str == "net_af_packet_ovs7"
        assert "its netdev is here now" in agent.output()
        # Relay 8's row went: it stays away (a retry would show by now,
        # the first ones come within a second).
        util.wait_for(lambda: agent.output().count(
            "Interface v4late0 (relay 7): its netdev is here now"),
            what="relay 7 logged")
        assert 8 not in relays(agent)
        assert agent.proc.poll() is None
    finally:
        agent.stop()
