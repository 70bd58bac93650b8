# SPDX-License-Identifier: Apache-2.0
"""RelayManager: the single writer of the relay table.

Sources (static config, port control over ZeroMQ or an IPC directory, and
later the watchers) submit neutral requests; one thread applies them to the
engine in order, so no two changes ever race and there is no lock order to
get wrong.  It also keeps the journal: what port control added and the
runtime pins, so that a restarted agent restores them.
"""
from __future__ import annotations

import concurrent.futures
import dataclasses
import errno
import logging
import queue
import threading
from typing import Any, Callable

from vio4wd_agent import exception
from vio4wd_agent.conf.parsing import CpuPin
from vio4wd_agent.journal import Journal
from vio4wd_agent.relay.engine import RelayEngine
from vio4wd_agent.relay.model import Direction, RelaySpec, RelayState
from vio4wd_agent.vhostuser import sockets

LOG = logging.getLogger(__name__)


class Conflict(exception.RelayExists):
    """A request clashes with a relay another request made."""

    def __init__(self, detail: str) -> None:
        super().__init__(errno.EEXIST, detail)


class Missing(exception.NotFound):
    def __init__(self, detail: str) -> None:
        super().__init__(errno.ENOENT, detail)


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
    relay_id: int | None = None       # the relay, by id...
    vhost_path: str | None = None     # ...or by socket
    vf: str | None = None             # when given, the relay's VF must match
    source: str = "static"
    conditional: bool = False         # a relay that is not there is fine


@dataclasses.dataclass(frozen=True)
class MoveDirection:
    relay_id: int
    direction: Direction
    cpu: int | None                   # None: least-loaded worker
    source: str = "core scheduler"
    persist: bool = True


@dataclasses.dataclass(frozen=True)
class Query:
    """Which relay serves a socket (answered in order with the changes)."""

    vhost_path: str


Request = AddRelay | RemoveRelay | MoveDirection | Query


@dataclasses.dataclass
class _Owned:
    spec: RelaySpec
    source: str
    persist: bool


