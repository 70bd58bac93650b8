# SPDX-License-Identifier: Apache-2.0
from __future__ import annotations

import errno
import os
import socket
import stat

import pytest

from vio4wd_agent import exception
from vio4wd_agent.conf.parsing import CpuPin
from vio4wd_agent.manager import AddRelay, Query, RelayManager, RemoveRelay
from vio4wd_agent.relay.model import DataPlaneEvent, EventKind, RelaySpec
from vio4wd_agent.vhostuser.sockets import SocketPolicy
from tests.functional.util import wait_for


class FakeEngine:
    """Stands in for the data plane: records specs, creates server sockets
    the way DPDK does (bind + listen)."""

    def __init__(self) -> None:
        self.specs: dict[int, RelaySpec] = {}
        self.listeners: dict[int, socket.socket] = {}
        self.calls: list[tuple] = []
        # What the data plane did on its own (handed out once).
        self.pending_events: list = []
        # Per relay: what the data plane has changed on its own.
        self.changed: dict[int, dict] = {}

    def add_relay(self, spec):
        if spec.relay_id in self.specs:
            raise exception.RelayExists(errno.EEXIST, "relay %d already "
                                        "exists" % spec.relay_id)
        if not spec.client:
            s = socket.socket(socket.AF_UNIX)
            s.bind(spec.vhost_path)
            s.listen(1)
            os.chmod(spec.vhost_path, spec.socket_mode)
            self.listeners[spec.relay_id] = s
        self.specs[spec.relay_id] = spec
        return _state(spec)

    def remove_relay(self, relay_id):
        if relay_id not in self.specs:
            raise exception.NotFound(errno.ENOENT, "relay %d does not exist"
                                     % relay_id)
        spec = self.specs.pop(relay_id)
        s = self.listeners.pop(relay_id, None)
        if s:
            s.close()
            os.unlink(spec.vhost_path)

    def relays(self):
        return [_state(s) for s in self.specs.values()]

    def relay_ids(self):
        return sorted(self.specs)

    def relay(self, relay_id):
        import dataclasses
        return dataclasses.replace(_state(self.specs[relay_id]),
                                   **self.changed.get(relay_id, {}))

    def events(self):
        out, self.pending_events = self.pending_events, []
        return out

    def set_vf(self, spec):
        import dataclasses
        self.calls.append(("set_vf", spec.relay_id, spec.vf))
        self.specs[spec.relay_id] = dataclasses.replace(
            self.specs[spec.relay_id], vf=spec.vf)
        return _state(self.specs[spec.relay_id])

    def clear_vf(self, relay_id):
        import dataclasses
        self.calls.append(("clear_vf", relay_id))
        self.specs[relay_id] = dataclasses.replace(self.specs[relay_id],
                                                   vf="")
        return _state(self.specs[relay_id])

    def set_numa_node(self, relay_id, node):
        self.calls.append(("numa", relay_id, node))

    def move(self, relay_id, direction, cpu):
        if cpu not in (1, 2):
            raise exception.InvalidArgument(
                errno.EINVAL, "CPU %d is not a worker" % cpu)
        self.calls.append(("move", relay_id, int(direction), cpu))
        return _state(self.specs[relay_id])


def _state(spec):
    from vio4wd_agent.relay.model import DirectionStats, RelayState
    d = DirectionStats(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, spec.cpus[0])
    return RelayState(spec.relay_id, spec.vhost_path, spec.vf, None, False,
                      False, spec.client, 0, None, 1500, 0, 0, d, d)


@pytest.fixture
def manager(tmp_path):
    policy = SocketPolicy(str(tmp_path), "vf%u.sock", os.getuid(),
                          os.getgid(), 0o600)
    engine = FakeEngine()
    m = RelayManager(engine, policy, {3: CpuPin(3, 1, 2)})
    m.start()
    yield m, engine, policy
    m.stop()


def test_add_applies_pins_and_socket_mode(manager):
    m, engine, policy = manager
    m.add(RelaySpec(3, policy.path_for(3), vf="net_null0"))
    assert engine.specs[3].cpus == (1, 2)
    assert (engine.specs[3].socket_uid, engine.specs[3].socket_gid) == (
        os.getuid(), os.getgid())
    mode = os.stat(policy.path_for(3)).st_mode
    assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o600
    # explicit CPUs win over the configured pins
    m.remove(3)
    m.add(RelaySpec(3, policy.path_for(3), cpus=(2, 2)))
    assert engine.specs[3].cpus == (2, 2)


