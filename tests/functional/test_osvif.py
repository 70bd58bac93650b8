# SPDX-License-Identifier: Apache-2.0
"""Nova plugs vnic_type virtio-forwarder ports through vio4wd's os-vif
plugin: the VIF built by Nova's own os_vif_util from the port as Neutron
binds it (vif_type agilio_ovs), os_vif.plug()/unplug() as the compute
manager calls them, a running agent, a dpdk-testpmd VM on the socket
and traffic both ways through the VF stand-in; both vhost-user modes;
idempotent plugs; every failure an os-vif exception in time; the
representor on a real ovsdb-server."""
from __future__ import annotations

import os
import subprocess
import textwrap
import time

import pytest

from vio4wd_agent.control import client, protocol
from vio4wd_agent.demo import rawport
from tests.functional import novavif, util
from tests.functional.agentproc import native_agent
from tests.functional.conftest import KERNEL_MAC, VM_MAC
from tests.functional.test_ovsdb import ovsdb  # noqa: F401 (fixture)

VF = "0000:99:00.1"          # af_packet on a veth, by the device map
NULL_VF = "0000:99:00.2"


@pytest.fixture
def veth_pair(veth):  # type: ignore[no-untyped-def]
    return veth()


@pytest.fixture
def agent(tmp_path, cpus, hugepage_dir, veth_pair):
    dpdk_if, _ = veth_pair
    nova_dir = tmp_path / "osvif" / "nova-socks"
    a = native_agent(tmp_path, cpus, hugepage_dir, textwrap.dedent("""\
        [vhost]
        extra_socket_dirs = %s
        [relay]
        device_map = %s=net_af_packet81,iface=%s
        device_map = %s=net_null82
        """) % (nova_dir, VF, dpdk_if, NULL_VF), "osvif")
    a.nova_dir = nova_dir
    a.start().wait_ready()
    novavif.configure(port_control_endpoint=a.ep("port_control"),
                      timeout=30.0)
    yield a
    a.stop()
    novavif.configure()


def relays(agent) -> dict[str, object]:  # type: ignore[no-untyped-def]
    """Relays by the Neutron port they serve ("" for none)."""
    answer = client.request(agent.ep("stats"), protocol.StatsRequest(),
                            protocol.StatsResponse)
    return {r.port_id: r for r in answer.relay}


def plug(port: novavif.Port, info: object) -> None:
    import os_vif
    os_vif.plug(port.osvif(), info)


def unplug(port: novavif.Port, info: object) -> None:
    import os_vif
    os_vif.unplug(port.osvif(), info)


@pytest.mark.parametrize("mode", ["client", "server"])
def test_nova_plugs_a_port_and_traffic_flows(agent, mode, vm_factory,
                                             veth_pair, kernel_port):
    """mode is QEMU's side: 'client' (OVN's binding) means the relay
    serves the socket, 'server' (the Agilio driver's) that it connects."""
    _, kernel_if = veth_pair
    sock = str(agent.nova_dir / ("vhu" + "%s" % os.urandom(4).hex()))
    port = novavif.Port(socket=sock, mode=mode, pci_slot=VF, mac=VM_MAC)
    inst, info = novavif.instance()
    # Nova plugs before it starts QEMU.
    plug(port, info)
    r = relays(agent)[port.port_id]
    assert r.vhost.vhost_socket_name == sock
    assert r.vf.pci_addr_str == VF
    assert (r.mac, r.instance_uuid) == (VM_MAC, info.uuid)
    if mode == "client":
        assert os.path.exists(sock)     # the relay serves it
    else:
        assert not os.path.exists(sock)  # QEMU will make it
    vm = vm_factory(sock, server=mode == "server")
    util.wait_for(lambda: relays(agent)[port.port_id].active,
                  what="the relay forwarding")

    # Nova retries and replays plugs: harmless, still one relay.
    plug(port, info)
    assert list(relays(agent)) == [port.port_id]

    # Traffic both ways: the VM sends back what it gets.
    vm.forward("macswap")
    out = kernel_port(kernel_if)
    util.send_paced(lambda i: out.send(rawport.frame(VM_MAC, KERNEL_MAC, i)),
                    300, lambda: vm.port_stats().rx_packets, what="the VM")
    back = out.receive(timeout=util.DEADLINE, until=300)
    assert len(back) == 300, len(back)
    r = relays(agent)[port.port_id]
    assert r.vf_to_vm.pkts_tx_to_vm >= 300
    assert r.vm_to_vf.pkts_tx_to_vf >= 300

    unplug(port, info)
    assert relays(agent) == {}
    if mode == "client":
        util.wait_for(lambda: not os.path.exists(sock),
                      what="the relay's socket removed")
    unplug(port, info)                  # again: nothing to do, no error
    assert relays(agent) == {}
    assert "Traceback" not in agent.output()


