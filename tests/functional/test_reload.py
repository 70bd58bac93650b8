# SPDX-License-Identifier: Apache-2.0
"""SIGHUP: the agent reads its configuration again and applies the static
VFs while relays run; a bad file changes nothing."""
from __future__ import annotations

import os
import signal

from tests.functional import util
from tests.functional.agentproc import AgentProcess, legacy_basics
from tests.functional.test_ovsdb import relays

LEGACY = """\
VIRTIOFWD_LOG_LEVEL=6
VIRTIOFWD_SOCKET_OWNER=%(owner)s
VIRTIOFWD_STATIC_VFS=%(vfs)s
VIO4WD_DEVICE_MAP=(0000:99:00.3=net_null43)
"""


def vfs(agent) -> dict[int, str]:  # type: ignore[no-untyped-def]
    return {i: r.vf.pci_addr_str for i, r in relays(agent).items()}


def reloadable_agent(tmp_path, cpus, hugepage_dir, static_vfs: str,
                     name: str):  # type: ignore[no-untyped-def]
    """An agent on the legacy file, started: (agent, its socket dir, the
    file's basic lines, the LEGACY values)."""
    socks = tmp_path / "socks"
    basics = legacy_basics(cpus, hugepage_dir, socks)
    values = dict(owner="root", vfs=static_vfs)
    agent = AgentProcess(tmp_path, basics + LEGACY % values, native=(
        "[dataplane]\nfile_prefix = v4w%s%d\nexpected_relays = 6\n"
        % (name, os.getpid())))
    agent.start().wait_ready()
    return agent, socks, basics, values


def test_sighup_applies_static_vfs_and_keeps_the_rest(tmp_path, cpus,
                                                      hugepage_dir):
    agent, socks, basics, values = reloadable_agent(
        tmp_path, cpus, hugepage_dir, "(net_null41=1 net_null42=2)",
        "reload")
    try:
        assert vfs(agent) == {1: "net_null41", 2: "net_null42"}
        done = agent.ctl("add", "--virtio-id", "3", "--pci-addr",
                         "0000:99:00.3")
        assert done.returncode == 0, done.stderr
        inode = os.stat(socks / "virtio-forwarder1.sock").st_ino

        # relay 2 gets another VF, relay 4 is new; the socket owner
        # changes too, which only a restart applies
        values.update(vfs="(net_null41=1 net_null44=2 net_null45=4)",
                      owner="libvirt-qemu")
        agent.legacy.write_text(basics + LEGACY % values)
        agent.proc.send_signal(signal.SIGHUP)
        out = util.wait_for(lambda: "reload: static relays" in
                            agent.output() and agent.output(),
                            what="the reload")
        assert vfs(agent) == {1: "net_null41", 2: "net_null44",
                              3: "0000:99:00.3", 4: "net_null45"}
        assert "static relays 2 added, 1 removed, 0 failed" in out
        assert "reload: sockets changed; takes effect when the agent " \
            "restarts" in out
        # relay 1 was not re-made
        assert os.stat(socks / "virtio-forwarder1.sock").st_ino == inode

        # a bad file: named, and nothing moves
        agent.legacy.write_text(basics + LEGACY % dict(values, vfs="(junk)"))
        agent.proc.send_signal(signal.SIGHUP)
        out = util.wait_for(lambda: "reload: configuration error" in
                            agent.output() and agent.output(),
                            what="the bad reload")
        line = out.split("reload: configuration error")[1].split("\n")[0]
        assert "VIRTIOFWD_STATIC_VFS" in line and "junk" in line, line
        assert "running configuration is kept" in line
        assert vfs(agent) == {1: "net_null41", 2: "net_null44",
                              3: "0000:99:00.3", 4: "net_null45"}

        # static VFs removed from the file go; port control's stay
        agent.legacy.write_text(basics + LEGACY % dict(values, vfs="()"))
        agent.proc.send_signal(signal.SIGHUP)
        util.wait_for(lambda: vfs(agent) == {3: "0000:99:00.3"},
                      what="static relays removed")
        assert agent.proc.poll() is None
    finally:
        assert agent.stop() == 0


def test_sighup_with_an_unusable_socket_dir_keeps_every_relay(
        tmp_path, cpus, hugepage_dir):
    """A socket directory that is a file, that contains a NUL byte, or
    that does not exist: the running relays and their sockets stay, the
    agent says why, and keeps running."""
    agent, socks, basics, values = reloadable_agent(
        tmp_path, cpus, hugepage_dir, "(net_null46=1 net_null47=2)",
        "reload2")
    try:
        util.wait_for(lambda: vfs(agent) == {1: "net_null46",
                                             2: "net_null47"},
                      what="static relays")
        inodes = {i: os.stat(socks / ("virtio-forwarder%d.sock" % i)).st_ino
                  for i in (1, 2)}
        a_file = tmp_path / "a-file"
        a_file.write_text("")

        def reload_with(socket_dir: str, expect: str) -> None:
            text = basics.replace("VIRTIOFWD_SOCKET_DIR=%s" % socks,
                                  "VIRTIOFWD_SOCKET_DIR=%s" % socket_dir)
            assert text != basics
            agent.legacy.write_bytes((text + LEGACY % values).encode(
                "utf-8", "surrogateescape"))
            seen = agent.output().count(expect)
            agent.proc.send_signal(signal.SIGHUP)
            util.wait_for(lambda: agent.output().count(expect) > seen,
                          what="the reload saying %r" % expect)
            assert agent.proc.poll() is None, agent.output()
            assert vfs(agent) == {1: "net_null46", 2: "net_null47"}
            for i, ino in inodes.items():
                assert os.stat(socks / ("virtio-forwarder%d.sock"
                                        % i)).st_ino == ino

        reload_with(str(a_file), "exists and is not a directory")
        reload_with(str(tmp_path / "nul\0dir"), "VIRTIOFWD_SOCKET_DIR")
        reload_with(str(tmp_path / "missing"), "sockets changed; takes "
                    "effect when the agent restarts")
        assert not (tmp_path / "missing").exists()
        assert "Traceback" not in agent.output()
    finally:
        assert agent.stop() == 0
