# SPDX-License-Identifier: Apache-2.0
"""libvirt domains drive relays: a real (private) libvirtd starting real
QEMUs, the agent learning about them only from libvirt.

The domains here boot nothing (tests/e2e boots a guest), so a vhost-user
connection shows as a connected socket on the relay's path rather than as
a VM in the relay's state.  A QEMU that is the vhost-user client refuses
to start when its socket is not served: a domain that starts proves the
socket was there first.
"""
from __future__ import annotations

import contextlib
import functools
import grp
import os
import pwd
import shutil
import signal
import stat
import tempfile
import textwrap
import time
import uuid

import libvirt
import pytest

from tests.functional import util
from tests.functional.agentproc import native_agent
from tests.functional.domains import Nic, domain_xml
from tests.functional.libvirtd import Libvirtd
from tests.functional.test_ovsdb import relays


@pytest.fixture(scope="module")
def libvirtd():
    base = tempfile.mkdtemp(prefix="v4wlibvirt-")
    daemon = Libvirtd(base).start()
    yield daemon
    daemon.cleanup()
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def lv(libvirtd):
    """The daemon, running, with no domains left behind by a test."""
    if libvirtd.proc is None:
        libvirtd.start()
    yield libvirtd
    if libvirtd.proc is None:
        libvirtd.start()
    conn = libvirtd.conn()
    for dom in conn.listAllDomains(0):
        if dom.isActive():
            dom.destroy()
        if dom.isPersistent():
            dom.undefine()
    conn.close()


@pytest.fixture
def watch(tmp_path, cpus, hugepage_dir, lv):  # type: ignore[no-untyped-def]
    """``with watch(name, extra_config) as (agent, conn)``: see watching."""
    return functools.partial(watching, tmp_path, cpus, hugepage_dir, lv)


@contextlib.contextmanager
def watching(tmp_path, cpus, hugepage_dir, lv, name: str,
             extra: str = ""):  # type: ignore[no-untyped-def]
    """An agent watching ``lv`` (its sockets in a directory of its own),
    started and connected to libvirtd, and a libvirt connection for the
    test; both closed at the end."""
    socks = os.path.join(lv.base, "socks-" + name)
    agent = native_agent(tmp_path, cpus, hugepage_dir, textwrap.dedent("""\
        [vhost]
        socket_dir = %s
        socket_owner = libvirt-qemu
        socket_group = kvm
        socket_mode = 0660
        [control]
        allow_devargs = true
        [libvirt]
        enabled = true
        uri = %s
        stopped_grace = 1
        hook_socket = %s
        """) % (socks, lv.uri, lv.hook_socket) + textwrap.dedent(extra), name)
    agent.socks = socks
    agent.start().wait_ready()
    conn = lv.conn()
    try:
        util.wait_for(lambda: "connected; watching domains" in
                      agent.output(), what="the watcher connected")
        yield agent, conn
    finally:
        try:
            conn.close()
        except libvirt.libvirtError:
            pass                # closed by the test already
        agent.stop()


def connected(path: str) -> bool:
    """Someone holds a connection on the unix socket bound at ``path``."""
    with open("/proc/net/unix") as f:
        next(f)
        for line in f:
            fields = line.split()
            if len(fields) >= 8 and fields[7] == path and fields[5] == "03":
                return True
    return False


def paths(agent) -> dict[str, int]:  # type: ignore[no-untyped-def]
    return {r.vhost.vhost_socket_name: i for i, r in relays(agent).items()}


