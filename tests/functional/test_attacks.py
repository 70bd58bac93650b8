# SPDX-License-Identifier: Apache-2.0
"""The root agent takes names from many parties; none of them may choose
what root acts on.  Each attack is made by a throwaway unprivileged user
(see attacker.py) against a real agent."""
from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import textwrap
from pathlib import Path

import pytest

from tests.functional import attacker as attacker_mod
from tests.functional import util
from tests.functional.agentproc import native_agent


@pytest.fixture
def attacker():  # type: ignore[no-untyped-def]
    a = attacker_mod.create()
    yield a
    attacker_mod.remove(a)


@pytest.fixture
def base() -> Path:  # type: ignore[misc]
    path = attacker_mod.reachable_dir("v4watk-")
    yield Path(path)
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def precious(base) -> Path:  # type: ignore[no-untyped-def]
    """A root-owned file nobody else may touch."""
    p = base / "precious"
    p.write_text("root's own\n")
    os.chmod(p, 0o600)
    return p


def untouched(p: Path) -> bool:
    st = os.lstat(p)
    return (stat.S_ISREG(st.st_mode) and st.st_uid == 0 and
            stat.S_IMODE(st.st_mode) == 0o600 and
            p.read_text() == "root's own\n")


def group_conf(attacker) -> str:  # type: ignore[no-untyped-def]
    """The attacker may use the endpoints and drop commands (the control
    group), as a member of that group would."""
    return "[control]\nendpoint_group = %s\n" % attacker.group


DEVICES = """\
[relay]
device_map = 0000:99:00.1=net_null101
device_map = 0000:99:00.2=net_null102
"""

PORT_CONTROL = """
def port_control(**fields):
    req = protocol.PortControlRequest(**fields)
    ans = client.request(ARGS["ep"], req, protocol.PortControlResponse, 30000)
    return ans.status == ans.OK, ans.error_code_source
"""


# 1. Socket ownership never follows a planted link; the socket directory
#    is nobody else's.

@pytest.mark.parametrize("how", ["owned by another user",
                                 "writable by anyone"])
def test_a_socket_directory_someone_else_controls_is_refused(
        attacker, base, cpus, hugepage_dir, how):
    d = base / "socks-theirs"
    d.mkdir()
    if how.startswith("owned"):
        os.chown(d, attacker.uid, attacker.gid)
    else:
        os.chmod(d, 0o777)
    a = native_agent(base, cpus, hugepage_dir,
                     "[vhost]\nsocket_dir = %s\n" % d, "refused")
    assert a.start().proc.wait(util.DEADLINE) == 1
    out = a.output()
    assert "socket directory %s" % d in out and "fix: chown root" in out, out
    assert os.listdir(d) == []


def test_a_socket_swapped_for_a_link_never_redirects_root(
        attacker, base, cpus, hugepage_dir, precious):
    """The socket's owner (the attacker: a compromised QEMU user) swaps
    its socket for a link to a root file, once after the socket is made
    and all the time while relays come and go: the file stays root's,
    the link is never unlinked or followed, and the relay says why it
    cannot use the path."""
    a = native_agent(base, cpus, hugepage_dir, DEVICES + textwrap.dedent("""\
        [vhost]
        socket_owner = %s
        socket_group = %s
        """) % (attacker.name, attacker.group) + group_conf(attacker),
        "swap")
    a.start().wait_ready()
    sock = a.socket_dir / "virtio-forwarder1.sock"
    st = os.stat(a.socket_dir)
    assert st.st_uid == 0 and stat.S_IMODE(st.st_mode) == 0o1775
    add = ("add", "--virtio-id", "1", "--pci-addr", "99:00.1")
    remove = ("remove", "--virtio-id", "1", "--pci-addr", "99:00.1")
    assert a.ctl(*add).returncode == 0
    assert os.lstat(sock).st_uid == attacker.uid
    swap = attacker.run("""
        os.rename(ARGS["sock"], ARGS["sock"] + ".stolen")
        os.symlink(ARGS["precious"], ARGS["sock"])
        """, {"sock": str(sock), "precious": str(precious)})
    assert swap.returncode == 0, swap.stderr
    # (DPDK drops the name when the relay goes; nothing is followed.)
    assert a.ctl(*remove).returncode == 0
    assert untouched(precious)
    plant = attacker.run("""
        if os.path.lexists(ARGS["sock"]):
            os.unlink(ARGS["sock"])
        os.symlink(ARGS["precious"], ARGS["sock"])
        """, {"sock": str(sock), "precious": str(precious)})
    assert plant.returncode == 0, plant.stderr
    refused = a.ctl(*add)
    assert refused.returncode == 1 and "not a socket" in refused.stderr
    assert os.path.islink(sock) and untouched(precious)

    # And racing: the attacker swaps whatever socket appears, all along.
    os.unlink(sock)
    racer = attacker.popen("""
        n = 0
        end = time.monotonic() + ARGS["seconds"]
        while time.monotonic() < end:
            try:
                os.rename(ARGS["sock"], ARGS["sock"] + ".%d" % n)
                os.symlink(ARGS["precious"], ARGS["sock"])
                n += 1
            except OSError:
                pass
        """, {"sock": str(sock), "precious": str(precious), "seconds": 10})
    try:
        for _ in range(30):
            a.ctl(*add)
            a.ctl(*remove)
            try:
                if os.path.islink(sock):
                    os.unlink(sock)
            except FileNotFoundError:
                pass        # the racer moved it meanwhile
    finally:
        racer.wait(util.DEADLINE)
    assert untouched(precious)
    assert a.proc.poll() is None


