# SPDX-License-Identifier: Apache-2.0
"""vio4wd-agent as a process, configured by the legacy
/etc/default/virtioforwarder format: static VFs, socket ownership, PID
file, signals, and bad configuration."""
from __future__ import annotations

import grp
import os
import pwd
import signal
import stat
import subprocess
import sys
import textwrap

import pytest

from tests.functional import util
from tests.functional.conftest import connected  # noqa: F401

from tests.functional.agentproc import (  # noqa: F401
    AGENT, AgentProcess, legacy_basics)


@pytest.fixture
def agent_dirs(tmp_path):
    socks = tmp_path / "socks"
    run = tmp_path / "run"
    return socks, run


def test_legacy_config_static_vfs(tmp_path, agent_dirs, cpus, hugepage_dir,
                                  vm_factory):
    socks, run = agent_dirs
    agent = AgentProcess(tmp_path, """\
        # a virtio-forwarder file, as operators have them
        VIRTIOFWD_CPU_MASK=%(worker)d
        VIRTIOFWD_MASTER_LCORE=%(main)d
        VIRTIOFWD_LOG_LEVEL=6
        VIRTIOFWD_HUGETLBFS_MOUNT_POINT=%(huge)s
        VIRTIOFWD_SOCKET_DIR=%(socks)s
        VIRTIOFWD_SOCKET_OWNER=libvirt-qemu
        VIRTIOFWD_SOCKET_GROUP=kvm
        VIRTIOFWD_STATIC_VFS=(0000:99:00.1=0 net_null31=1 0000:99:00.2=2)
        VIO4WD_DEVICE_MAP=(0000:99:00.1=net_null30)
        VIRTIOFWD_CPU_PINS=(0:%(worker)d,%(worker)d)
        VIRTIOFWD_MRGBUF=y
        VIRTIOFWD_PID_DIR=%(run)s
        VIRTIOFWD_BIND_VFIO_PCI=0000:99:00.3
        VIRTIOFWD_BINARY=/usr/bin/virtio-forwarder
        """ % dict(cpus, huge=hugepage_dir or "", socks=socks, run=run),
        native="[dataplane]\nfile_prefix = v4wagent%d\n" % os.getpid())
    agent.start()
    pidfile = run / "virtioforwarder.pid"
    sock0, sock1 = socks / "virtio-forwarder0.sock", \
        socks / "virtio-forwarder1.sock"
    try:
        util.wait_for(lambda: sock0.exists() and sock1.exists(), timeout=30,
                      what="static relay sockets")
        util.wait_for(pidfile.exists, what="pid file")
        assert int(pidfile.read_text()) == agent.proc.pid
        for sock in (sock0, sock1):
            st = os.stat(sock)
            assert stat.S_ISSOCK(st.st_mode)
            assert st.st_uid == pwd.getpwnam("libvirt-qemu").pw_uid
            assert st.st_gid == grp.getgrnam("kvm").gr_gid
            assert stat.S_IMODE(st.st_mode) == 0o660
        assert not (socks / "virtio-forwarder2.sock").exists()

        # Relay 0's VF is the mapped net_null: the VM receives its flood.
        vm = vm_factory(str(sock0))
        vm.forward("rxonly")
        util.wait_for(lambda: vm.port_stats().rx_packets > 1000,
                      what="traffic from the mapped VF")
        vm.stop()

        log = agent.output()
        # no such device here: said, and the agent carries on
        assert "bind_vfio_pci 0000:99:00.3: no PCI device 0000:99:00.3" in log
        assert "static relay 2 (VF 0000:99:00.2) not added" in log
        assert "Cannot find device (0000:99:00.2)" in log
        # ... said by the data plane where it failed, too
        assert "vio4wd: relay 2: cannot attach VF '0000:99:00.2'" in log
        assert agent.proc.poll() is None
    finally:
        rc = agent.stop()
    assert rc == 0, agent.output()
    assert not pidfile.exists()
    assert not sock0.exists() and not sock1.exists()
    assert "vio4wd agent stopped" in agent.output()


