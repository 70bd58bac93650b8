# SPDX-License-Identifier: Apache-2.0
"""A real guest under libvirt, relayed by an agent that learnt about it
only from libvirt.

libvirtd (private) boots a QEMU/TCG guest: Debian's kernel and a busybox
initramfs whose init brings eth0 up and pings the far end.  The domain
XML names a vhost-user NIC in the agent's socket directory
(mode='client': the agent serves it) and, in vio4wd's metadata, the VF
for it: af_packet on a veth whose other end holds the far address.  The
guest pings that end (its console says PING_OK), the far end pings the
guest, the guest is reset and does it again, and destroy + undefine
removes the relay and its socket.
"""
from __future__ import annotations

import os
import subprocess
import textwrap
from typing import Callable

from tests.functional import util
from tests.functional.agentproc import native_agent
from tests.functional.domains import Nic, domain_xml
from tests.functional.test_ovsdb import relays

GUEST_IP, PEER_IP = "10.99.0.2", "10.99.0.1"
GUEST_MAC = "52:54:00:99:00:02"


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True)


def ping(addr: str) -> bool:
    return subprocess.run(["busybox", "ping", "-c", "3", "-W", "2", addr],
                          capture_output=True).returncode == 0


def reader(path: str) -> Callable[[], str]:
    """What the guest wrote on its console so far."""
    def read() -> str:
        try:
            with open(path, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""
    return read


def test_guest_traffic_through_a_relay_learnt_from_libvirt(
        tmp_path, cpus, libvirtd, guest_image, e2e_netns):
    vf_if, peer_if = "v4wvf0", "v4wpeer0"
    e2e_netns.add_veth(vf_if, peer_if)
    ip("addr", "add", PEER_IP + "/24", "dev", peer_if)
    socks = os.path.join(libvirtd.base, "socks")
    agent = native_agent(tmp_path, cpus, None, textwrap.dedent("""\
        [vhost]
        socket_dir = %s
        socket_owner = libvirt-qemu
        socket_group = kvm
        [control]
        # the VF stand-in is af_packet devargs in the domain's metadata
        allow_devargs = true
        [libvirt]
        enabled = true
        uri = %s
        hook_socket = %s
        """) % (socks, libvirtd.uri, libvirtd.hook_socket), "e2e")
    agent.start().wait_ready()
    conn = libvirtd.conn()
    console = os.path.join(libvirtd.base, "console.log")
    kernel, initrd = guest_image
    try:
        util.wait_for(lambda: "connected; watching domains" in
                      agent.output(), what="the watcher connected")
        sock = os.path.join(socks, "virtio-forwarder0.sock")
        dom = conn.defineXML(domain_xml(
            "e2e-guest", [Nic(sock, "client", GUEST_MAC,
                              vf="net_af_packet0,iface=%s" % vf_if)],
            kernel=kernel, initrd=initrd, memory_mib=256,
            cmdline="console=ttyS0 quiet v4w_ip=%s/24 v4w_peer=%s"
            % (GUEST_IP, PEER_IP), console=console))
        util.wait_for(lambda: 0 in relays(agent), what="relay 0 defined")
        dom.create()

        console_text = reader(console)
        util.wait_for(lambda: "GUEST: PING" in console_text(), timeout=120,
                      what="the guest's ping (console: %s)" % console)
        assert "GUEST: PING_OK" in console_text(), console_text()[-2000:]
        r = relays(agent)[0]
        assert r.active and r.vm_queues >= 1
        assert ping(GUEST_IP), "the far end cannot ping the guest"
        r = relays(agent)[0]
        assert r.vf_to_vm.pkts_tx_to_vm >= 3
        assert r.vm_to_vf.pkts_tx_to_vf >= 3

        # A reset (reboot): the guest driver goes and comes back.
        seen = console_text().count("GUEST: PING_OK")
        dom.reset()
        util.wait_for(lambda: console_text().count("GUEST: PING") > seen,
                      timeout=120, what="the guest's ping after the reset")
        assert console_text().count("GUEST: PING_OK") == seen + 1, \
            console_text()[-2000:]
        assert ping(GUEST_IP), "no ping to the guest after the reset"
        assert sorted(relays(agent)) == [0]

        dom.destroy()
        dom.undefine()
        util.wait_for(lambda: relays(agent) == {}, what="relay 0 removed")
        assert not os.path.exists(sock)
        assert agent.proc.poll() is None
    finally:
        conn.close()
        agent.stop()
        if os.path.exists(console):
            with open(console, errors="replace") as f:
                print(f.read()[-4000:])


def test_a_guest_nova_plugged_boots_and_pings(
        tmp_path, cpus, libvirtd, guest_image, e2e_netns):
    """Nova's order and Nova's code: os_vif.plug() of the VIF Nova's
    os_vif_util builds for a virtio-forwarder port (the agent serves the
    socket: OVN's mode 'client'), then the domain with the <interface>
    Nova's libvirt VIF driver writes for it.  The libvirt watcher sees the
    same socket in the domain: one relay.  The guest pings through it."""
    from tests.functional import novavif
    guest_ip, peer_ip, mac = "10.99.1.2", "10.99.1.1", "fa:16:3e:99:01:02"
    vf_if, peer_if = "v4wvf1", "v4wpeer1"
    e2e_netns.add_veth(vf_if, peer_if)
    ip("addr", "add", peer_ip + "/24", "dev", peer_if)
    nova_dir = os.path.join(libvirtd.base, "nova-socks")
    vf = "0000:99:00.5"
    agent = native_agent(tmp_path, cpus, None, textwrap.dedent("""\
        [vhost]
        socket_dir = %s
        extra_socket_dirs = %s
        socket_owner = libvirt-qemu
        socket_group = kvm
        [relay]
        device_map = %s=net_af_packet1,iface=%s
        [libvirt]
        enabled = true
        uri = %s
        hook_socket = %s
        """) % (os.path.join(libvirtd.base, "socks"), nova_dir, vf, vf_if,
                libvirtd.uri, libvirtd.hook_socket), "nova")
    agent.start().wait_ready()
    novavif.configure(port_control_endpoint=agent.ep("port_control"),
                      timeout=30.0)
    conn = libvirtd.conn()
    console = os.path.join(libvirtd.base, "nova-console.log")
    kernel, initrd = guest_image
    import os_vif
    port = novavif.Port(socket="", mode="client", pci_slot=vf, mac=mac)
    port.socket = os.path.join(nova_dir, ("vhu" + port.port_id)[:14])
    inst, info = novavif.instance("nova-guest")
    try:
        util.wait_for(lambda: "connected; watching domains" in
                      agent.output(), what="the watcher connected")
        os_vif.plug(port.osvif(), info)
        assert os.path.exists(port.socket)
        iface = novavif.libvirt_interface(port, inst)
        assert "type=\"vhostuser\"" in iface and port.socket in iface
        dom = conn.defineXML(domain_xml(
            "nova-guest", [], interface_xml=[iface], uuid=info.uuid,
            kernel=kernel, initrd=initrd, memory_mib=256,
            cmdline="console=ttyS0 quiet v4w_ip=%s/24 v4w_peer=%s"
            % (guest_ip, peer_ip), console=console))
        dom.create()

        console_text = reader(console)
        util.wait_for(lambda: "GUEST: PING" in console_text(), timeout=120,
                      what="the guest's ping (console: %s)" % console)
        assert "GUEST: PING_OK" in console_text(), console_text()[-2000:]
        assert ping(guest_ip), "the far end cannot ping the guest"
        rs = relays(agent)
        assert len(rs) == 1, rs          # os-vif's and libvirt's claims
        (r,) = rs.values()
        assert r.vhost.vhost_socket_name == port.socket
        assert r.port_id == port.port_id and r.vf.pci_addr_str == vf
        assert r.vf_to_vm.pkts_tx_to_vm >= 3 and r.vm_to_vf.pkts_tx_to_vf >= 3

        # Nova destroys the guest, then unplugs.
        dom.destroy()
        dom.undefine()
        assert len(relays(agent)) == 1   # os-vif's claim holds it
        os_vif.unplug(port.osvif(), info)
        util.wait_for(lambda: relays(agent) == {}, what="the relay gone")
        assert not os.path.exists(port.socket)
        assert agent.proc.poll() is None
        assert "Traceback" not in agent.output()
    finally:
        conn.close()
        agent.stop()
        novavif.configure()
        if os.path.exists(console):
            with open(console, errors="replace") as f:
                print(f.read()[-4000:])
