# SPDX-License-Identifier: Apache-2.0
from __future__ import annotations

import logging
import textwrap

import pytest
from oslo_config import cfg

from vio4wd_agent import conf as vconf
from vio4wd_agent.conf import legacy
from vio4wd_agent.exception import ConfigError

ORIGINAL = """\
# Virtio-forwarder daemon settings, in the original's style
VIRTIOFWD_CPU_MASK=1,2
VIRTIOFWD_LOG_LEVEL=6
VIRTIOFWD_IPC_PORT_CONTROL=y
VIRTIOFWD_OVSDB_SOCK_PATH=
VIRTIOFWD_JUMBO=y
VIRTIOFWD_MRGBUF=y
VIRTIOFWD_TSO=
VIRTIOFWD_SOCKET_OWNER=
VIRTIOFWD_HUGETLBFS_MOUNT_POINT=/dev/hugepages
VIRTIOFWD_STATIC_VFS=(0000:05:08.1=1 0000:05:08.2=2)
VIRTIOFWD_DYNAMIC_SOCKETS=
VIO4WD_CORE_SCHED_ENABLE=true
VIO4WD_CORE_SCHED_SENSITIVITY=
VIRTIOFWD_CPU_PINS=(0:1,1 1:1,2)
VIRTIOFWD_PID_DIR=/var/run
VIRTIOFWD_ZMQ_CONFIG_EP=
VIRTIOFWD_ZMQ_PORT_CONTROL_EP=ipc:///var/run/virtio-forwarder/port_control
VIRTIOFWD_SOCKET_DIR=/tmp/virtio-forwarder
VIRTIOFWD_SOCKET_FNAME_PATTERN=
VIRTIOFWD_BINARY=/usr/bin/virtio-forwarder
VIRTIOFWD_MASTER_LCORE=
VIRTIOFWD_VHOST_CLIENT=y
"""


def test_original_defaults_file():
    old = legacy.interpret(legacy.parse_text(ORIGINAL), "f")
    o = old.overrides
    assert o[("dataplane", "worker_cpus")] == "1,2"
    assert o[("dataplane", "log_level")] == 6
    assert o[("vhost", "jumbo")] is True and o[("vhost", "mrgbuf")] is True
    assert o[("vhost", "tso")] is False
    assert o[("vhost", "client_mode")] is True
    assert o[("dataplane", "hugepage_dir")] == "/dev/hugepages"
    assert o[("relay", "static_vfs")] == ["0000:05:08.1=1", "0000:05:08.2=2"]
    assert o[("relay", "cpu_pins")] == ["0:1,1", "1:1,2"]
    assert o[("agent", "pid_file")] == "/var/run/virtioforwarder.pid"
    # blank means the default, as in the original's start script
    assert ("vhost", "socket_owner") not in o
    assert ("dataplane", "main_lcore") not in o
    assert ("vhost", "socket_pattern") not in o
    assert old.not_supported == []
    assert o[("core_scheduler", "enabled")] is True
    assert ("core_scheduler", "sensitivity") not in o   # blank: default
    # Both ZeroMQ and IPC port control are set, as in virtio-forwarder's
    # sample: ZeroMQ wins, as it did there.
    assert o[("control", "port_control")] == "zmq"
    assert o[("control", "zmq_port_control_ep")] == \
        "ipc:///var/run/virtio-forwarder/port_control"
    assert ("control", "zmq_config_ep") not in o    # blank: the default
    assert "VIRTIOFWD_IPC_PORT_CONTROL is ignored" in old.notes[0]
    assert o[("vhost", "dynamic_sockets")] is False
    assert old.ignored == ["VIRTIOFWD_BINARY"]
    assert old.origins[("relay", "static_vfs")] == "VIRTIOFWD_STATIC_VFS"


def test_flags_absent_are_off_as_in_the_original():
    old = legacy.interpret({}, "f")
    for opt in ("jumbo", "mrgbuf", "tso", "client_mode"):
        assert old.overrides[("vhost", opt)] is False


def test_syntax_forms():
    text = textwrap.dedent("""\
        export VIRTIOFWD_SOCKET_DIR="/run/v 4"   # quoted, with a comment
        VIRTIOFWD_STATIC_VFS=(
            0000:05:08.1=1   # first
            'net_tap0,iface=t)0=2'
        )
        VIRTIOFWD_CPU_PINS=0:1,1
        VIRTIOFWD_SOCKET_GROUP='kvm'
        VIRTIOFWD_JUMBO=false
        """)
    v = legacy.parse_text(text)
    assert v["VIRTIOFWD_SOCKET_DIR"] == "/run/v 4"
    assert v["VIRTIOFWD_STATIC_VFS"] == ["0000:05:08.1=1",
                                         "net_tap0,iface=t)0=2"]
    assert v["VIRTIOFWD_CPU_PINS"] == "0:1,1"
    old = legacy.interpret(v, "f")
    assert old.overrides[("relay", "cpu_pins")] == ["0:1,1"]
    assert old.overrides[("vhost", "socket_group")] == "kvm"
    assert old.overrides[("vhost", "jumbo")] is False