def test_plugs_survive_an_agent_restart(agent):
    """The registration is journaled: a restarted agent serves the port
    again, and Nova's replayed plug after a host reboot is harmless."""
    sock = str(agent.nova_dir / "vhu-restart")
    port = novavif.Port(socket=sock, mode="client", pci_slot=NULL_VF)
    _, info = novavif.instance()
    plug(port, info)
    assert agent.stop() == 0
    # Nova plugging meanwhile: a clear error, in time.
    from os_vif import exception as osv_exception
    novavif.configure(port_control_endpoint=agent.ep("port_control"),
                      timeout=3.0)
    with pytest.raises(osv_exception.PlugException) as err:
        plug(port, info)
    assert port.port_id in str(err.value) and NULL_VF in str(err.value) and \
        sock in str(err.value)
    assert "vio4wd agent" in str(err.value), str(err.value)
    novavif.configure(port_control_endpoint=agent.ep("port_control"),
                      timeout=30.0)
    agent.start().wait_ready()
    util.wait_for(lambda: port.port_id in relays(agent),
                  what="the port's relay restored")
    plug(port, info)
    assert list(relays(agent)) == [port.port_id]
    unplug(port, info)
    assert relays(agent) == {}


def test_failures_are_os_vif_exceptions_naming_what(agent, tmp_path):
    from os_vif import exception as osv_exception, objects
    _, info = novavif.instance()

    def plug_error(vif: object) -> str:
        import os_vif
        with pytest.raises(osv_exception.PlugException) as err:
            os_vif.plug(vif, info)
        return str(err.value)

    # A socket outside the agent's socket directories: the agent's reason.
    outside = str(tmp_path / "elsewhere" / "vhu-outside")
    port = novavif.Port(socket=outside, mode="client", pci_slot=NULL_VF)
    msg = plug_error(port.osvif())
    assert port.port_id in msg and NULL_VF in msg and outside in msg
    assert "not directly in a socket directory" in msg, msg

    # A VF the host does not have.
    port = novavif.Port(socket=str(agent.nova_dir / "vhu-novf"),
                        mode="client", pci_slot="0000:98:00.7")
    msg = plug_error(port.osvif())
    assert port.port_id in msg and "0000:98:00.7" in msg and \
        "the agent refused" in msg, msg

    # A VIF without a path, a profile without an address (os-vif objects
    # as a broken caller might send them; Nova's conversion refuses the
    # first itself).
    good = novavif.Port(socket=str(agent.nova_dir / "vhu-bad"),
                        mode="client", pci_slot=NULL_VF)
    vif = good.osvif()
    vif.obj_reset_changes()
    delattr(vif, "path")
    msg = plug_error(vif)
    assert "has no path" in msg and good.port_id in msg, msg
    vif = good.osvif()
    vif.port_profile = objects.vif.VIFPortProfileOVSRepresentor(
        interface_id=good.port_id, representor_name=good.devname)
    msg = plug_error(vif)
    assert "names no VF" in msg and good.port_id in msg, msg
    # The profile and its datapath offload naming different VFs.
    vif = good.osvif()
    vif.port_profile.datapath_offload.representor_address = VF
    msg = plug_error(vif)
    assert "names VF %s and its datapath offload VF %s" % (NULL_VF, VF) \
        in msg, msg

    assert relays(agent) == {}
    assert agent.proc.poll() is None