class RelayManager:
    def __init__(self, engine: RelayEngine, policy: sockets.SocketPolicy,
                 pins: dict[int, CpuPin] | None = None,
                 journal: Journal | None = None) -> None:
        self._engine = engine
        self._policy = policy
        self._pins = dict(pins or {})
        self._journal = journal
        self._runtime_pins: dict[int, tuple[int | None, int | None]] = {}
        self._queue: queue.Queue[
            tuple[Request, concurrent.futures.Future] | None] = queue.Queue()
        self._relays: dict[int, _Owned] = {}
        self._journal_relays: list[tuple[RelaySpec, str]] = []
        self._thread: threading.Thread | None = None

    # ---- lifecycle ------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run,
                                        name="relay-manager", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None

    # ---- requests -------------------------------------------------------
    def submit(self, request: Request) -> concurrent.futures.Future:
        future: concurrent.futures.Future = concurrent.futures.Future()
        self._queue.put((request, future))
        return future

    def submit_add(self, spec: RelaySpec,
                   source: str = "static") -> concurrent.futures.Future:
        return self.submit(AddRelay(spec, source))

    def add(self, spec: RelaySpec, source: str = "static",
            timeout: float | None = None) -> RelayState:
        return self.submit(AddRelay(spec, source)).result(timeout)

    def remove(self, relay_id: int, source: str = "static",
               timeout: float | None = None) -> None:
        self.submit(RemoveRelay(relay_id, source=source)).result(timeout)

    def relays(self) -> list[RelayState]:
        return self._engine.relays()

    def specs(self) -> dict[int, RelaySpec]:
        """What each relay was asked to be (a snapshot)."""
        return {i: o.spec for i, o in list(self._relays.items())}

    # ---- the writer thread ----------------------------------------------
    def _run(self) -> None:
        handlers: dict[type, Callable[[Any], Any]] = {
            AddRelay: self._add, RemoveRelay: self._remove,
            MoveDirection: self._move, Query: self._query}
        while True:
            item = self._queue.get()
            if item is None:
                return
            request, future = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(handlers[type(request)](request))
            except Exception as exc:  # handed to the submitter
                future.set_exception(exc)

    def _by_path(self, path: str) -> int | None:
        for relay_id, owned in self._relays.items():
            if owned.spec.vhost_path == path:
                return relay_id
        return None

    @staticmethod
    def _same_device(a: RelaySpec, b: RelaySpec) -> bool:
        return (a.vf, tuple(a.bond_members), a.vhost_path) == (
            b.vf, tuple(b.bond_members), b.vhost_path)

    def _free_id(self) -> int:
        taken = set(self._relays) | set(self._engine.relay_ids())
        relay_id = 0
        while relay_id in taken:
            relay_id += 1
        return relay_id

    def _add(self, req: AddRelay) -> RelayState:
        spec = req.spec
        existing = self._by_path(spec.vhost_path) if req.allocate_id \
            else spec.relay_id if spec.relay_id in self._relays else None
        if existing is None and not req.allocate_id:
            clash = self._by_path(spec.vhost_path)
            if clash is not None:
                raise Conflict("socket %s already belongs to relay %d (%s)"
                               % (spec.vhost_path, clash,
                                  self._relays[clash].source))
        if existing is not None:
            owned = self._relays[existing]
            probe = dataclasses.replace(spec, relay_id=existing)
            if req.conditional and self._same_device(owned.spec, probe):
                LOG.debug("relay %d already as asked (%s)", existing,
                          req.source)
                return self._engine.relay(existing)
            raise Conflict("relay %d already exists (VF %s, socket %s, added "
                           "by %s)" % (existing, owned.spec.vf or "none",
                                       owned.spec.vhost_path, owned.source))
        if req.allocate_id:
            spec = dataclasses.replace(spec, relay_id=self._free_id())
        pin = self._pins.get(spec.relay_id)
        # Pins made at run time (core scheduler, core pinner) win over the
        # configured ones, as with virtio-forwarder.
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
        if not spec.client:
            sockets.clear_stale(spec.vhost_path)
        state = self._engine.add_relay(spec)
        self._relays[spec.relay_id] = _Owned(spec, req.source, req.persist)
        if req.persist:
            self._save()
        LOG.info("relay %d up (%s): VF %s <-> %s (%s), CPUs %s/%s",
                 spec.relay_id, req.source, state.vf_name or "none",
                 spec.vhost_path, "client" if spec.client else "server",
                 state.vf_to_vm.cpu, state.vm_to_vf.cpu)
        return state

    def _remove(self, req: RemoveRelay) -> int | None:
        relay_id = req.relay_id if req.vhost_path is None \
            else self._by_path(req.vhost_path)
        what = "socket %s" % req.vhost_path if req.vhost_path is not None \
            else "relay %s" % req.relay_id
        if relay_id is None or relay_id not in self._relays:
            if req.conditional:
                return None
            raise Missing("%s does not exist" % what)
        owned = self._relays[relay_id]
        if req.vhost_path is not None and req.relay_id is not None and \
                req.relay_id != relay_id:
            raise Missing("socket %s belongs to relay %d, not %d"
                          % (req.vhost_path, relay_id, req.relay_id))
        if req.vf is not None and req.vf not in (owned.spec.vf,
                                                 owned.spec.vf_label):
            raise Missing("relay %d carries VF %s, not %s"
                          % (relay_id, owned.spec.vf or "none", req.vf))
        self._engine.remove_relay(relay_id)
        del self._relays[relay_id]
        self._runtime_pins.pop(relay_id, None)
        if owned.persist:
            self._save()
        LOG.info("relay %d removed (%s, added by %s)", relay_id, req.source,
                 owned.source)
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

    def _query(self, req: Query) -> RelaySpec:
        relay_id = self._by_path(req.vhost_path)
        if relay_id is None:
            raise Missing("no relay serves socket %s" % req.vhost_path)
        return self._relays[relay_id].spec

    # ---- journal --------------------------------------------------------
    def _save(self) -> None:
        if self._journal is None:
            return
        try:
            self._journal.save(
                [(o.spec, o.source) for o in self._relays.values()
                 if o.persist],
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
                future.result()
                restored += 1
            except exception.Vio4wdException as exc:
                LOG.error("journal: relay %d (%s) not restored: %s",
                          spec.relay_id, spec.vhost_path, exc)
        if futures:
            LOG.info("journal: restored %d of %d relay(s)", restored,
                     len(futures))
        return restored