def test_stale_socket_cleared_before_add(manager):
    m, engine, policy = manager
    path = policy.path_for(4)
    s = socket.socket(socket.AF_UNIX)
    s.bind(path)
    s.close()
    m.add(RelaySpec(4, path))
    assert 4 in engine.specs


def test_client_mode_leaves_the_socket_alone(manager):
    m, engine, policy = manager
    m.add(RelaySpec(5, policy.path_for(5), client=True))
    assert not os.path.exists(policy.path_for(5))


def test_errors_reach_the_submitter_and_the_manager_lives_on(manager):
    m, engine, policy = manager
    m.add(RelaySpec(6, policy.path_for(6)))
    with pytest.raises(exception.RelayExists):
        m.add(RelaySpec(6, policy.path_for(6)))
    with pytest.raises(exception.NotFound):
        m.remove(99)
    m.add(RelaySpec(7, policy.path_for(7)))
    assert sorted(engine.specs) == [6, 7]
    assert [r.relay_id for r in m.relays()] == [6, 7]


def test_requests_are_applied_in_order(manager):
    m, engine, policy = manager
    futures = [m.submit_add(RelaySpec(i, policy.path_for(i)))
               for i in range(20)]
    for f in futures:
        f.result(5)
    assert sorted(engine.specs) == list(range(20))


def test_socket_claim_then_vf_claim(manager):
    m, engine, policy = manager
    path = policy.path_for(8)
    m.submit(AddRelay(RelaySpec(8, path, numa_hint=0), "libvirt")).result(5)
    m.submit(AddRelay(RelaySpec(8, path, vf="net_null8"), "ovsdb")).result(5)
    assert ("set_vf", 8, "net_null8") in engine.calls
    # the same VF from a third source is consistent; another VF is not
    m.submit(AddRelay(RelaySpec(8, path, vf="net_null8"), "zmq")).result(5)
    with pytest.raises(exception.RelayExists) as info:
        m.submit(AddRelay(RelaySpec(8, path, vf="net_null9"),
                          "ipc")).result(5)
    assert "VF net_null8 from" in str(info.value) and "ipc asked" in str(
        info.value)
    with pytest.raises(exception.RelayExists, match="on socket"):
        m.submit(AddRelay(RelaySpec(8, policy.path_for(99)),
                          "other")).result(5)
    with pytest.raises(exception.InvalidArgument,
                       match="not directly in a socket directory"):
        m.submit(AddRelay(RelaySpec(8, "/elsewhere.sock"), "other")).result(5)
    # the VF goes when the last claim that wanted one goes
    m.submit(RemoveRelay(8, source="ovsdb")).result(5)
    assert ("clear_vf", 8) not in engine.calls
    m.submit(RemoveRelay(8, source="zmq")).result(5)
    assert ("clear_vf", 8) in engine.calls and 8 in engine.specs
    m.submit(RemoveRelay(8, source="libvirt")).result(5)
    assert 8 not in engine.specs


def test_port_control_removes_a_static_relay(manager):
    m, engine, policy = manager
    m.add(RelaySpec(9, policy.path_for(9), vf="net_null9"), "static")
    m.submit(RemoveRelay(9, vf="net_null9", source="zmq",
                         take_vf=True)).result(5)
    assert 9 not in engine.specs


def test_allocated_ids_follow_the_socket(manager):
    m, engine, policy = manager
    sock_a = os.path.join(policy.directory, "x-a.sock")
    sock_b = os.path.join(policy.directory, "x-b.sock")
    a = m.submit(AddRelay(RelaySpec(0, sock_a, client=True),
                          "libvirt", allocate_id=True)).result(5)
    b = m.submit(AddRelay(RelaySpec(0, sock_b, client=True),
                          "libvirt", allocate_id=True)).result(5)
    assert (a.relay_id, b.relay_id) == (0, 1)
    c = m.submit(AddRelay(RelaySpec(0, sock_b, vf="net_null1",
                                    client=True), "zmq",
                          allocate_id=True)).result(5)
    assert c.relay_id == 1 and ("set_vf", 1, "net_null1") in engine.calls