@pytest.mark.parametrize("text,name", [
    ("VIRTIOFWD_CPU_MASK=1 2\n", "VIRTIOFWD_CPU_MASK"),
    ("VIRTIOFWD_CPU_MASK=(1 2)\n", "VIRTIOFWD_CPU_MASK"),
    ("VIRTIOFWD_LOG_LEVEL=8\n", "VIRTIOFWD_LOG_LEVEL"),
    ("VIRTIOFWD_MASTER_LCORE=-1\n", "VIRTIOFWD_MASTER_LCORE"),
    ("VIRTIOFWD_STATIC_VFS=(a b\n", "VIRTIOFWD_STATIC_VFS"),
    ("VIRTIOFWD_SOCKET_DIR='/x\n", "VIRTIOFWD_SOCKET_DIR"),
    ("garbage\n", "line 1"),
    ("1BAD=x\n", "line 1"),
    ("VIO4WD_CORE_SCHED_SENSITIVITY=0\n", "VIO4WD_CORE_SCHED_SENSITIVITY"),
    ("VIO4WD_CORE_SCHED_SENSITIVITY=lots\n",
     "VIO4WD_CORE_SCHED_SENSITIVITY"),
    ("VIO4WD_CORE_SCHED_POLL_INTERVAL=nan\n",
     "VIO4WD_CORE_SCHED_POLL_INTERVAL"),
    ("VIO4WD_CORE_SCHED_LOG_LEVEL=9\n", "VIO4WD_CORE_SCHED_LOG_LEVEL"),
])
def test_errors_name_the_variable(text, name):
    with pytest.raises(ConfigError) as info:
        legacy.interpret(legacy.parse_text(text, "f"), "f")
    assert name in str(info.value)


def test_unknown_and_unsupported_are_reported(caplog):
    old = legacy.interpret(legacy.parse_text(
        "FOO=1\nVIRTIOFWD_ZERO_COPY=y\n"), "f")
    with caplog.at_level(logging.WARNING):
        legacy.report(old)
    assert "unknown variable FOO" in caplog.text
    assert "VIRTIOFWD_ZERO_COPY is set but not supported" in caplog.text


def test_core_scheduler_variables():
    old = legacy.interpret(legacy.parse_text(
        "VIO4WD_CORE_SCHED_ENABLE=true\nVIO4WD_CORE_SCHED_SENSITIVITY=40\n"
        "VIO4WD_CORE_SCHED_POLL_INTERVAL=2.5\n"
        "VIO4WD_CORE_SCHED_GLOBAL_NUMA_OPT=y\n"
        "VIO4WD_CORE_SCHED_LOG_LEVEL=7\n"), "f")
    o = old.overrides
    assert (o[("core_scheduler", "enabled")], o[("core_scheduler",
            "sensitivity")], o[("core_scheduler", "poll_interval")],
            o[("core_scheduler", "cross_numa")],
            o[("core_scheduler", "log_level")]) == (True, 40.0, 2.5, True, 7)
    # as in virtio-forwarder, anything but "true" is off
    for value in ("yes", "1", "TRUE "):
        off = legacy.interpret({"VIO4WD_CORE_SCHED_ENABLE": value}, "f")
        assert off.overrides[("core_scheduler", "enabled")] is False


def test_vfio_vf_token_zero_is_the_default_token():
    old = legacy.interpret({"VIRTIOFWD_VFIO_VF_TOKEN": "0"}, "f")
    assert old.overrides[("dataplane", "vfio_vf_token")] == \
        "14d63f20-8445-11ea-8900-1f9ce7d5650d"
    blank = legacy.interpret({"VIRTIOFWD_VFIO_VF_TOKEN": ""}, "f")
    assert ("dataplane", "vfio_vf_token") not in blank.overrides
    assert blank.not_supported == []


def test_bind_vfio_pci_lists():
    old = legacy.interpret(legacy.parse_text(
        "VIRTIOFWD_BIND_VFIO_PCI=ens3,0000:01:02.3,ens4:16\n"), "f")
    assert old.overrides[("dataplane", "bind_vfio_pci")] == [
        "ens3", "0000:01:02.3", "ens4:16"]
    arr = legacy.interpret(legacy.parse_text(
        "VIRTIOFWD_BIND_VFIO_PCI=(01:02.3 ens4:2)\n"), "f")
    assert arr.overrides[("dataplane", "bind_vfio_pci")] == [
        "01:02.3", "ens4:2"]
    with pytest.raises(ConfigError, match="VIRTIOFWD_BIND_VFIO_PCI='ens4:0'"):
        legacy.interpret({"VIRTIOFWD_BIND_VFIO_PCI": "ens3,ens4:0"}, "f")


