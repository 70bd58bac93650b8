# SPDX-License-Identifier: Apache-2.0
"""RelayManager: the single writer of the relay table.

Sources (static config, port control over ZeroMQ or an IPC directory, the
OVSDB and libvirt watchers) submit neutral requests; one thread applies
them to the engine in order, so no two changes ever race and there is no
lock order to get wrong.

Each relay carries the claims of the sources that want it: a source may
want just the socket (libvirt, which knows the VM but maybe not its VF) or
the socket with a VF.  A VF claimed later is attached to the living relay;
a relay lives while any source claims it, and loses its VF when the claim
that brought it goes.  Two sources asking for different things of one
relay is a conflict, refused with a log line that names both.

The manager also keeps the journal: claims made at run time by port
control, and runtime pins, so that a restarted agent restores them.
"""
from __future__ import annotations

import concurrent.futures
import dataclasses
import errno
import json
import logging
import os
import queue
from typing import Any, Callable

from vio4wd_agent import exception, service, trusted
from vio4wd_agent.conf.parsing import CpuPin
from vio4wd_agent.journal import Journal
from vio4wd_agent.relay.engine import RelayEngine
from vio4wd_agent.relay.model import (MAX_RELAY_ID, Direction, EventKind,
                                      RelaySpec, RelayState)
from vio4wd_agent.vhostuser import sockets

LOG = logging.getLogger(__name__)


class Conflict(exception.RelayExists):
    """A request clashes with a relay another request made."""

    def __init__(self, detail: str) -> None:
        super().__init__(errno.EEXIST, detail)


class Missing(exception.NotFound):
    def __init__(self, detail: str) -> None:
        super().__init__(errno.ENOENT, detail)


class Refused(exception.InvalidArgument):
    def __init__(self, detail: str) -> None:
        super().__init__(errno.EINVAL, detail)


@dataclasses.dataclass(frozen=True)
class AddRelay:
    spec: RelaySpec
    source: str = "static"
    # An identical relay already there counts as done.
    conditional: bool = False
    # Journal it: it was asked for at run time, not by configuration.
    persist: bool = False
    # Pick the lowest free relay id instead of spec.relay_id (dynamic
    # sockets: the socket, not the id, names the relay).
    allocate_id: bool = False


@dataclasses.dataclass(frozen=True)
class RemoveRelay:
    """A source withdraws its claim on a relay (never another's)."""

    relay_id: int | None = None       # the relay, by id...
    vhost_path: str | None = None     # ...or by socket
    vf: str | None = None             # when given, the relay's VF must match
    source: str = "static"
    # A relay that is not there, or that ``source`` does not claim, is fine.
    conditional: bool = False
    # Port control's REMOVE of a VF it did not add (virtio-forwarder let
    # its clients remove any relay): without a claim of its own, the
    # source takes the claim that brought the VF, and only that one.
    take_vf: bool = False
    # The relay of this Neutron port (with neither id nor socket given),
    # or, with them, the port the relay must be serving.
    port_id: str | None = None


@dataclasses.dataclass(frozen=True)
class MoveDirection:
    relay_id: int
    direction: Direction
    cpu: int | None                   # None: least-loaded worker
    # Who moves it: "core pin request" (a CoreSchedRequest, from the core
    # pinner or a legacy core scheduler) or "core balancer" (ours).
    source: str = "core pin request"
    persist: bool = True


@dataclasses.dataclass(frozen=True)
class SetPins:
    """The configured pins changed (a reload): relays whose pin is new or
    different move there, unless pinned at run time (which wins)."""

    pins: dict[int, CpuPin]


@dataclasses.dataclass(frozen=True)
class Query:
    """Which relay serves a socket, or a Neutron port (answered in order
    with the changes)."""

    vhost_path: str | None
    port_id: str | None = None


Request = AddRelay | RemoveRelay | MoveDirection | SetPins | Query

# What a listener hears (see RelayManager.add_listener): a relay made, a
# relay gone, a request to make one that failed (with the reason).
RELAY_CREATED = "create"
RELAY_DELETED = "delete"
RELAY_FAILED = "error"
Listener = Callable[[str, RelaySpec, str], None]