def test_domains_drive_relays(lv, watch):
    with watch("lvstatic") as (agent, conn):
        s1 = os.path.join(agent.socks, "virtio-forwarder1.sock")
        s2 = os.path.join(agent.socks, "virtio-forwarder2.sock")
        # A domain of another switch (defined only: its QEMU would wait
        # for a peer that never comes): never ours.
        other = os.path.join(lv.base, "other")
        os.makedirs(other, exist_ok=True)
        os.chmod(other, 0o777)
        foreign = conn.defineXML(domain_xml("foreign", [Nic(
            os.path.join(other, "vhu0"), "server")]))
        dom = conn.defineXML(domain_xml("vm1", [
            Nic(s1, "client", "52:54:00:00:01:01"),
            Nic(s2, "server", "52:54:00:00:01:02")], numa="0"))

        # DEFINED: relay 1 serves its socket, owned as configured, before
        # QEMU exists; relay 2 will connect to QEMU's.
        util.wait_for(lambda: sorted(relays(agent)) == [1, 2],
                      what="relays 1 and 2 from the domain")
        st = os.stat(s1)
        assert stat.S_ISSOCK(st.st_mode)
        assert st.st_uid == pwd.getpwnam("libvirt-qemu").pw_uid
        assert st.st_gid == grp.getgrnam("kvm").gr_gid
        assert stat.S_IMODE(st.st_mode) == 0o660
        assert not os.path.exists(s2)
        r = relays(agent)
        assert r[1].numa_hint == 0 and r[2].numa_hint == 0
        assert r[1].socket_id == 0

        # STARTED: QEMU connects to relay 1; relay 2 connects to QEMU.
        dom.create()
        util.wait_for(lambda: connected(s1), what="QEMU on relay 1")
        util.wait_for(lambda: connected(s2),
                      what="relay 2 on QEMU's socket")
        assert sorted(relays(agent)) == [1, 2]

        # A persistent domain that stops keeps its relays (a reboot, a
        # host maintenance); undefining it removes them.
        dom.destroy()
        time.sleep(2)           # longer than stopped_grace
        assert sorted(relays(agent)) == [1, 2]
        dom.create()
        util.wait_for(lambda: connected(s1), what="QEMU back on relay 1")
        dom.destroy()
        dom.undefine()
        util.wait_for(lambda: relays(agent) == {}, what="relays removed")
        assert not os.path.exists(s1)
        assert "foreign" not in agent.output()
        foreign.undefine()
        assert agent.proc.poll() is None


def test_dynamic_sockets_with_metadata_vf_and_undefine_while_running(
        lv, watch, veth):
    vf_if, _ = veth()
    with watch("lvdyn", """\
        [vhost]
        dynamic_sockets = true
        """) as (agent, conn):
        a = os.path.join(agent.socks, "vhu5a1b2c3d-4e")
        b = os.path.join(agent.socks, "vhu5a1b2c3d-4f")
        # Nova's metadata names the Neutron port of the first interface
        port = "5a1b2c3d-4e00-4000-8000-00000000000a"
        vm_uuid = str(uuid.uuid4())
        dom = conn.defineXML(domain_xml("vm-dyn", [
            Nic(a, "client", "52:54:00:00:02:01",
                vf="net_af_packet9,iface=%s" % vf_if),
            Nic(b, "server", "52:54:00:00:02:02")], uuid=vm_uuid,
            nova_ports=[port, "not-a-port"]))
        util.wait_for(lambda: len(relays(agent)) == 2,
                      what="two relays for the domain")
        by_path = {p: relays(agent)[i] for p, i in paths(agent).items()}
        assert by_path[a].vf.pci_addr_str == "net_af_packet9"
        assert not by_path[b].HasField("vf")
        # the relay serves that port (its status goes to Neutron)
        assert (by_path[a].port_id, by_path[a].mac,
                by_path[a].instance_uuid) == (port, "52:54:00:00:02:01",
                                              vm_uuid)
        assert by_path[b].port_id == ""
        assert sorted(relays(agent)) == [0, 1]
        dom.create()
        util.wait_for(lambda: connected(a), what="QEMU on the dynamic socket")
        util.wait_for(lambda: connected(b),
                      what="relay on QEMU's dynamic socket")
        # Undefined while running: it goes on as a transient domain, and
        # keeps its relays until it stops for longer than the grace.
        dom.undefine()
        util.wait_for(lambda: "undefined while running" in agent.output(),
                      what="the undefine seen")
        assert len(relays(agent)) == 2 and connected(a)
        dom.destroy()
        util.wait_for(lambda: relays(agent) == {},
                      what="relays of the stopped transient domain removed")
        assert "stopped for 1 s" in agent.output()