def test_others_cannot_take_roots_socket(attacker, base, cpus,
                                         hugepage_dir):
    """With root as the socket owner, nobody else may rename the socket
    away and put their own in its place (the VM would connect to them)."""
    a = native_agent(base, cpus, hugepage_dir, DEVICES + "[vhost]\n"
                     "socket_group = %s\n" % attacker.group, "take")
    a.start().wait_ready()
    assert a.ctl("add", "--virtio-id", "1", "--pci-addr",
                 "99:00.1").returncode == 0
    sock = a.socket_dir / "virtio-forwarder1.sock"
    inode = os.lstat(sock).st_ino
    take = attacker.run("""
        try:
            os.rename(ARGS["sock"], ARGS["sock"] + ".mine")
            print("renamed")
        except PermissionError:
            print("refused")
        """, {"sock": str(sock)})
    assert take.stdout.strip() == "refused", take
    assert os.lstat(sock).st_ino == inode


# 2. IPC results are never written through links.

def test_ipc_results_are_never_written_through_a_planted_link(
        attacker, base, cpus, hugepage_dir, precious):
    ipc = base / "commands"
    a = native_agent(base, cpus, hugepage_dir, DEVICES + textwrap.dedent("""\
        [control]
        port_control = ipc
        ipc_dir = %s
        endpoint_group = %s
        """) % (ipc, attacker.group), "ipc")
    a.start().wait_ready()
    st = os.stat(ipc)
    assert st.st_uid == 0 and stat.S_IMODE(st.st_mode) == 0o1770
    drop = attacker.run("""
        d = ARGS["ipc"]
        for name in (".cmd.tmp", "cmd.result"):
            os.symlink(ARGS["precious"], os.path.join(d, name))
        with open(os.path.join(d, ".cmd"), "w") as f:
            f.write(json.dumps({"op": "add", "virtio_id": 1,
                                "pci_addrs": ["99:00.1"]}))
        os.rename(os.path.join(d, ".cmd"), os.path.join(d, "cmd"))
        """, {"ipc": str(ipc), "precious": str(precious)})
    assert drop.returncode == 0, drop.stderr
    util.wait_for(lambda: "IPC command cmd: cannot answer" in a.output(),
                  what="the refused answer logged")
    assert "cmd.result is there and is not the agent's" in a.output()
    assert untouched(precious)
    assert os.path.islink(ipc / "cmd.result")
    # A fair command is answered, in a file of root's the group may read.
    fair = attacker.run("""
        d = ARGS["ipc"]
        with open(os.path.join(d, ".ok"), "w") as f:
            f.write(json.dumps({"op": "remove", "virtio_id": 1,
                                "pci_addrs": ["99:00.1"]}))
        os.rename(os.path.join(d, ".ok"), os.path.join(d, "ok"))
        """, {"ipc": str(ipc)})
    assert fair.returncode == 0, fair.stderr
    result = ipc / "ok.result"
    util.wait_for(result.exists, what="the answer")
    st = os.stat(result)
    assert st.st_uid == 0 and st.st_gid == attacker.group_gid
    assert untouched(precious)