@dataclasses.dataclass
class _Claim:
    spec: RelaySpec            # what the source asked for
    persist: bool


@dataclasses.dataclass
class _Relay:
    spec: RelaySpec            # what the data plane has
    claims: dict[str, _Claim]  # by source

    def _port(self) -> RelaySpec | None:
        """The claim that names a Neutron port: the port belongs to the
        claim, and goes with it."""
        return next((c.spec for c in self.claims.values()
                     if c.spec.port_id), None)

    def port_id(self) -> str:
        port = self._port()
        return port.port_id if port else ""

    def view(self) -> RelaySpec:
        """What the data plane has, with the port its claims name."""
        port = self._port()
        return dataclasses.replace(
            self.spec, port_id=port.port_id if port else "",
            mac=port.mac if port else "",
            instance_uuid=port.instance_uuid if port else "")

    def vf_claim(self) -> str | None:
        """The source whose claim brought the relay's VF."""
        for source, claim in self.claims.items():
            if claim.spec.vf:
                return source
        return None


def _touched(request: Request, result: Any) -> list[int]:
    """The relays a request (with its result, None if it failed) may
    have changed, besides one whose state it returned."""
    if isinstance(result, RelayState):
        return []
    if isinstance(request, SetPins):
        return list(result or [])
    if isinstance(request, AddRelay):
        return [request.spec.relay_id]
    if isinstance(request, (RemoveRelay, MoveDirection)):
        if isinstance(result, int):
            return [result]
        return [request.relay_id] if request.relay_id is not None else []
    return []


