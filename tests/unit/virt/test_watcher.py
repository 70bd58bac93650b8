# SPDX-License-Identifier: Apache-2.0
"""LibvirtWatcher's bookkeeping, with the real manager on a fake engine
(no libvirtd: the functional tests have the real one)."""
from __future__ import annotations

import logging
import os

import pytest

from vio4wd_agent.conf.settings import VhostFlags
from vio4wd_agent.manager import AddRelay, RelayManager
from vio4wd_agent.relay.model import RelaySpec
from vio4wd_agent.vhostuser.sockets import SocketPolicy
from vio4wd_agent.virt import host

from tests.unit.test_manager import FakeEngine
from tests.unit.virt.test_domain import meta, vhu, xml

FLAGS = VhostFlags(client=False, jumbo=False, mrgbuf=True, tso=False,
                   link_follows_vf=True, max_queues=32, vf_queues=0)
UUID = "6f1e0c9c-0000-4000-8000-000000000001"


def other(xml_text: str, n: int = 2) -> str:
    return xml_text.replace("<name>vm1</name>", "<name>vm%d</name>" % n) \
        .replace(UUID, UUID[:-1] + str(n))


@pytest.fixture
def env(tmp_path):
    def make(dynamic: bool):
        policy = SocketPolicy(str(tmp_path), "vf%u.sock", os.getuid(),
                              os.getgid(), 0o660)
        engine = FakeEngine()
        mgr = RelayManager(engine, policy)
        mgr.start()
        made.append(mgr)
        w = host.LibvirtWatcher("test:///default", mgr, FLAGS, policy,
                                {"0000:99:00.1": "net_null9"}, dynamic)
        return w, mgr, engine, str(tmp_path)
    made: list[RelayManager] = []
    yield make
    for m in made:
        m.stop()


def test_static_socket_served_with_numa_hint_and_dropped(env):
    w, mgr, engine, d = env(False)
    w.apply_xml(UUID, xml(vhu(d + "/vf4.sock"), extra=(
        "<numatune><memory nodeset='0'/></numatune>")))
    spec = engine.specs[4]
    assert not spec.client and spec.numa_hint == 0 and spec.vf == ""
    assert os.path.exists(d + "/vf4.sock")
    assert mgr.claims("libvirt/vm1") == {4: w.claims[UUID][d + "/vf4.sock"]}
    w.drop(UUID, "undefined")
    assert engine.specs == {} and not os.path.exists(d + "/vf4.sock")
    assert w.claims == {} and w.sources == {}


def test_qemu_server_makes_a_client_relay_whatever_the_default(env):
    w, mgr, engine, d = env(False)
    w.apply_xml(UUID, xml(vhu(d + "/vf1.sock", mode="server")))
    assert engine.specs[1].client


def test_dynamic_sockets_get_ids_and_vfs_from_metadata(env):
    w, mgr, engine, d = env(True)
    w.apply_xml(UUID, xml(
        vhu(d + "/vhu-a", mac="52:54:00:00:00:01"),
        vhu(d + "/vhu-b", mac="52:54:00:00:00:02"),
        metadata=meta("<v:interface mac='52:54:00:00:00:01' "
                      "vf='0000:99:00.1'/>")))
    by_path = {s.vhost_path: s for s in engine.specs.values()}
    assert sorted(engine.specs) == [0, 1]
    assert by_path[d + "/vhu-a"].vf == "net_null9"
    assert by_path[d + "/vhu-a"].vf_label == "0000:99:00.1"
    assert by_path[d + "/vhu-b"].vf == ""


def test_resync_is_idempotent_and_follows_changes(env):
    w, mgr, engine, d = env(True)
    one = xml(vhu(d + "/vhu-a"))
    w.apply_xml(UUID, one)
    w.apply_xml(UUID, one)
    assert len(engine.specs) == 1
    (rid,) = engine.specs
    # the interface changes mode: the relay is replaced
    w.apply_xml(UUID, xml(vhu(d + "/vhu-a", mode="server")))
    assert [s.client for s in engine.specs.values()] == [True]
    # the interface goes: so does the relay
    w.apply_xml(UUID, xml())
    assert engine.specs == {} and UUID not in w.claims


def test_two_domains_on_one_socket_second_is_refused(env, caplog):
    w, mgr, engine, d = env(False)
    first = xml(vhu(d + "/vf2.sock"))
    w.apply_xml(UUID, first)
    w.names[UUID[:-1] + "2"] = "vm2"
    with caplog.at_level(logging.ERROR):
        w.apply_xml(UUID[:-1] + "2", other(first))
    assert "vm2 wants socket %s/vf2.sock, which domain vm1" % d in \
        caplog.text
    w.drop(UUID[:-1] + "2", "undefined")
    assert 2 in engine.specs        # vm1's relay lives on