def test_changed_pins_move_relays_but_run_time_pins_win(manager):
    from vio4wd_agent.manager import MoveDirection, SetPins
    from vio4wd_agent.relay.model import Direction
    m, engine, policy = manager
    for i in (3, 4, 5):
        m.add(RelaySpec(i, policy.path_for(i)))
    m.submit(MoveDirection(5, Direction.VF_TO_VM, 1)).result()
    engine.calls.clear()
    moved = m.submit(SetPins({3: CpuPin(3, 1, 2),        # unchanged
                              4: CpuPin(4, 2, 1),        # new
                              5: CpuPin(5, 2, 2),        # run-time pin
                              6: CpuPin(6, 1, 1)})).result()   # no relay
    assert moved == [4]
    assert engine.calls == [("move", 4, 0, 2), ("move", 4, 1, 1)]
    assert m.specs()[4].cpus == (2, 1)
    # a pin the data plane refuses is logged; the others still apply
    engine.calls.clear()
    assert m.submit(SetPins({3: CpuPin(3, 9, 9),
                             4: CpuPin(4, 1, 1)})).result() == [4]


def test_a_source_only_ever_withdraws_its_own_claim(manager):
    """libvirt claims the socket, OVSDB brings the VF, port control
    removes the VF (allowed, explicitly), then OVSDB's key goes: the VM's
    socket, libvirt's claim, stays."""
    m, engine, policy = manager
    path = policy.path_for(10)
    m.submit(AddRelay(RelaySpec(10, path), "libvirt/vm1")).result(5)
    m.submit(AddRelay(RelaySpec(10, path, vf="net_null10"),
                      "ovsdb")).result(5)
    # Without take_vf a source that has no claim removes nothing.
    with pytest.raises(exception.NotFound, match="not zmq's .claimed by "
                       "libvirt/vm1, ovsdb"):
        m.submit(RemoveRelay(10, source="zmq")).result(5)
    assert m.submit(RemoveRelay(10, source="zmq",
                                conditional=True)).result(5) is None
    # Port control's REMOVE takes the VF's claim, and only that.
    m.submit(RemoveRelay(10, vf="net_null10", source="zmq",
                         take_vf=True)).result(5)
    assert ("clear_vf", 10) in engine.calls and 10 in engine.specs
    # OVSDB's own claim is gone: its remove changes nothing.
    assert m.submit(RemoveRelay(10, source="ovsdb",
                                conditional=True)).result(5) is None
    assert 10 in engine.specs and os.path.exists(path)
    # A second take_vf finds no VF claim to take.
    with pytest.raises(exception.NotFound, match="carries VF none"):
        m.submit(RemoveRelay(10, vf="net_null10", source="zmq",
                             take_vf=True)).result(5)
    assert list(m.claims("libvirt/vm1")) == [10]
    m.submit(RemoveRelay(10, source="libvirt/vm1")).result(5)
    assert 10 not in engine.specs


PORT = "6f1c2a3b-0000-4000-8000-000000000001"


@pytest.mark.parametrize("first", ["os-vif", "libvirt"])
def test_a_port_plug_and_the_libvirt_watcher_converge(manager, first):
    """Nova's plug (socket + VF + port) and the watcher's claim on the
    same socket, in either order: one relay, with the port; each source
    withdraws only its own claim."""
    m, engine, policy = manager
    sock = os.path.join(policy.directory, "vhu6f1c2a3b-00")
    claims = {
        "os-vif": AddRelay(RelaySpec(0, sock, vf="net_null1",
                                     port_id=PORT, mac="fa:16:3e:00:00:01"),
                           "os-vif", conditional=True, allocate_id=True),
        "libvirt": AddRelay(RelaySpec(0, sock), "libvirt/vm1",
                            conditional=True, allocate_id=True)}
    order = [first] + [k for k in claims if k != first]
    states = [m.submit(claims[k]).result(5) for k in order]
    assert states[0].relay_id == states[1].relay_id == 0
    assert list(engine.specs) == [0]
    assert m.specs()[0].port_id == PORT and m.specs()[0].vf == "net_null1"
    # a replayed plug is harmless
    m.submit(claims["os-vif"]).result(5)
    assert list(engine.specs) == [0]
    # the port's relay, found by port
    assert m.submit(Query(None, port_id=PORT)).result(5).vhost_path == sock
    # unplug: the VF and the port go, the watcher's socket stays
    m.submit(RemoveRelay(vhost_path=sock, port_id=PORT, source="os-vif",
                         conditional=True)).result(5)
    assert 0 in engine.specs and ("clear_vf", 0) in engine.calls
    assert m.specs()[0].port_id == ""
    m.submit(RemoveRelay(vhost_path=sock, source="libvirt/vm1",
                         conditional=True)).result(5)
    assert engine.specs == {}


