# SPDX-License-Identifier: Apache-2.0
from __future__ import annotations

import os

import pytest
from oslo_config import cfg

from vio4wd_agent import conf as vconf
from vio4wd_agent.conf import settings
from vio4wd_agent.exception import ConfigError


@pytest.fixture
def conf(monkeypatch):
    monkeypatch.setattr(settings, "online_cpus", lambda: [0, 1, 2, 3])
    monkeypatch.setattr(settings.eal, "hugetlbfs_mounts", lambda: {})
    c = cfg.ConfigOpts()
    vconf.register_opts(c)
    c([], default_config_files=[])
    c.set_override("socket_dir", "/run/s", "vhost")
    return c


def test_defaults(conf):
    s = settings.build(conf)
    assert s.main_lcore == 0 and s.worker_cpus == [1, 2, 3]
    assert s.memory.hugepage_dir is None
    assert "--no-huge" in s.eal_args
    assert s.sockets.uid == os.getuid() and s.sockets.mode == 0o660
    assert s.static_relays == []


def test_static_relays_with_pins_and_device_map(conf):
    conf.set_override("static_vfs", ["0000:99:00.1=0", "net_tap0,iface=t=7",
                                     "05:08.1=3"], "relay")
    conf.set_override("device_map", ["99:00.1=net_null0"], "relay")
    conf.set_override("cpu_pins", ["7:2,3", "0:1"], "relay")
    conf.set_override("client_mode", True, "vhost")
    conf.set_override("jumbo", True, "vhost")
    s = settings.build(conf)
    by_id = {r.relay_id: r for r in s.static_relays}
    assert by_id[0].vf == "net_null0" and by_id[0].cpus == (1, 1)
    assert by_id[7].vf == "net_tap0,iface=t" and by_id[7].cpus == (2, 3)
    assert by_id[3].vf == "0000:05:08.1" and by_id[3].cpus == (None, None)
    assert by_id[0].vhost_path == "/run/s/virtio-forwarder0.sock"
    assert all(r.client and r.jumbo and r.mrgbuf for r in s.static_relays)


@pytest.mark.parametrize("group,opt,value,text", [
    ("dataplane", "worker_cpus", "0,1", "includes the main lcore 0"),
    ("dataplane", "worker_cpus", "4", "CPU 4 not online"),
    ("dataplane", "main_lcore", 9, "not online"),
    ("relay", "cpu_pins", ["1:0"], "CPU 0 is not a worker CPU"),
    ("relay", "static_vfs", ["net_null0=1", "net_null1=1"], "already given"),
    ("vhost", "socket_pattern", "x.sock", "exactly one %u"),
    ("vhost", "socket_mode", "999", "not an octal mode"),
    ("vhost", "socket_owner", "no-such-user-here", "no such user"),
    ("dataplane", "vfio_vf_token", "not-a-uuid", "not a UUID"),
    ("libvirt", "hook_socket", "relative.sock", "absolute path"),
])
def test_errors_name_the_option(conf, group, opt, value, text):
    conf.set_override(opt, value, group)
    with pytest.raises(ConfigError) as info:
        settings.build(conf)
    assert "[%s] %s" % (group, opt) in str(info.value)
    assert text in str(info.value)


def test_errors_name_the_legacy_variable(conf):
    conf.set_override("worker_cpus", "7", "dataplane")
    with pytest.raises(ConfigError, match="VIRTIOFWD_CPU_MASK='7'"):
        settings.build(conf, {("dataplane", "worker_cpus"):
                              "VIRTIOFWD_CPU_MASK"})


def test_vfio_vf_token_reaches_the_eal(conf):
    assert not any(a.startswith("--vfio-vf-token") for a in
                   settings.build(conf).eal_args)
    conf.set_override("vfio_vf_token",
                      "14D63F20-8445-11EA-8900-1F9CE7D5650D", "dataplane")
    assert "--vfio-vf-token=14d63f20-8445-11ea-8900-1f9ce7d5650d" in \
        settings.build(conf).eal_args


def test_one_cpu_machine(conf, monkeypatch):
    monkeypatch.setattr(settings, "online_cpus", lambda: [0])
    with pytest.raises(ConfigError, match="only one CPU"):
        settings.build(conf)


@pytest.mark.parametrize("text,where", [
    ("[vhost]\nvf_queues = 33\n", "[vhost] vf_queues"),
    ("[vhost]\nmax_queues = 0\n", "[vhost] max_queues"),
    ("[dataplane]\nmain_lcore = x\n", "[dataplane] main_lcore"),
])
def test_values_out_of_range_in_a_file_are_named(tmp_path, monkeypatch,
                                                 text, where):
    monkeypatch.setattr(settings, "online_cpus", lambda: [0, 1, 2, 3])
    monkeypatch.setattr(settings.eal, "hugetlbfs_mounts", lambda: {})
    path = tmp_path / "vio4wd.conf"
    path.write_text("[vhost]\nsocket_dir = /run/s\n" + text)
    c = cfg.ConfigOpts()
    vconf.register_opts(c)
    c(["--config-file", str(path)], default_config_files=[])
    with pytest.raises(ConfigError) as info:
        settings.build(c)
    assert str(info.value).startswith(where + ":")