class RelayManager(service.Service):
    thread_name = "relay-manager"
    # Stopping lets the requests already queued (removals at shutdown) run.
    stop_timeout = 120.0
    # How often the writer thread asks the data plane what it did on its
    # own when no request comes (s).
    EVENT_POLL = 0.1

    def __init__(self, engine: RelayEngine, policy: sockets.SocketPolicy,
                 pins: dict[int, CpuPin] | None = None,
                 journal: Journal | None = None) -> None:
        super().__init__()
        self._engine = engine
        self._policy = policy
        self._pins = dict(pins or {})
        self._journal = journal
        self._runtime_pins: dict[int, tuple[int | None, int | None]] = {}
        self._queue: queue.Queue[
            tuple[Request, concurrent.futures.Future] | None] = queue.Queue()
        self._relays: dict[int, _Relay] = {}
        # What the data plane has, as the manager last saw it: after each
        # of its own changes, and after each change the data plane made
        # by itself and reported (DataPlaneEvent).
        self._views: dict[int, RelayState] = {}
        self._journal_relays: list[tuple[RelaySpec, str]] = []
        self._listeners: list[Listener] = []
        # Server sockets the data plane made and gave to their owner:
        # path -> (device, inode), kept in the state directory so that
        # after a crash they can be told from anyone else's.
        self._made = MadeSockets(os.path.join(
            os.path.dirname(journal.path), "made-sockets")
            if journal is not None else None)

    # ---- lifecycle ------------------------------------------------------
    def wake(self) -> None:
        self._queue.put(None)   # after the requests already queued

    def add_listener(self, listener: Listener) -> None:
        """``listener(event, spec, reason)`` hears of every relay made
        (RELAY_CREATED), removed (RELAY_DELETED) and every add that failed
        (RELAY_FAILED, with the reason), on the manager's thread: it must
        only take note (queue it), never block or call back in."""
        self._listeners.append(listener)

    def _emit(self, event: str, spec: RelaySpec, reason: str = "") -> None:
        for listener in self._listeners:
            try:
                listener(event, spec, reason)
            except Exception:   # a listener never costs a relay
                LOG.exception("relay %d: %s listener failed", spec.relay_id,
                              event)

    # ---- requests -------------------------------------------------------
    def submit(self, request: Request) -> concurrent.futures.Future:
        future: concurrent.futures.Future = concurrent.futures.Future()
        self._queue.put((request, future))
        return future

    def submit_add(self, spec: RelaySpec,
                   source: str = "static") -> concurrent.futures.Future:
        return self.submit(AddRelay(spec, source))

    def add(self, spec: RelaySpec, source: str = "static",
            timeout: float = service.DEADLINE) -> RelayState:
        return service.result(self.submit(AddRelay(spec, source)),
                              "%s: add relay %d" % (source, spec.relay_id),
                              timeout)

    def remove(self, relay_id: int, source: str = "static",
               timeout: float = service.DEADLINE) -> None:
        service.result(self.submit(RemoveRelay(relay_id, source=source)),
                       "%s: remove relay %d" % (source, relay_id), timeout)

    def relays(self) -> list[RelayState]:
        return self._engine.relays()

    def view(self, relay_id: int) -> RelayState | None:
        """The relay as the manager believes the data plane has it (its
        placement, see RelayState.placement; counters are not kept up to
        date here: relays() reads them)."""
        return self._views.get(relay_id)

    def specs(self) -> dict[int, RelaySpec]:
        """What each relay is (a snapshot)."""
        return {i: r.view() for i, r in list(self._relays.items())}

    def pinned(self) -> dict[int, tuple[bool, bool]]:
        """Which directions of each relay are pinned (VF->VM, VM->VF): by
        a run-time pin when the relay has one (it wins), else by the
        configuration or the request that made it."""
        out = {}
        for relay_id, relay in list(self._relays.items()):
            cpus = self._runtime_pins.get(relay_id, relay.spec.cpus)
            out[relay_id] = (cpus[0] is not None, cpus[1] is not None)
        return out

    def claims(self, source: str) -> dict[int, RelaySpec]:
        """The relays ``source`` claims, with what it asked for."""
        return {i: r.claims[source].spec for i, r in
                list(self._relays.items()) if source in r.claims}

    # ---- the writer thread ----------------------------------------------
    def run(self) -> None:
        handlers: dict[type, Callable[[Any], Any]] = {
            AddRelay: self._add, RemoveRelay: self._remove,
            MoveDirection: self._move, SetPins: self._set_pins,
            Query: self._query}
        while True:
            try:
                item = self._queue.get(timeout=self.EVENT_POLL)
                idle = False
            except queue.Empty:
                item, idle = None, True
            try:
                self._apply_events()
            except Exception:   # never the end of the writer thread
                LOG.exception("data-plane events not applied")
            if idle:
                continue
            if item is None:
                return
            request, future = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = handlers[type(request)](request)
            except Exception as exc:  # handed to the submitter
                if isinstance(request, AddRelay):
                    self._emit(RELAY_FAILED, request.spec, str(exc))
                self._refresh_views(_touched(request, None))
                future.set_exception(exc)
                continue
            if isinstance(result, RelayState):    # read just now
                self._views[result.relay_id] = result
            self._refresh_views(_touched(request, result))
            future.set_result(result)

    def _refresh_views(self, relay_ids: list[int] | None = None) -> None:
        """The views of ``relay_ids`` (every relay when None) read again
        from the data plane; that of a relay no longer there dropped."""
        if relay_ids is None:
            self._views.clear()
            relay_ids = list(self._relays)
        for relay_id in relay_ids:
            state = None
            if relay_id in self._relays:
                try:
                    state = self._engine.relay(relay_id)
                except exception.NotFound:
                    pass
            if state is None:
                self._views.pop(relay_id, None)
            else:
                self._views[relay_id] = state

    def _apply_events(self) -> None:
        """The data plane's own changes (its watch thread: bond failover,
        socket withdrawn with the VF's link, a VF restarted, a pool moved
        to the VM's node) become the manager's view, and a log line that
        says who did it."""
        for event in self._engine.events():
            if event.kind is EventKind.LOST or event.relay_id is None:
                LOG.warning("data plane: events were lost; reading every "
                            "relay again")
                self._refresh_views()
                continue
            old = self._views.get(event.relay_id)
            self._refresh_views([event.relay_id])
            new = self._views.get(event.relay_id)
            if new is None:     # not one of ours, or gone meanwhile
                continue
            cpus = "%s/%s" % (new.vf_to_vm.cpu, new.vm_to_vf.cpu)
            was = "%s/%s" % (old.vf_to_vm.cpu, old.vm_to_vf.cpu) if old \
                else "?"
            LOG.info("relay %d: data plane: %s; CPUs %s%s",
                     event.relay_id, event.describe(), cpus,
                     "" if was == cpus else " (were %s)" % was)

    def _by_port(self, port_id: str) -> int | None:
        for relay_id, relay in self._relays.items():
            if relay.port_id() == port_id:
                return relay_id
        return None

    def _by_path(self, path: str) -> int | None:
        for relay_id, relay in self._relays.items():
            if relay.spec.vhost_path == path:
                return relay_id
        return None

    @staticmethod
    def _same_vf(a: RelaySpec, b: RelaySpec) -> bool:
        return (a.vf, tuple(a.bond_members)) == (b.vf, tuple(b.bond_members))

    def _free_id(self) -> int:
        taken = set(self._relays) | set(self._engine.relay_ids())
        relay_id = 0
        while relay_id in taken:
            relay_id += 1
        return relay_id

    def _prepare(self, spec: RelaySpec) -> RelaySpec:
        """Pins and socket ownership of a relay about to be made."""
        # Pins made at run time (core scheduler, core pinner) win over the
        # configured ones, as with virtio-forwarder.
        pin = self._pins.get(spec.relay_id)
        runtime = self._runtime_pins.get(spec.relay_id)
        if runtime is not None and spec.cpus == (None, None):
            spec = dataclasses.replace(spec, cpus=runtime)
        elif pin is not None and spec.cpus == (None, None):
            spec = dataclasses.replace(spec, cpus=(pin.vf_to_vm, pin.vm_to_vf))
        if not spec.client and spec.socket_uid is None:
            # The data plane gives the socket its owner as it creates it
            # (and again whenever it re-creates it).
            spec = dataclasses.replace(
                spec, socket_uid=self._policy.uid,
                socket_gid=self._policy.gid, socket_mode=self._policy.mode)
        return spec

    def _place(self, path: str) -> str:
        """Every socket path, whoever named it, is one in a socket
        directory, in its canonical spelling."""
        try:
            return self._policy.place(path)
        except sockets.BadSocketPath as exc:
            raise Refused(str(exc)) from None

    def _add(self, req: AddRelay) -> RelayState:
        if not 0 <= req.spec.relay_id <= MAX_RELAY_ID:
            raise Refused("relay id %d is out of range (0-%d)"
                          % (req.spec.relay_id, MAX_RELAY_ID))
        spec = dataclasses.replace(req.spec,
                                   vhost_path=self._place(req.spec.vhost_path))
        if req.allocate_id:
            relay_id = self._by_path(spec.vhost_path)
            if relay_id is None:
                relay_id = self._free_id()
            spec = dataclasses.replace(spec, relay_id=relay_id)
        if spec.port_id:
            other = self._by_port(spec.port_id)
            if other is not None and \
                    self._relays[other].spec.vhost_path != spec.vhost_path:
                raise Conflict("port %s is served by relay %d on socket %s; "
                               "%s asked for socket %s" % (
                                   spec.port_id, other,
                                   self._relays[other].spec.vhost_path,
                                   req.source, spec.vhost_path))
        relay = self._relays.get(spec.relay_id)
        if relay is None:
            clash = self._by_path(spec.vhost_path)
            if clash is not None:
                raise Conflict("socket %s already belongs to relay %d (%s)"
                               % (spec.vhost_path, clash, ", ".join(
                                   self._relays[clash].claims)))
            return self._create(spec, req)
        return self._join(relay, spec, req)

    def _create(self, spec: RelaySpec, req: AddRelay) -> RelayState:
        full = self._prepare(spec)
        if not full.client:
            sockets.clear_stale(full.vhost_path, self._made.has)
        state = self._engine.add_relay(full)
        if not full.client:
            self._made.add(full.vhost_path)
        self._relays[spec.relay_id] = _Relay(
            full, {req.source: _Claim(spec, req.persist)})
        if req.persist:
            self._save()
        LOG.info("relay %d up (%s): VF %s <-> %s (%s), CPUs %s/%s",
                 spec.relay_id, req.source, state.vf_name or "none",
                 spec.vhost_path, "client" if spec.client else "server",
                 state.vf_to_vm.cpu, state.vm_to_vf.cpu)
        self._emit(RELAY_CREATED, self._relays[spec.relay_id].view())
        return state

    def _join(self, relay: _Relay, spec: RelaySpec,
              req: AddRelay) -> RelayState:
        """Another claim on an existing relay: the same thing, a VF for a
        relay that had none, or a conflict."""
        have = relay.spec
        owners = ", ".join(sorted(relay.claims))
        mine = relay.claims.get(req.source)
        if mine is not None:
            if self._same_vf(mine.spec, spec) and \
                    mine.spec.vhost_path == spec.vhost_path and \
                    mine.spec.port_id == spec.port_id and \
                    mine.spec.client == spec.client:
                if req.conditional:
                    return self._engine.relay(have.relay_id)
            raise Conflict("relay %d already exists (VF %s, socket %s%s, "
                           "claimed by %s)" % (
                               have.relay_id, have.vf_label or have.vf or
                               "none", have.vhost_path,
                               ", port %s" % relay.port_id()
                               if relay.port_id() else "", owners))
        if spec.vhost_path != have.vhost_path or spec.client != have.client:
            raise Conflict("relay %d is %s's, on socket %s (%s); %s asked "
                           "for socket %s (%s)" % (
                               have.relay_id, owners, have.vhost_path,
                               "client" if have.client else "server",
                               req.source, spec.vhost_path,
                               "client" if spec.client else "server"))
        if spec.vf and have.vf and not self._same_vf(spec, have):
            raise Conflict("relay %d has VF %s from %s; %s asked for VF %s"
                           % (have.relay_id, have.vf, relay.vf_claim(),
                              req.source, spec.vf))
        served = relay.port_id()
        if spec.port_id and served and spec.port_id != served:
            raise Conflict("relay %d (socket %s) serves port %s; %s asked "
                           "for port %s" % (have.relay_id, have.vhost_path,
                                            served, req.source,
                                            spec.port_id))
        if spec.vf and not have.vf:
            self._engine.set_vf(spec)
            relay.spec = dataclasses.replace(
                have, vf=spec.vf, vf_label=spec.vf_label,
                bond_members=spec.bond_members, bond_mode=spec.bond_mode,
                vf_queues=spec.vf_queues)
            LOG.info("relay %d: VF %s attached (%s; socket from %s)",
                     have.relay_id, spec.vf, req.source, owners)
        relay.claims[req.source] = _Claim(spec, req.persist)
        if spec.numa_hint is not None and spec.numa_hint != have.numa_hint:
            state = self._engine.relay(have.relay_id)
            if not state.vm_connected and state.numa_node != spec.numa_hint:
                self._engine.set_numa_node(have.relay_id, spec.numa_hint)
        if req.persist:
            self._save()
        return self._engine.relay(have.relay_id)

    def _known_path(self, path: str) -> int | None:
        """The relay on ``path``; a path outside the socket directories
        simply has none."""
        try:
            return self._by_path(self._policy.place(path))
        except sockets.BadSocketPath:
            return None

    def _remove(self, req: RemoveRelay) -> int | None:
        if req.vhost_path is not None:
            relay_id = self._known_path(req.vhost_path)
            what = "socket %s" % req.vhost_path
        elif req.relay_id is None and req.port_id is not None:
            relay_id = self._by_port(req.port_id)
            what = "the relay of port %s" % req.port_id
        else:
            relay_id = req.relay_id
            what = "relay %s" % req.relay_id
        relay = self._relays.get(relay_id) if relay_id is not None else None
        if relay is None or relay_id is None:
            if req.conditional:
                return None
            raise Missing("%s does not exist" % what)
        served = relay.port_id()
        if req.port_id is not None and served and served != req.port_id:
            raise Missing("%s serves port %s, not %s" % (
                what, served, req.port_id))
        if req.vhost_path is not None and req.relay_id is not None and \
                req.relay_id != relay_id:
            raise Missing("socket %s belongs to relay %d, not %d"
                          % (req.vhost_path, relay_id, req.relay_id))
        if req.vf is not None and req.vf not in (relay.spec.vf,
                                                 relay.spec.vf_label):
            raise Missing("relay %d carries VF %s, not %s"
                          % (relay_id, relay.spec.vf or "none", req.vf))
        # A source withdraws its own claim, and only that: another source's
        # registration stays whatever this one does.  The one exception
        # is explicit (take_vf, see RemoveRelay).
        source = req.source
        if source not in relay.claims:
            owner = relay.vf_claim() if req.take_vf else None
            if owner is None:
                if req.conditional:
                    LOG.info("relay %d: %s has no claim on it (%s); "
                             "nothing to remove", relay_id, req.source,
                             ", ".join(sorted(relay.claims)))
                    return None
                raise Missing("relay %d is not %s's (claimed by %s)" % (
                    relay_id, req.source, ", ".join(sorted(relay.claims))))
            LOG.info("relay %d: %s removes VF %s, which %s added", relay_id,
                     req.source, relay.spec.vf_label or relay.spec.vf,
                     owner)
            source = owner
        view = relay.view()
        claim = relay.claims.pop(source)
        if not relay.claims:
            self._engine.remove_relay(relay_id)
            self._made.discard(relay.spec.vhost_path)
            del self._relays[relay_id]
            self._runtime_pins.pop(relay_id, None)
            LOG.info("relay %d removed (%s)", relay_id, req.source)
            self._emit(RELAY_DELETED, view)
        elif claim.spec.vf and not any(
                c.spec.vf for c in relay.claims.values()):
            self._engine.clear_vf(relay_id)
            relay.spec = dataclasses.replace(
                relay.spec, vf="", vf_label="", bond_members=(),
                bond_mode=None)
            LOG.info("relay %d: VF detached (%s); the socket stays for %s",
                     relay_id, req.source, ", ".join(relay.claims))
        if claim.persist:
            self._save()
        return relay_id

    def _move(self, req: MoveDirection) -> RelayState:
        if req.relay_id not in self._relays:
            raise Missing("relay %d does not exist" % req.relay_id)
        state = self._engine.move(req.relay_id, req.direction, req.cpu)
        if req.persist:
            pins = list(self._runtime_pins.get(req.relay_id, (None, None)))
            pins[int(req.direction)] = req.cpu
            self._runtime_pins[req.relay_id] = (pins[0], pins[1])
            self._save()
        LOG.info("relay %d: %s on CPU %s (%s)", req.relay_id,
                 req.direction.name, state.direction(req.direction).cpu,
                 req.source)
        return state

    def _set_pins(self, req: SetPins) -> list[int]:
        """Returns the relays moved."""
        old, self._pins = self._pins, dict(req.pins)
        moved = []
        for relay_id, pin in sorted(self._pins.items()):
            relay = self._relays.get(relay_id)
            if old.get(relay_id) == pin or relay is None or \
                    relay_id in self._runtime_pins:
                continue
            try:
                for direction, cpu in ((Direction.VF_TO_VM, pin.vf_to_vm),
                                       (Direction.VM_TO_VF, pin.vm_to_vf)):
                    self._engine.move(relay_id, direction, cpu)
            except exception.Vio4wdException as exc:
                LOG.error("relay %d: configured pin %d,%d not applied: %s",
                          relay_id, pin.vf_to_vm, pin.vm_to_vf, exc)
                continue
            relay.spec = dataclasses.replace(
                relay.spec, cpus=(pin.vf_to_vm, pin.vm_to_vf))
            LOG.info("relay %d: pinned to CPUs %d (VF->VM), %d (VM->VF) by "
                     "the configuration", relay_id, pin.vf_to_vm,
                     pin.vm_to_vf)
            moved.append(relay_id)
        return moved

    def _query(self, req: Query) -> RelaySpec:
        if req.vhost_path is None:
            relay_id = self._by_port(req.port_id or "")
            if relay_id is None:
                raise Missing("no relay serves port %s" % req.port_id)
            return self._relays[relay_id].view()
        relay_id = self._known_path(req.vhost_path)
        if relay_id is None:
            raise Missing("no relay serves socket %s" % req.vhost_path)
        spec = self._relays[relay_id].view()
        if req.port_id is not None and spec.port_id != req.port_id:
            raise Missing("socket %s serves %s, not port %s" % (
                req.vhost_path, "port %s" % spec.port_id if spec.port_id
                else "no port", req.port_id))
        return spec

    # ---- journal --------------------------------------------------------
    def _save(self) -> None:
        if self._journal is None:
            return
        try:
            self._journal.save(
                [(claim.spec, source) for relay in self._relays.values()
                 for source, claim in relay.claims.items() if claim.persist],
                {i: p for i, p in self._runtime_pins.items()
                 if i in self._relays})
        except OSError as exc:
            LOG.error("cannot write the journal %s: %s; what changed now "
                      "will not survive a restart", self._journal.path, exc)

    def load_pins(self) -> None:
        """Take the journal's runtime pins; call before adding relays."""
        if self._journal is not None:
            self._journal_relays, pins = self._journal.load()
            self._runtime_pins.update(pins)

    def restore(self) -> int:
        """Re-add the relays the journal holds (after the configured ones:
        a clash is logged and the journal's relay dropped).  Returns how
        many came back."""
        relays, self._journal_relays = self._journal_relays, []
        futures = [(spec, self.submit(AddRelay(spec, source, conditional=True,
                                               persist=True)))
                   for spec, source in relays]
        restored = 0
        for spec, future in futures:
            try:
                service.result(future, "journal: relay %d" % spec.relay_id)
                restored += 1
            except exception.Vio4wdException as exc:
                LOG.error("journal: relay %d (%s) not restored: %s",
                          spec.relay_id, spec.vhost_path, exc)
        if futures:
            LOG.info("journal: restored %d of %d relay(s)", restored,
                     len(futures))
        return restored