def test_agent_down_fails_within_the_timeout(tmp_path):
    from os_vif import exception as osv_exception
    import os_vif
    _, info = novavif.instance()
    port = novavif.Port(socket="/run/vio4wd/vhost/vhu-down", mode="client",
                        pci_slot=NULL_VF)
    # No agent at all: at once.
    novavif.configure(port_control_endpoint="ipc://%s/none" % tmp_path,
                      timeout=3.0)
    try:
        with pytest.raises(osv_exception.PlugException) as err:
            os_vif.plug(port.osvif(), info)
        msg = str(err.value)
        assert "does not exist" in msg and port.port_id in msg and \
            NULL_VF in msg, msg
        # Something at the endpoint that never answers: the timeout.
        import socket
        silent = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        silent.bind(str(tmp_path / "silent"))     # bound, not listening
        novavif.configure(port_control_endpoint="ipc://%s/silent"
                          % tmp_path, timeout=3.0)
        start = time.monotonic()
        with pytest.raises(osv_exception.PlugException) as err:
            os_vif.plug(port.osvif(), info)
        took = time.monotonic() - start
        assert "no answer from the vio4wd agent" in str(err.value)
        assert "within 3 s" in str(err.value)
        # Bounded, not hung (a loose bound: only a hang fails it).
        assert took < util.DEADLINE, took
        with pytest.raises(osv_exception.UnplugException) as uerr:
            os_vif.unplug(port.osvif(), info)
        assert port.port_id in str(uerr.value)
        silent.close()
    finally:
        novavif.configure()


def test_representor_joins_the_integration_bridge(agent, ovsdb, test_netns):
    """With plug_representor, the VF's representor (here a netdev named
    as Nova names it: no switchdev NIC here) is put on br-int with the
    external_ids OVN's controller claims it by; unplug takes it off."""
    port = novavif.Port(socket=str(agent.nova_dir / "vhu-rep"),
                        mode="client", pci_slot=NULL_VF)
    _, info = novavif.instance()
    test_netns.add_veth(port.devname, "v4wrep%d" % (os.getpid() % 100000))
    novavif.configure(port_control_endpoint=agent.ep("port_control"),
                      timeout=30.0, plug_representor=True,
                      ovsdb_connection=ovsdb.remote,
                      wait_for_vswitchd=False)
    try:
        plug(port, info)
        ids = ovsdb.vsctl("--no-wait", "get", "Interface", port.devname,
                          "external_ids")
        for key, value in (("iface-id", port.port_id),
                           ("iface-status", "active"),
                           ("attached-mac", port.mac),
                           ("vm-uuid", info.uuid)):
            assert '%s="%s"' % (key, value) in ids or \
                "%s=%s" % (key, value) in ids, ids
        assert port.devname in ovsdb.vsctl("--no-wait", "list-ports",
                                           "br-int").split()
        assert port.port_id in relays(agent)
        plug(port, info)                # again: the same row
        assert ovsdb.vsctl("--no-wait", "list-ports",
                           "br-int").split() == [port.devname]

        unplug(port, info)
        assert ovsdb.vsctl("--no-wait", "list-ports", "br-int").split() == []
        assert relays(agent) == {}
        unplug(port, info)

        # No representor to be found: the plug fails and leaves nothing.
        lost = novavif.Port(socket=str(agent.nova_dir / "vhu-rep2"),
                            mode="client", pci_slot=NULL_VF)
        from os_vif import exception as osv_exception
        import os_vif
        with pytest.raises(osv_exception.PlugException) as err:
            os_vif.plug(lost.osvif(), info)
        assert "no representor netdev for VF %s" % NULL_VF in \
            str(err.value)
        assert relays(agent) == {}
    finally:
        subprocess.run(["ip", "link", "del", port.devname])
        novavif.configure(port_control_endpoint=agent.ep("port_control"),
                          timeout=30.0)