def test_a_port_control_relay_is_shared_not_duplicated(env):
    w, mgr, engine, d = env(False)
    mgr.submit(AddRelay(RelaySpec(5, d + "/vf5.sock", vf="net_null5"),
                        "zmq")).result()
    w.apply_xml(UUID, xml(vhu(d + "/vf5.sock")))
    assert engine.specs[5].vf == "net_null5"
    w.drop(UUID, "undefined")
    assert engine.specs[5].vf == "net_null5"   # zmq still claims it


def test_conflict_with_another_source_is_logged(env, caplog):
    w, mgr, engine, d = env(False)
    mgr.submit(AddRelay(RelaySpec(5, d + "/vf5.sock", vf="net_null5"),
                        "zmq")).result()
    with caplog.at_level(logging.ERROR):
        w.apply_xml(UUID, xml(vhu(d + "/vf5.sock", mode="server")))
    assert "libvirt/vm1: socket %s/vf5.sock not served" % d in caplog.text
    assert "zmq" in caplog.text and not engine.specs[5].client
    assert UUID not in w.claims


@pytest.mark.parametrize("text", ["<domain", "<network/>", "\x00"])
def test_malformed_xml_is_logged_and_nothing_is_touched(env, caplog, text):
    w, mgr, engine, d = env(False)
    w.apply_xml(UUID, xml(vhu(d + "/vf1.sock")))
    with caplog.at_level(logging.ERROR):
        w.apply_xml(UUID, text)
    assert "interfaces are skipped" in caplog.text
    assert 1 in engine.specs and UUID in w.claims


def test_problems_are_logged_once_per_change(env, caplog):
    w, mgr, engine, d = env(False)
    bad = xml(vhu(d + "/vf1.sock", mode="bogus"))
    with caplog.at_level(logging.WARNING):
        w.apply_xml(UUID, bad)
        w.apply_xml(UUID, bad)
    assert caplog.text.count("unknown source mode 'bogus'") == 1
    assert engine.specs == {}


def test_hook_prepare_serves_sockets_before_any_event(env):
    w, mgr, engine, d = env(False)
    answer = w.hook("prepare", "vm1", xml(vhu(d + "/vf3.sock")))
    assert answer == {"ok": True, "served": [d + "/vf3.sock"], "errors": [],
                      "warnings": []}
    assert os.path.exists(d + "/vf3.sock") and 3 in engine.specs
    # the STARTED event that follows changes nothing
    w.apply_xml(UUID, xml(vhu(d + "/vf3.sock")))
    assert list(engine.specs) == [3] and mgr.claims("libvirt/vm1")


def test_hook_prepare_reports_refusals_and_problems(env):
    w, mgr, engine, d = env(False)
    w.apply_xml(UUID, xml(vhu(d + "/vf2.sock")))
    answer = w.hook("prepare", "vm2", other(xml(
        vhu(d + "/vf2.sock"), vhu(d + "/junk.sock", mac="52:54:00:00:00:09"))))
    assert not answer["ok"] and answer["served"] == []
    assert "vm2 wants socket %s/vf2.sock, which domain vm1 already uses" % d \
        in answer["errors"][0]
    assert "junk.sock" in answer["warnings"][0]
    assert list(engine.specs) == [2]        # vm1's relay untouched


def test_hook_ignores_what_is_not_ours(env):
    w, mgr, engine, d = env(False)
    foreign = xml(vhu("/elsewhere/vf1.sock"))
    assert w.hook("prepare", "vm1", foreign)["ok"]
    answer = w.hook("prepare", "vm1", "<domain")
    assert answer["ok"] and "not understood" in answer["warnings"][0]
    assert engine.specs == {} and w.claims == {}


def test_hook_release_counts_as_a_stop(env):
    w, mgr, engine, d = env(False)
    w.hook("prepare", "vm1", xml(vhu(d + "/vf3.sock")))
    assert w.hook("release", "vm1", xml(vhu(d + "/vf3.sock")))["ok"]
    ev = w.events.get_nowait()
    assert (ev.uuid, ev.event) == (UUID, host.libvirt.VIR_DOMAIN_EVENT_STOPPED)
    # a domain with no claims queues nothing
    w.hook("release", "vm2", other(xml(vhu(d + "/vf4.sock"))))
    assert w.events.empty()