class MadeSockets:
    """The server sockets the data plane made (and gave to their owner),
    by path -> (device, inode), kept in ``path`` (the state directory):
    after a crash their stale files may go, nobody else's."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self._made: dict[str, tuple[int, int]] = {}
        if path is not None:
            try:
                raw = trusted.read_file(os.path.dirname(path),
                                        os.path.basename(path), 16 << 20)
                data = json.loads(raw.decode("utf-8"))
                self._made = {p: (int(v[0]), int(v[1]))
                              for p, v in data.items()}
            except FileNotFoundError:
                pass
            except (OSError, ValueError, TypeError, AttributeError,
                    IndexError) as exc:
                LOG.warning("%s unreadable (%s): stale sockets of an "
                            "earlier run stay where they are", path, exc)

    def has(self, st: os.stat_result) -> bool:
        return (st.st_dev, st.st_ino) in self._made.values()

    def add(self, sock: str) -> None:
        try:
            st = os.lstat(sock)
        except OSError:
            return
        self._made[sock] = (st.st_dev, st.st_ino)
        self._save()

    def discard(self, sock: str) -> None:
        if self._made.pop(sock, None) is not None:
            self._save()

    def _save(self) -> None:
        if self.path is None:
            return
        try:
            directory = trusted.ensure_dir(os.path.dirname(self.path),
                                           mode=0o700,
                                           what="state directory")
            trusted.write_file(directory, os.path.basename(self.path),
                               json.dumps(self._made).encode(), mode=0o600)
        except OSError as exc:
            LOG.error("cannot write %s: %s", self.path, exc)