def test_transient_domains_get_their_sockets_from_the_hook(lv, watch):
    """``virsh create`` sends no event before QEMU starts, and QEMU does
    not start without its peer: libvirtd's qemu hook (installed by
    vio4wd-libvirt-hook --install) hands the XML over at prepare."""
    with watch("lvhook") as (agent, conn):
        assert "libvirt hook requests taken on %s" % lv.hook_socket in \
            agent.output()
        s1 = os.path.join(agent.socks, "virtio-forwarder1.sock")
        s2 = os.path.join(agent.socks, "virtio-forwarder2.sock")
        s3 = os.path.join(agent.socks, "virtio-forwarder3.sock")
        dom = conn.createXML(domain_xml("vm-t", [
            Nic(s1, "client", "52:54:00:00:05:01"),
            Nic(s2, "server", "52:54:00:00:05:02")]))
        assert dom.isActive() and not dom.isPersistent()
        assert "libvirt hook: domain vm-t prepared: 2 socket(s) served" in \
            agent.output()
        st = os.stat(s1)
        assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (
            pwd.getpwnam("libvirt-qemu").pw_uid, 0o660)
        r = relays(agent)
        assert sorted(r) == [1, 2]
        util.wait_for(lambda: connected(s1), what="QEMU on relay 1")
        util.wait_for(lambda: connected(s2),
                      what="relay 2 on QEMU's socket")

        # A transient domain that wants a socket another domain holds:
        # the start fails with the agent's reason, nothing else moves.
        conn.defineXML(domain_xml("holder", [Nic(s3)]))
        util.wait_for(lambda: 3 in relays(agent), what="relay 3")
        with pytest.raises(libvirt.libvirtError) as err:
            conn.createXML(domain_xml("thief", [Nic(s3)]))
        assert "which domain holder already uses" in str(err.value)
        assert sorted(relays(agent)) == [1, 2, 3] and connected(s1)

        # Gone for longer than the grace: its relays go.
        dom.destroy()
        util.wait_for(lambda: sorted(relays(agent)) == [3],
                      what="relays of vm-t removed")
        assert not os.path.exists(s1)
        assert agent.proc.poll() is None


def test_libvirtd_restart_is_survived(lv, watch):
    with watch("lvrestart") as (agent, conn):
        s3 = os.path.join(agent.socks, "virtio-forwarder3.sock")
        s4 = os.path.join(agent.socks, "virtio-forwarder4.sock")
        vm3 = conn.defineXML(domain_xml("vm3", [Nic(s3)]))
        vm3.create()
        util.wait_for(lambda: sorted(relays(agent)) == [3], what="relay 3")
        util.wait_for(lambda: connected(s3), what="QEMU on relay 3")
        conn.close()

        lv.stop(signal.SIGTERM)     # the daemon goes; QEMU stays
        util.wait_for(lambda: "reconnecting" in agent.output(),
                      what="the watcher noticed")
        assert sorted(relays(agent)) == [3] and connected(s3)
        lv.start()
        util.wait_for(lambda: agent.output().count(
            "connected; watching domains") == 2,
            what="the watcher reconnected")

        # Events flow again, and the resync neither dropped nor doubled.
        with contextlib.closing(lv.conn()) as conn:
            conn.defineXML(domain_xml("vm4", [Nic(s4)]))
            util.wait_for(lambda: sorted(relays(agent)) == [3, 4],
                          what="relay 4 after the restart")
            vm3 = conn.lookupByName("vm3")
            vm3.destroy()
            vm3.undefine()
            util.wait_for(lambda: sorted(relays(agent)) == [4],
                          what="relay 3 gone with its domain")
        assert agent.proc.poll() is None


