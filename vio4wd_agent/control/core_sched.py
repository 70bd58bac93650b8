# SPDX-License-Identifier: Apache-2.0
"""CoreSchedRequest: move relay directions between worker CPUs (UPDATE)
and list the worker CPUs (GET_EAL_CORES).  Used by the core pinner and
the load-balancing core scheduler."""
from __future__ import annotations

import concurrent.futures
import errno
import logging
import threading

from google.protobuf.message import DecodeError

from vio4wd_agent import manager
from vio4wd_agent.control import protocol
from vio4wd_agent.control.port_control import error_code
from vio4wd_agent.control.server import Reply
from vio4wd_agent.relay.engine import RelayEngine
from vio4wd_agent.relay.model import Direction

LOG = logging.getLogger(__name__)


def response(code: int = 0, source: str = "",
             cores: list[int] | None = None) -> bytes:
    out = protocol.CoreSchedResponse()
    out.status = out.OK if code == 0 else out.ERROR
    if code:
        out.error_code = -abs(code)
        out.error_code_source = source
    out.eal_cores.extend(cores or [])
    return out.SerializeToString()


class CoreSchedHandler:
    name = "core scheduler"

    def __init__(self, mgr: manager.RelayManager,
                 engine: RelayEngine) -> None:
        self.manager = mgr
        self.engine = engine

    def error(self, message: str) -> bytes:
        return response(errno.EINVAL, message)

    def handle(self, data: bytes, reply: Reply) -> None:
        req = protocol.CoreSchedRequest()
        try:
            req.MergeFromString(data)
        except (DecodeError, RuntimeError, ValueError) as exc:
            reply(response(errno.EINVAL, "malformed request: %s" % exc))
            return
        if not req.HasField("op"):
            reply(response(errno.EINVAL, "no op, or an unknown one"))
            return
        if req.op == req.GET_EAL_CORES:
            reply(response(cores=self.engine.workers()))
            return
        moves = []
        for i, entry in enumerate(req.relay_cpu_map):
            missing = [f for f in ("relay_number", "vf2virtio_cpu",
                                   "virtio2vf_cpu") if not entry.HasField(f)]
            if missing:
                reply(response(errno.EINVAL, "relay_cpu_map[%d] has no %s"
                               % (i, missing[0])))
                return
            for direction, cpu in ((Direction.VF_TO_VM, entry.vf2virtio_cpu),
                                   (Direction.VM_TO_VF,
                                    entry.virtio2vf_cpu)):
                # A negative CPU hands the direction back to the
                # least-loaded choice.
                moves.append(manager.MoveDirection(
                    entry.relay_number, direction, cpu if cpu >= 0 else None,
                    source="core pin request"))
        futures = [self.manager.submit(m) for m in moves]
        if not futures:
            reply(response())
            return
        pending = [len(futures)]
        lock = threading.Lock()

        def finished(_: concurrent.futures.Future) -> None:
            with lock:
                pending[0] -= 1
                if pending[0]:
                    return
            for move, f in zip(moves, futures):
                exc = f.exception()
                if exc is not None:
                    LOG.warning("core scheduler: relay %d %s to CPU %s: %s",
                                move.relay_id, move.direction.name,
                                move.cpu, exc)
                    reply(response(error_code(exc),
                                   "UPDATE relay %d: %s" % (move.relay_id,
                                                            exc)))
                    return
            reply(response())

        for f in futures:
            f.add_done_callback(finished)
