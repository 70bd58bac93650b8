# SPDX-License-Identifier: Apache-2.0
"""RelayManager: the single writer of the relay table.

Sources (static config now; port control and watchers later) submit
neutral requests; one thread applies them to the engine in order, so no
two changes ever race and there is no lock order to get wrong.
"""
from __future__ import annotations

import concurrent.futures
import dataclasses
import logging
import queue
import threading

from vio4wd_agent.conf.parsing import CpuPin
from vio4wd_agent.relay.engine import RelayEngine
from vio4wd_agent.relay.model import RelaySpec, RelayState
from vio4wd_agent.vhostuser import sockets

LOG = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class AddRelay:
    spec: RelaySpec
    source: str = "static"


@dataclasses.dataclass(frozen=True)
class RemoveRelay:
    relay_id: int
    source: str = "static"


Request = AddRelay | RemoveRelay


class RelayManager:
    def __init__(self, engine: RelayEngine, policy: sockets.SocketPolicy,
                 pins: dict[int, CpuPin] | None = None) -> None:
        self._engine = engine
        self._policy = policy
        self._pins = dict(pins or {})
        self._queue: queue.Queue[
            tuple[Request, concurrent.futures.Future] | None] = queue.Queue()
        self._owners: dict[int, str] = {}
        self._paths: dict[str, int] = {}
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
        self.submit(RemoveRelay(relay_id, source)).result(timeout)

    def relays(self) -> list[RelayState]:
        return self._engine.relays()

    # ---- the writer thread ----------------------------------------------
    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            request, future = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                if isinstance(request, AddRelay):
                    future.set_result(self._add(request))
                else:
                    self._remove(request)
                    future.set_result(None)
            except Exception as exc:  # handed to the submitter
                future.set_exception(exc)

    def _add(self, req: AddRelay) -> RelayState:
        spec = req.spec
        pin = self._pins.get(spec.relay_id)
        if pin is not None and spec.cpus == (None, None):
            spec = dataclasses.replace(spec, cpus=(pin.vf_to_vm, pin.vm_to_vf))
        if not spec.client and spec.socket_uid is None:
            # The data plane gives the socket its owner as it creates it
            # (and again whenever it re-creates it).
            spec = dataclasses.replace(
                spec, socket_uid=self._policy.uid,
                socket_gid=self._policy.gid, socket_mode=self._policy.mode)
        # A socket of one of our relays is not stale: let the engine say
        # precisely what clashes.
        if not spec.client and spec.vhost_path not in self._paths:
            sockets.clear_stale(spec.vhost_path)
        state = self._engine.add_relay(spec)
        self._owners[spec.relay_id] = req.source
        self._paths[spec.vhost_path] = spec.relay_id
        LOG.info("relay %d up (%s): VF %s <-> %s (%s), CPUs %s/%s",
                 spec.relay_id, req.source, state.vf_name or "none",
                 spec.vhost_path, "client" if spec.client else "server",
                 state.vf_to_vm.cpu, state.vm_to_vf.cpu)
        return state

    def _remove(self, req: RemoveRelay) -> None:
        self._engine.remove_relay(req.relay_id)
        source = self._owners.pop(req.relay_id, None)
        self._paths = {p: i for p, i in self._paths.items()
                       if i != req.relay_id}
        LOG.info("relay %d removed (%s, added by %s)", req.relay_id,
                 req.source, source)