def test_bad_domains_are_logged_and_skipped(lv, watch):
    with watch("lvbad") as (agent, conn):
        good = os.path.join(agent.socks, "virtio-forwarder6.sock")
        conn.defineXML(domain_xml("good", [Nic(good)]))
        util.wait_for(lambda: sorted(relays(agent)) == [6], what="relay 6")

        # A socket in our directory named against the pattern; a VF in
        # the metadata that is no VF; a socket outside the directory (a
        # path that escapes it); a second domain wanting relay 6's socket.
        conn.defineXML(domain_xml("badname", [Nic(os.path.join(
            agent.socks, "vm.sock"))]))
        conn.defineXML(domain_xml("badvf", [Nic(os.path.join(
            agent.socks, "virtio-forwarder7.sock"),
            mac="52:54:00:00:03:07", vf="not a vf")]))
        conn.defineXML(domain_xml("escape", [Nic(os.path.join(
            agent.socks, "..", "virtio-forwarder8.sock"))]))
        conn.defineXML(domain_xml("thief", [Nic(good)]))
        out = util.wait_for(lambda: "which domain good already uses" in
                            agent.output() and agent.output(),
                            what="the thief refused")
        assert "domain badname: interface 52:54:00:00:00:01: socket " \
            "%s/vm.sock is in the socket directory but not named like " \
            "virtio-forwarder%%u.sock; skipped" % agent.socks in out
        assert "domain badvf: interface 52:54:00:00:03:07: metadata: " \
            "'not a vf' is neither a PCI address" in out
        # libvirt itself refuses an unknown mode before we ever see it
        with pytest.raises(libvirt.libvirtError):
            conn.defineXML(domain_xml("badmode", [Nic(os.path.join(
                agent.socks, "virtio-forwarder9.sock"), mode="listen")]))
        util.wait_for(lambda: sorted(relays(agent)) == [6, 7],
                      what="relay 7 without its VF")
        assert not relays(agent)[7].HasField("vf")
        conn.lookupByName("thief").undefine()
        assert sorted(relays(agent)) == [6, 7]
        assert agent.proc.poll() is None


def test_libvirt_ovsdb_and_static_share_one_manager(tmp_path, lv, watch,
                                                    veth):
    """libvirt knows the socket, OVSDB the VF: one relay, built by both.
    A domain that wants a static relay's socket the other way round is
    refused with a line naming both, and the static relay is untouched."""
    from tests.functional.ovsdb_server import OvsdbServer
    base = tmp_path / "ovsdb"
    base.mkdir()
    ovs = OvsdbServer(base).create().start()
    ovs.vsctl("--no-wait", "add-br", "br-int")
    vf_if, _ = veth()
    try:
        with watch("lvmix", ovs.agent_config +
                   "[relay]\nstatic_vfs = net_null5=5\n") as (agent, conn):
            s3 = os.path.join(agent.socks, "virtio-forwarder3.sock")
            s5 = os.path.join(agent.socks, "virtio-forwarder5.sock")
            conn.defineXML(domain_xml("vm-b", [Nic(s3)]))
            util.wait_for(lambda: 3 in relays(agent), what="relay 3 (libvirt)")
            assert not relays(agent)[3].HasField("vf")
            ovs.vsctl("--no-wait", "add-port", "br-int", vf_if, "--", "set",
                      "Interface", vf_if, "external_ids:virtio_forwarder=3")
            util.wait_for(lambda: relays(agent)[3].HasField("vf"),
                          what="OVSDB's VF on libvirt's relay 3")
            assert relays(agent)[3].vf.pci_addr_str == "net_af_packet_ovs3"
            assert relays(agent)[3].vhost.vhost_socket_name == s3

            conn.defineXML(domain_xml("vm-a", [Nic(s5, "server")]))
            out = util.wait_for(lambda: "libvirt/vm-a: socket %s not served"
                                % s5 in agent.output() and agent.output(),
                                what="the conflict logged")
            assert "static" in out.split("libvirt/vm-a: socket")[1].split(
                "\n")[0]
            assert relays(agent)[5].vf.pci_addr_str == "net_null5"
            assert os.path.exists(s5)

            # OVSDB lets go of the VF: the socket stays for libvirt.
            ovs.vsctl("--no-wait", "remove", "Interface", vf_if,
                      "external_ids", "virtio_forwarder")
            util.wait_for(lambda: not relays(agent)[3].HasField("vf"),
                          what="VF detached from relay 3")
            assert os.path.exists(s3)
            conn.lookupByName("vm-b").undefine()
            util.wait_for(lambda: sorted(relays(agent)) == [5],
                          what="relay 3 gone with its domain")
            assert agent.proc.poll() is None
    finally:
        ovs.stop()
