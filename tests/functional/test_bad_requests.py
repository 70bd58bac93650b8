# SPDX-License-Identifier: Apache-2.0
"""Bad relay requests: a clear, typed error naming what was wrong, and the
relays already running are not disturbed."""
from __future__ import annotations

import os

import pytest

from vio4wd_agent import exception
from vio4wd_agent.relay.model import RelaySpec
from tests.functional import util
from tests.functional.conftest import relay_spec


@pytest.fixture
def bystander(engine, sockdir):
    """A relay (net_null VF, no VM) that must come through every bad call
    unchanged, its worker still running."""
    engine.add_relay(relay_spec(10, sockdir, "net_null10"))
    yield 10


def _still_running(engine, relay_id: int) -> None:
    state = engine.relay(relay_id)
    assert state.vf_ready and state.vf_name == "net_null10"
    util.rounds_pass(engine, 64)


BAD = [
    ("unknown devargs", dict(vf="net_bogus0"), exception.EngineError,
     "net_bogus0"),
    ("devargs of a real driver with a bad option",
     dict(vf="net_null11,size=notanumber"), exception.EngineError,
     "net_null11"),
    ("af_packet on a missing interface",
     dict(vf="net_af_packet11,iface=nosuchif0"), exception.EngineError,
     "net_af_packet11"),
    ("missing socket directory",
     dict(vhost_path="/nonexistent/dir/r11.sock"), exception.NotFound,
     "socket directory '/nonexistent/dir' does not exist"),
    ("relative socket path", dict(vhost_path="r11.sock"),
     exception.InvalidArgument, "not absolute"),
    ("socket path too long", dict(vhost_path="/tmp/" + "x" * 120),
     exception.InvalidArgument, "limit is 107"),
    ("CPU outside the worker set", dict(cpus=(99, None)),
     exception.InvalidArgument, "CPU 99 for VF->VM is not one of the worker"),
    ("the main lcore as a worker", dict(cpus=(None, 0)),
     exception.InvalidArgument, "CPU 0 for VM->VF is not one of the worker"),
    ("bad NUMA hint", dict(numa_hint=5000), exception.InvalidArgument,
     "bad NUMA node 5000"),
    ("more than 32 queue pairs", dict(max_queues=33),
     exception.InvalidArgument, "33 queue pairs requested, a relay serves "
     "at most 32"),
    # Per-queue counters exist for 32 queues: more must never reach a
    # worker, whatever the VF has (net_null has 1024).
    ("more than 32 VF queue pairs", dict(vf_queues=33),
     exception.InvalidArgument, "33 VF queue pairs requested, a relay "
     "uses at most 32"),
    ("a bond name with devargs options", dict(
        vf="net_bonding11,mode=4", bond_members=("net_null111",
                                                 "net_null112")),
     exception.InvalidArgument, "(no devargs options), not "
     "'net_bonding11,mode=4'"),
    ("a bond of 9", dict(vf="net_bonding11", bond_members=tuple(
        "net_null%d" % (110 + i) for i in range(9))),
     exception.InvalidArgument, "2 to 8 members, 9 given"),
]


@pytest.mark.parametrize("what,change,error,text", BAD,
                         ids=[b[0] for b in BAD])
def test_bad_relay_request(engine, sockdir, bystander, what, change, error,
                           text):
    spec = relay_spec(11, sockdir, "net_null11")
    spec = RelaySpec(**{**spec.__dict__, **change})
    with pytest.raises(error) as info:
        engine.add_relay(spec)
    assert text in str(info.value)
    assert "relay 11" in str(info.value) or "net_bogus0" in str(info.value)
    assert engine.relay_ids() == [bystander]
    assert engine.resources().ports == 1
    assert not os.path.exists(os.path.join(sockdir, "r11.sock"))
    _still_running(engine, bystander)


def test_duplicates_refused(engine, sockdir, bystander):
    taken = engine.relay(bystander)
    with pytest.raises(exception.RelayExists, match="relay 10 already exists"):
        engine.add_relay(relay_spec(10, sockdir, "net_null12"))
    with pytest.raises(exception.ResourceBusy,
                       match="already used by relay 10"):
        engine.add_relay(RelaySpec(relay_id=12, vhost_path=taken.vhost_path,
                                   vf="net_null12"))
    with pytest.raises(exception.ResourceBusy,
                       match="VF 'net_null10' is already used by relay 10"):
        engine.add_relay(relay_spec(12, sockdir, "net_null10"))
    assert engine.relay_ids() == [bystander]
    assert engine.resources().ports == 1
    _still_running(engine, bystander)


def test_unknown_relay(engine, bystander):
    with pytest.raises(exception.NotFound, match="relay 77 does not exist"):
        engine.remove_relay(77)
    with pytest.raises(exception.NotFound, match="relay 77 does not exist"):
        engine.relay(77)
    _still_running(engine, bystander)


def test_failed_add_leaves_nothing_behind(engine, sockdir, bystander):
    """After a refused request the same id, VF and socket work at once."""
    with pytest.raises(exception.InvalidArgument):
        engine.add_relay(relay_spec(13, sockdir, "net_null13",
                                    cpus=(99, 99)))
    state = engine.add_relay(relay_spec(13, sockdir, "net_null13"))
    assert state.vf_ready
    assert engine.resources().ports == 2


def test_vf_queue_limits(engine, sockdir, bystander, veth):
    """More VF queues than the VF has, or than a relay counts (also when
    the VF comes to a living relay): refused, naming the numbers."""
    dpdk_if, _ = veth()
    with pytest.raises(exception.InvalidArgument,
                       match="has at most 1 queue pairs, 2 requested"):
        engine.add_relay(relay_spec(
            14, sockdir, "net_af_packet14,iface=%s" % dpdk_if, vf_queues=2))
    engine.add_relay(relay_spec(14, sockdir, ""))
    with pytest.raises(exception.InvalidArgument,
                       match="40 VF queue pairs requested, a relay uses at "
                       "most 32"):
        engine.set_vf(relay_spec(14, sockdir, "net_null14", vf_queues=40))
    st = engine.set_vf(relay_spec(14, sockdir, "net_null14", vf_queues=32))
    assert st.vf_queues == 32 and st.vf_ready
    _still_running(engine, bystander)
