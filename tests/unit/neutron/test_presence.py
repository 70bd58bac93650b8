# SPDX-License-Identifier: Apache-2.0
"""The agent's presence on the bus, with Neutron faked at the RPC client
(the real round trips are in tests/functional/test_neutron.py)."""
from __future__ import annotations

import os

import pytest
from oslo_config import cfg

from vio4wd_agent import conf as vconf
from vio4wd_agent import manager as mgr
from vio4wd_agent.conf import settings
from vio4wd_agent.exception import ConfigError
from vio4wd_agent.neutron import constants as c
from vio4wd_agent.neutron import presence
from vio4wd_agent.relay.model import RelaySpec
from vio4wd_agent.vhostuser.sockets import SocketPolicy
from tests.unit import test_manager

P1 = "4f1c2d3e-5a6b-4c7d-8e9f-001122334455"


class FakeEngine(test_manager.FakeEngine):
    @staticmethod
    def limits():
        from vio4wd_agent.relay.model import Limits
        return Limits(max_ethports=64, max_relays=64, max_lcores=128,
                      burst=32)


@pytest.fixture
def conf(monkeypatch):
    monkeypatch.setattr(settings, "online_cpus", lambda: [0, 1])
    monkeypatch.setattr(settings.eal, "hugetlbfs_mounts", lambda: {})
    c = cfg.ConfigOpts()
    vconf.register_opts(c)
    c([], default_config_files=[])
    c.set_override("socket_dir", "/run/s", "vhost")
    return c


def test_standalone_without_a_transport(conf):
    assert settings.build(conf).neutron is None


def test_neutron_settings(conf):
    conf.set_override("transport_url", "rabbit://u:p@127.0.0.1:5672/")
    conf.set_override("host", "compute-1")
    conf.set_override("physical_networks", ["physnet1", " physnet2"],
                      "neutron")
    n = settings.build(conf).neutron
    assert n is not None and n.host == "compute-1"
    assert n.physical_networks == ("physnet1", "physnet2")
    assert n.vhostuser_mode == "client" and n.report_interval == 30


@pytest.mark.parametrize("opt,group,value,words", [
    ("transport_url", None, "nonsense", "[DEFAULT] transport_url"),
    ("transport_url", None, "carrierpigeon://x/", "no oslo.messaging driver "
     "'carrierpigeon'"),
    ("physical_networks", "neutron", [" "], "names no physical network"),
])
def test_bad_bus_settings_are_named(conf, opt, group, value, words):
    conf.set_override("transport_url", "rabbit://u:hunter2@h:1/")
    conf.set_override(opt, value, group)
    with pytest.raises(ConfigError) as err:
        settings.build(conf)
    assert words in str(err.value)
    assert "hunter2" not in str(err.value)


def test_a_bad_host_in_a_file_is_named(tmp_path, monkeypatch):
    monkeypatch.setattr(settings, "online_cpus", lambda: [0, 1])
    f = tmp_path / "v.conf"
    f.write_text("[DEFAULT]\nhost = bad host/name\n"
                 "transport_url = rabbit://h/\n")
    c = cfg.ConfigOpts()
    vconf.register_opts(c)
    c(["--config-file", str(f)], default_config_files=[])
    with pytest.raises(ConfigError) as err:
        settings.build(c)
    assert "[DEFAULT] host: bad host/name is not a valid host" in \
        str(err.value)


class FakeNeutron:
    def __init__(self) -> None:
        self.reports: list[dict] = []
        self.answers = ["new"]
        self.updates: list[tuple[list[str], list[str]]] = []
        self.fail_ports: set[str] = set()
        self.down = False

    def report_state(self, state):
        if self.down:
            raise OSError("broker down")
        self.reports.append(state)
        return self.answers.pop(0) if self.answers else "alive"

    def update_device_list(self, up, down):
        if self.down:
            raise OSError("broker down")
        self.updates.append((list(up), list(down)))
        return ([p for p in up if p not in self.fail_ports],
                [p for p in down if p not in self.fail_ports])


@pytest.fixture
def bus(conf, tmp_path):
    conf.set_override("transport_url", "fake://")
    conf.set_override("host", "compute-1")
    conf.set_override("status_interval", 0.1, "neutron")
    s = settings.build(conf)
    policy = SocketPolicy(str(tmp_path), "vf%u.sock", os.getuid(),
                          os.getgid(), 0o600)
    s = settings.dataclasses.replace(s, sockets=policy)
    engine = FakeEngine()
    m = mgr.RelayManager(engine, policy)
    m.start()
    p = presence.NeutronPresence(conf, s, m, engine, control=None)
    p._neutron = FakeNeutron()
    m.add_listener(p._relay_event)
    yield p, m, engine, policy
    m.stop()