def test_one_port_one_socket(manager):
    m, engine, policy = manager
    a = os.path.join(policy.directory, "vhu-a")
    b = os.path.join(policy.directory, "vhu-b")
    m.submit(AddRelay(RelaySpec(0, a, vf="net_null1", port_id=PORT),
                      "os-vif", conditional=True, allocate_id=True)).result(5)
    with pytest.raises(exception.RelayExists, match="port %s is served by "
                       "relay 0 on socket" % PORT):
        m.submit(AddRelay(RelaySpec(0, b, vf="net_null2", port_id=PORT),
                          "os-vif", conditional=True,
                          allocate_id=True)).result(5)
    other = "6f1c2a3b-0000-4000-8000-000000000002"
    with pytest.raises(exception.RelayExists, match="serves port"):
        m.submit(AddRelay(RelaySpec(0, a, vf="net_null1", port_id=other),
                          "nova2", conditional=True,
                          allocate_id=True)).result(5)
    # removal by port alone; a wrong port removes nothing
    with pytest.raises(exception.NotFound, match="serves port"):
        m.submit(RemoveRelay(vhost_path=a, port_id=other,
                             source="os-vif")).result(5)
    m.submit(RemoveRelay(port_id=PORT, source="os-vif")).result(5)
    assert engine.specs == {}


def test_relay_ids_beyond_int32_are_refused(manager):
    m, engine, policy = manager
    with pytest.raises(exception.InvalidArgument, match="out of range"):
        m.add(RelaySpec(2**31, policy.path_for(2**31)))
    assert engine.specs == {}


def test_view_follows_our_changes(manager):
    m, engine, policy = manager
    m.add(RelaySpec(5, policy.path_for(5), vf="net_null5"))
    assert m.view(5).vf_name == "net_null5"
    m.remove(5)
    assert m.view(5) is None


def test_view_takes_the_data_planes_own_changes(manager, caplog):
    m, engine, policy = manager
    m.add(RelaySpec(6, policy.path_for(6), vf="net_bonding6",
                    bond_members=("net_null61", "net_null62")))
    assert m.view(6).members_out == 0
    # The watch thread took member 0 out of the bond: the manager hears
    # of it with no request of its own, and says who did it.
    engine.changed[6] = {"members_out": 1}
    engine.pending_events.append(DataPlaneEvent(6, EventKind.MEMBER_OUT, 0))
    with caplog.at_level("INFO"):
        wait_for(lambda: m.view(6).members_out == 1, what="view updated")
        wait_for(lambda: "relay 6: data plane: bond member out (link "
                 "down): member 0" in caplog.text, what="the log line")
    assert m.view(6).placement() == engine.relay(6).placement()


def test_lost_events_read_every_relay(manager):
    m, engine, policy = manager
    for i in (7, 8):
        m.add(RelaySpec(i, policy.path_for(i)))
    engine.changed[7] = {"socket_down": True}
    engine.changed[8] = {"numa_node": 1}
    engine.pending_events.append(DataPlaneEvent(None, EventKind.LOST))
    wait_for(lambda: m.view(7).socket_down and m.view(8).numa_node == 1,
             what="every view read again")


def test_events_of_unknown_relays_are_ignored(manager, caplog):
    m, engine, policy = manager
    engine.pending_events.append(DataPlaneEvent(99, EventKind.SOCKET_DOWN))
    with caplog.at_level("ERROR"):
        # The writer reads pending events before it takes a request.
        m.add(RelaySpec(9, policy.path_for(9)))
    assert not engine.pending_events
    assert "events not applied" not in caplog.text
    assert m.view(99) is None and m.view(9) is not None