# 3. OVSDB rows and domain metadata name VFs, not DPDK devargs.

def test_ovsdb_rows_cannot_name_any_netdev(tmp_path, cpus, hugepage_dir,
                                          veth):
    from tests.functional.ovsdb_server import OvsdbServer
    from tests.functional.test_ovsdb import add_port, relays
    (tmp_path / "ovsdb").mkdir()
    ovs = OvsdbServer(tmp_path / "ovsdb").create().start()
    try:
        ovs.vsctl("--no-wait", "add-br", "br-int")
        conf = ovs.agent_config.replace("allow_devargs = true\n", "")
        a = native_agent(tmp_path, cpus, hugepage_dir, conf, "ovsnodev")
        a.start().wait_ready()
        dpdk_if, _ = veth()
        add_port(ovs, dpdk_if, virtio_forwarder="4")
        util.wait_for(lambda: "Interface %s (relay 4) is not a PCI function; "
                      "skipped" % dpdk_if in a.output(),
                      what="the row refused")
        assert 4 not in relays(a) and a.proc.poll() is None
    finally:
        ovs.stop()


# 4. ADD_SOCK names sockets only in the socket directories.

def test_dynamic_sockets_only_in_the_socket_directories(
        attacker, base, cpus, hugepage_dir):
    a = native_agent(base, cpus, hugepage_dir, DEVICES + textwrap.dedent("""\
        [vhost]
        dynamic_sockets = true
        socket_group = %s
        """) % attacker.group + group_conf(attacker), "dyn")
    a.start().wait_ready()
    socks = a.socket_dir
    theirs = base / "theirs"
    theirs.mkdir()
    os.chown(theirs, attacker.uid, attacker.gid)
    out = attacker.run(PORT_CONTROL + textwrap.dedent("""
        # their own stale socket, outside; a link to a root-only
        # directory, inside (they are in the socket group)
        s = socket.socket(socket.AF_UNIX)
        s.bind(ARGS["stale"])
        s.close()
        os.symlink("/root", os.path.join(ARGS["socks"], "sub"))
        results = {}
        for path in ARGS["paths"]:
            results[path] = port_control(op=protocol.PortControlRequest.ADD_SOCK,
                                         vhost_path=path, pci_addrs=[
                protocol.PortControlRequest.PciAddress(domain=0, bus=0x99, slot=0,
                                    function=1)])
        print(json.dumps(results))
        """), {"ep": a.ep("port_control"), "socks": str(socks),
              "stale": str(theirs / "stale.sock"),
              "paths": ["/root/x.sock", "%s/../x.sock" % socks,
                        str(theirs / "stale.sock"), "%s/sub/x.sock" % socks,
                        "%s/ok.sock" % socks]})
    assert out.returncode == 0, out.stderr
    results = json.loads(out.stdout)
    ok = "%s/ok.sock" % socks
    assert results.pop(ok)[0] is True
    for path, (accepted, why) in results.items():
        assert not accepted and "not directly in a socket directory" in \
            why, (path, why)
    assert not os.path.exists("/root/x.sock")
    assert not os.path.exists(base / "dyn" / "x.sock")
    assert stat.S_ISSOCK(os.lstat(theirs / "stale.sock").st_mode)
    journal = (base / "dyn" / "state" / "journal").read_text()
    assert ok in journal and "/root" not in journal and \
        "theirs" not in journal and "/sub/" not in journal


# 5. One agent per endpoint; the pid file by lock, not by name.

def test_a_second_agent_cannot_take_the_endpoints(base, cpus,
                                                  hugepage_dir):
    first = native_agent(base, cpus, hugepage_dir, DEVICES, "first")
    first.start().wait_ready()
    # The second shares the endpoints, nothing else.
    second = native_agent(base, cpus, hugepage_dir,
                          "[control]\n" + "".join(
                              "zmq_%s_ep = %s\n" % (n, first.ep(n)) for n in
                              ("port_control", "stats", "core_sched",
                               "config")), "second")
    assert second.start().proc.wait(util.DEADLINE) == 1
    assert "is in use by another process (another agent?)" in \
        second.output()
    assert first.ctl("add", "--virtio-id", "1", "--pci-addr",
                     "99:00.1").returncode == 0