def test_cpu_nic_same_numa_is_not_needed():
    old = legacy.interpret({"VIRTIOFWD_CPU_NIC_SAME_NUMA": "y"}, "f")
    assert old.not_supported == [] and old.unknown == []
    assert "VIRTIOFWD_CPU_NIC_SAME_NUMA has no effect" in old.notes[0]


def test_apply_overrides_oslo_options():
    conf = cfg.ConfigOpts()
    vconf.register_opts(conf)
    conf([])
    legacy.apply(conf, legacy.interpret(legacy.parse_text(ORIGINAL), "f"))
    assert conf.dataplane.worker_cpus == "1,2"
    assert conf.vhost.client_mode is True
    assert conf.relay.static_vfs == ["0000:05:08.1=1", "0000:05:08.2=2"]


def test_read_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="--legacy-config"):
        legacy.read(str(tmp_path / "none"))


def test_port_control_sources():
    def mode(text: str) -> object:
        return legacy.interpret(legacy.parse_text(text), "f").overrides.get(
            ("control", "port_control"))
    assert mode("VIRTIOFWD_IPC_PORT_CONTROL=y\n") == "ipc"
    assert mode("VIRTIOFWD_IPC_PORT_CONTROL=\n") is None
    assert mode("VIRTIOFWD_OVSDB_SOCK_PATH=/run/db.sock\n") == "ovsdb"
    with pytest.raises(ConfigError, match="mutually exclusive"):
        mode("VIRTIOFWD_OVSDB_SOCK_PATH=/run/db.sock\n"
             "VIRTIOFWD_IPC_PORT_CONTROL=y\n")
    with pytest.raises(ConfigError, match="VIRTIOFWD_ZMQ_STATS_EP"):
        mode("VIRTIOFWD_ZMQ_STATS_EP=/var/run/stats\n")


from hypothesis import given, settings, strategies as st  # noqa: E402


@settings(max_examples=500, deadline=None)
@given(st.lists(st.one_of(
    st.text(max_size=60),
    st.tuples(st.sampled_from(sorted(legacy._MAP) +
                              list(legacy.NOT_YET_SUPPORTED) + ["X"]),
              st.text(max_size=40)).map(lambda t: "%s=%s" % t)),
    max_size=8).map("\n".join))
def test_any_file_is_read_or_refused_by_name(text):
    try:
        legacy.interpret(legacy.parse_text(text, "f"), "f")
    except ConfigError as exc:
        assert str(exc)


@pytest.mark.parametrize("text", [
    "VIRTIOFWD_SOCKET_DIR=/tmp/a\0b\n",
    "VIRTIOFWD_SOCKET_OWNER='ro\0ot'\n",
    "VIRTIOFWD_STATIC_VFS=(net_null0=1 'net_null1\x07=2')\n",
    "VIRTIOFWD_ZMQ_STATS_EP=\"ipc:///tmp/x\ny\"\n",
])
def test_control_characters_are_refused_by_name(text):
    with pytest.raises(ConfigError) as info:
        legacy.interpret(legacy.parse_text(text, "f"), "f")
    assert text.split("=", 1)[0] in str(info.value)
    assert "control character" in str(info.value)


@pytest.mark.parametrize("make", [
    lambda n: "VIRTIOFWD_BINARY=" + "x" * n + "\n",
    lambda n: "VIRTIOFWD_STATIC_VFS=(\n" + "net_null0=1\n" * (n // 12) + ")\n",
    lambda n: "VIRTIOFWD_BINARY='" + "x\\\n" * (n // 3) + "'\n",
    lambda n: "VIRTIOFWD_BINARY=" + "x\\\n" * (n // 3) + "\n",
    lambda n: "# c\n" * (n // 4) + "VIRTIOFWD_JUMBO=(\n",
])
def test_reading_is_linear(make):
    """The same work per byte for a small and a 16 times larger file (a
    count of operations, not a timing: the parse of the large file may
    touch each character a bounded number of times)."""
    import sys
    counts = []
    for n in (64 * 1024, 1024 * 1024):
        text = make(n)
        calls = 0

        def tracer(frame, event, arg):  # type: ignore[no-untyped-def]
            nonlocal calls
            if event in ("call", "c_call"):
                calls += 1
            return None
        sys.setprofile(tracer)
        try:
            legacy.parse_text(text, "f")
        except ConfigError:
            pass
        finally:
            sys.setprofile(None)
        counts.append(calls / len(text))
    assert counts[1] <= counts[0] * 1.5 + 0.01, counts