def test_state_report_as_neutron_reads_it(bus):
    p, m, engine, policy = bus
    m.add(RelaySpec(3, policy.path_for(3), vf="net_null0",
                    vf_label="0000:99:00.1"))
    assert p._report() == p.n.report_interval
    p._report()
    first, second = p._neutron.reports
    assert first["start_flag"] is True and "start_flag" not in second
    assert (first["binary"], first["host"], first["agent_type"],
            first["topic"]) == ("vio4wd-agent", "compute-1", c.AGENT_TYPE,
                                c.AGENT_TOPIC)
    conf = first["configurations"]
    assert conf["socket_dir"] == policy.directory
    assert conf["vhostuser_mode"] == "client"
    assert conf["physical_networks"] == ["*"]
    assert conf["relays"] == 1 and conf["vfs_in_use"] == ["0000:99:00.1"]
    assert conf["worker_cpus"] == [1] and conf["version"]


def test_revived_resyncs_the_port_status(bus):
    p, m, engine, policy = bus
    m.add(RelaySpec(3, policy.path_for(3), vf="net_null0", port_id=P1))
    p._report()                          # "new" on the first: no resync
    p._status()
    assert p._neutron.updates == [([], [P1])]
    p._status()
    assert len(p._neutron.updates) == 1  # nothing new to say
    p._neutron.answers = ["revived"]
    p._report()
    p._status()
    assert p._neutron.updates[-1] == ([], [P1])
    # "new" later (Neutron lost its record): resync as well
    p._neutron.answers = ["new"]
    p._report()
    p._status()
    assert len(p._neutron.updates) == 3


def test_a_dead_broker_delays_and_nothing_else(bus):
    p, m, engine, policy = bus
    p._neutron.down = True
    m.add(RelaySpec(3, policy.path_for(3), vf="net_null0", port_id=P1))
    assert p._report() <= p.n.report_interval
    wait = p._status()
    assert 0 < wait <= presence.MAX_BACKOFF
    # the relays go on regardless
    m.add(RelaySpec(4, policy.path_for(4), vf="net_null1"))
    assert sorted(engine.specs) == [3, 4]
    p._neutron.down = False
    p._status()
    assert p._neutron.updates == [([], [P1])]
    # a port Neutron failed is tried again
    p._neutron.fail_ports = {P1}
    p.port_status.resync()
    p._status()
    assert p.port_status.told() == {P1: None}


def test_relay_events_are_queued_for_notification(bus):
    p, m, engine, policy = bus
    m.add(RelaySpec(3, policy.path_for(3), vf="net_null0", port_id=P1,
                    vf_label="0000:99:00.1"))
    with pytest.raises(Exception):
        m.add(RelaySpec(3, "/elsewhere/x", vf="net_null0"))
    m.remove(3)
    events = []
    while not p._events.empty():
        events.append(p._events.get_nowait())
    assert [(e[0], e[1]) for e in events] == [
        (c.EVENT_RELAY_CREATE, "info"), (c.EVENT_RELAY_ERROR, "error"),
        (c.EVENT_RELAY_DELETE, "info")]
    created = events[0][2]
    assert (created["relay_id"], created["port_id"], created["vf"],
            created["socket"], created["host"]) == (
                3, P1, "0000:99:00.1", policy.path_for(3), "compute-1")
    assert "not directly in a socket directory" in events[1][2]["reason"]


def test_a_full_notification_queue_drops_and_counts(bus, monkeypatch):
    p, m, engine, policy = bus
    spec = RelaySpec(3, policy.path_for(3))
    for _ in range(presence.NOTIFY_QUEUE + 5):
        p._queue_event(c.EVENT_VM_CONNECT, "info", spec)
    assert p._events.qsize() == presence.NOTIFY_QUEUE and p._dropped == 5


def test_loop_survives_a_failing_step():
    import threading
    calls = []
    done = threading.Event()

    def step():
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("boom")
        done.set()
        return None
    loop = presence._Loop("t", step)
    loop.start()
    loop.kick()
    assert done.wait(30)
    loop.signal_stop()
    import time
    loop.join(time.monotonic() + 10)
    assert len(calls) == 2