def test_a_process_named_like_the_agent_does_not_block_it(
        attacker, base, cpus, hugepage_dir):
    impostor = subprocess.Popen(
        ["bash", "-c", "exec -a vio4wd-agent sleep 300"],
        preexec_fn=lambda: (os.setgid(attacker.gid),
                            os.setuid(attacker.uid)))
    try:
        a = native_agent(base, cpus, hugepage_dir, "", "named")
        pid_file = base / "named" / "agent.pid"
        pid_file.write_text("%d\n" % impostor.pid)
        a.start().wait_ready()
        assert pid_file.read_text() == "%d\n" % a.proc.pid
    finally:
        impostor.kill()
        impostor.wait()


# 6. Nothing from outside forges a log line.

def test_names_cannot_forge_log_lines(attacker, base, cpus, hugepage_dir):
    a = native_agent(base, cpus, hugepage_dir, DEVICES + "[vhost]\n"
                     "dynamic_sockets = true\n" + group_conf(attacker), "log")
    a.start().wait_ready()
    forged = "2026-11-29 00:00:00.000 1 CRITICAL vio4wd [-] forged"
    out = attacker.run(PORT_CONTROL + textwrap.dedent("""
        for path in ARGS["paths"]:
            print(port_control(op=protocol.PortControlRequest.ADD_SOCK,
                               vhost_path=path, pci_addrs=[
                protocol.PortControlRequest.PciAddress(domain=0, bus=0x99, slot=0,
                                    function=1)]))
        """), {"ep": a.ep("port_control"),
              "paths": ["%s/x\n%s" % (a.socket_dir, forged),
                        "%s/y\x00\n%s" % (a.socket_dir, forged),
                        "%s/z\x1b[2K\r%s" % (a.socket_dir, forged)]})
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("(False,") == 3, out.stdout
    log = a.output()
    assert "\0" not in log and "\x1b" not in log and "\r" not in log
    assert not any(line.startswith(forged) for line in log.splitlines())
    assert "x\\x0a" + forged in log


def test_a_state_directory_someone_else_controls_is_refused(
        attacker, base, cpus, hugepage_dir):
    """The journal is restored as root's own word: a state directory the
    attacker owns (where they could write a journal of their own) stops
    the start, naming it."""
    state = base / "state-theirs"
    state.mkdir()
    os.chown(state, attacker.uid, attacker.gid)
    a = native_agent(base, cpus, hugepage_dir,
                     "[agent]\nstate_dir = %s\n" % state, "state")
    assert a.start().proc.wait(util.DEADLINE) == 1
    assert "state directory %s" % state in a.output()


def test_domain_metadata_cannot_name_devargs(attacker, base, cpus,
                                             hugepage_dir):
    """Whoever may define domains (the attacker, in libvirtd's socket
    group) names net_pcap devargs that would make root write a file of
    theirs choosing: the socket is served, without that VF, and no file
    is written."""
    import tempfile
    from tests.functional.domains import Nic, domain_xml
    from tests.functional.libvirtd import Libvirtd
    from tests.functional.test_ovsdb import relays
    lv_base = tempfile.mkdtemp(prefix="v4watk-lv-")
    lv = Libvirtd(lv_base, sock_group=attacker.group).start()
    try:
        socks = base / "lvsocks"
        a = native_agent(base, cpus, hugepage_dir, textwrap.dedent("""\
            [vhost]
            socket_dir = %s
            [libvirt]
            enabled = true
            uri = %s
            hook_socket = %s
            """) % (socks, lv.uri, lv.hook_socket), "lvdev")
        a.start().wait_ready()
        util.wait_for(lambda: "connected; watching domains" in a.output(),
                      what="the watcher connected")
        target = base / "written-by-root"
        xml = domain_xml("v4watk-dom", [Nic(
            str(socks / "virtio-forwarder3.sock"),
            vf="net_pcap3,tx_pcap=%s" % target)])
        define = attacker.run("""
            conn = libvirt.open(ARGS["uri"])
            conn.defineXML(ARGS["xml"])
            """, {"uri": lv.uri, "xml": xml})
        assert define.returncode == 0, define.stderr
        util.wait_for(lambda: 3 in relays(a), what="relay 3, from libvirt")
        assert not relays(a)[3].HasField("vf")
        assert "VF 'net_pcap3,tx_pcap=%s' is not a PCI address" % target \
            in a.output()
        assert not target.exists()
    finally:
        lv.cleanup()
        shutil.rmtree(lv_base, ignore_errors=True)