def test_sigint_stops_cleanly(tmp_path, agent_dirs, cpus, hugepage_dir):
    socks, run = agent_dirs
    agent = AgentProcess(
        tmp_path, legacy_basics(cpus, hugepage_dir, socks) +
        "VIRTIOFWD_STATIC_VFS=net_null32=5\nVIRTIOFWD_PID_DIR=%s\n" % run,
        native="[dataplane]\nfile_prefix = v4wagent%d\n" % os.getpid())
    agent.start()
    util.wait_for((socks / "virtio-forwarder5.sock").exists, timeout=30,
                  what="socket")
    assert agent.stop(signal.SIGINT) == 0
    assert not (run / "virtioforwarder.pid").exists()


def test_a_second_agent_on_the_same_pid_file_exits_cleanly(
        tmp_path, agent_dirs, cpus, hugepage_dir):
    """It says who holds the pid file and exits 1, with no traceback; the
    first agent keeps its relay and its endpoints."""
    socks, run = agent_dirs
    legacy_text = legacy_basics(cpus, hugepage_dir, socks) + \
        "VIRTIOFWD_STATIC_VFS=net_null33=6\nVIRTIOFWD_PID_DIR=%s\n" % run
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = AgentProcess(tmp_path / "a", legacy_text, native=(
        "[dataplane]\nfile_prefix = v4wfirst%d\n" % os.getpid()))
    second = AgentProcess(tmp_path / "b", legacy_text, native=(
        "[dataplane]\nfile_prefix = v4wsecond%d\n" % os.getpid()))
    first.start().wait_ready()
    try:
        assert second.start().proc.wait(60) == 1
        out = second.output()
        assert "another agent (pid %d) holds %s" % (
            first.proc.pid, run / "virtioforwarder.pid") in out, out
        assert "Traceback" not in out
        assert first.proc.poll() is None
        assert int((run / "virtioforwarder.pid").read_text()) == \
            first.proc.pid
        assert (socks / "virtio-forwarder6.sock").exists()
        first.wait_ready()
    finally:
        assert first.stop() == 0


BAD_CONFIGS = [
    ("VIRTIOFWD_CPU_MASK={worker},77", "VIRTIOFWD_CPU_MASK", "77"),
    ("VIRTIOFWD_CPU_MASK={main}", "VIRTIOFWD_CPU_MASK", "main lcore"),
    ("VIRTIOFWD_CPU_MASK=one", "VIRTIOFWD_CPU_MASK", "'one'"),
    ("VIRTIOFWD_MASTER_LCORE=abc", "VIRTIOFWD_MASTER_LCORE", "abc"),
    ("VIRTIOFWD_LOG_LEVEL=9", "VIRTIOFWD_LOG_LEVEL", "9"),
    ("VIRTIOFWD_STATIC_VFS=(0000:05:08.1)", "VIRTIOFWD_STATIC_VFS",
     "0000:05:08.1"),
    ("VIRTIOFWD_STATIC_VFS=(0000:05:08.1=1 net_null0=1)",
     "VIRTIOFWD_STATIC_VFS", "already given"),
    ("VIRTIOFWD_STATIC_VFS=(0000:05:08.1=x)", "VIRTIOFWD_STATIC_VFS", "'x'"),
    ("VIRTIOFWD_SOCKET_FNAME_PATTERN=vf.sock",
     "VIRTIOFWD_SOCKET_FNAME_PATTERN", "exactly one %u"),
    ("VIRTIOFWD_SOCKET_FNAME_PATTERN=vf%u-%u.sock",
     "VIRTIOFWD_SOCKET_FNAME_PATTERN", "exactly one %u"),
    ("VIRTIOFWD_CPU_PINS=(0:{main})", "VIRTIOFWD_CPU_PINS",
     "not a worker CPU"),
    ("VIRTIOFWD_CPU_PINS=0-1", "VIRTIOFWD_CPU_PINS", "0-1"),
    ("VIRTIOFWD_SOCKET_OWNER=no-such-user", "VIRTIOFWD_SOCKET_OWNER",
     "no such user"),
    ("VIRTIOFWD_SOCKET_GROUP=no-such-group", "VIRTIOFWD_SOCKET_GROUP",
     "no such group"),
    ("VIO4WD_DEVICE_MAP=(net_null0=net_null1)", "VIO4WD_DEVICE_MAP",
     "net_null0"),
    ("VIRTIOFWD_STATIC_VFS=(0000:05:08.1=1", "VIRTIOFWD_STATIC_VFS",
     "unterminated"),
    ("VIRTIOFWD_SOCKET_DIR=\"/tmp/unclosed", "VIRTIOFWD_SOCKET_DIR",
     "quotation"),
    ("this line is no assignment", "line 3", "NAME=value"),
    ("VIRTIOFWD_SOCKET_OWNER=ro\0ot", "VIRTIOFWD_SOCKET_OWNER",
     "control character"),
    ("VIRTIOFWD_PID_DIR=/tmp/\0p", "VIRTIOFWD_PID_DIR", "control character"),
    ("VIRTIOFWD_ZMQ_STATS_EP=ipc:///tmp/x\0y", "VIRTIOFWD_ZMQ_STATS_EP",
     "control character"),
    ("VIRTIOFWD_SOCKET_DIR=/tmp/\x01d", "VIRTIOFWD_SOCKET_DIR",
     "control character"),
]


@pytest.mark.parametrize("line,name,value", BAD_CONFIGS,
                         ids=[b[0].replace("\0", "<NUL>") for b in
                              BAD_CONFIGS])
def test_bad_legacy_config(tmp_path, cpus, line, name, value):
    agent = AgentProcess(tmp_path, "VIRTIOFWD_MASTER_LCORE=%(main)d\n"
                         "VIRTIOFWD_CPU_MASK=%(worker)d\n" % cpus +
                         line.format(**cpus) + "\n")
    rc = agent.run()
    out = agent.output()
    assert rc == 2, out
    assert name in out and value in out, out
    assert "configuration error" in out


def test_bad_native_config(tmp_path, cpus):
    agent = AgentProcess(tmp_path, "# nothing here\n", native="""\
        [dataplane]
        worker_cpus = 1,x
        """)
    rc = agent.run()
    assert rc == 2
    assert "[dataplane] worker_cpus" in agent.output()
    assert "'x' is not a CPU number" in agent.output()


def test_missing_legacy_file(tmp_path):
    proc = subprocess.run([AGENT, "--legacy-config", str(tmp_path / "nope")],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2
    assert "--legacy-config" in proc.stderr and "nope" in proc.stderr


def test_legacy_core_scheduler_and_vf_token(tmp_path, agent_dirs, cpus,
                                            hugepage_dir):
    socks, run = agent_dirs
    agent = AgentProcess(tmp_path, legacy_basics(cpus, hugepage_dir, socks) +
                         textwrap.dedent("""\
        VIRTIOFWD_STATIC_VFS=(net_null33=1 net_null34=2)
        VIO4WD_CORE_SCHED_ENABLE=true
        VIO4WD_CORE_SCHED_SENSITIVITY=30
        VIO4WD_CORE_SCHED_POLL_INTERVAL=0.5
        VIO4WD_CORE_SCHED_LOG_LEVEL=7
        VIRTIOFWD_VFIO_VF_TOKEN=0
        """),
        native="[dataplane]\nfile_prefix = v4wsched%d\n" % os.getpid())
    agent.start().wait_ready()
    try:
        out = agent.output()
        assert "core scheduler: balancing every 0.5 s, sensitivity 30%" \
            in out
        assert "not supported" not in out
        # the EAL took the token (virtio-forwarder's default for "0")
        assert "--vfio-vf-token=14d63f20-8445-11ea-8900-1f9ce7d5650d" in out
        # rounds over two busy relays on the one worker: nothing to move,
        # nothing failing
        out = util.wait_for(lambda: "core scheduler: round 3:" in
                            agent.output() and agent.output(),
                            what="three rounds of the core scheduler")
        assert "round 3: 4 direction(s) on 1 worker(s)" in out
        assert "round failed" not in out and "moved" not in out.split(
            "balancing every")[1]
        from prometheus_client.parser import text_string_to_metric_families
        import urllib.request
        with urllib.request.urlopen(agent.metrics_url(),
                                    timeout=util.DEADLINE) as r:
            got = {s.name: s.value for f in text_string_to_metric_families(
                r.read().decode()) for s in f.samples}
        assert got["vio4wd_core_scheduler_rounds_total"] >= 3
        assert got["vio4wd_core_scheduler_moves_total"] == 0
    finally:
        assert agent.stop() == 0
