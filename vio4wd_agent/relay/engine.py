# SPDX-License-Identifier: Apache-2.0
"""RelayEngine: the only Python module that imports the compiled data plane.

It turns C return codes into typed exceptions carrying the C side's
description of what failed, and C structs into the dataclasses of
:mod:`vio4wd_agent.relay.model`.  Every call is thread-safe (the C side
serialises control calls) and releases the GIL while in C.
"""
from __future__ import annotations

import errno as errno_mod
import functools
import importlib.util
import logging
import os
import sys
import threading
from typing import Any, Callable, Sequence, TypeVar

from vio4wd_agent import exception
from vio4wd_agent.relay import model



def _extension() -> Any:
    """The compiled data plane: the package's own, or the build named by
    VIO4WD_DPDK_EXT (the sanitizer build of `make test-asan`)."""
    path = os.environ.get("VIO4WD_DPDK_EXT")
    if not path:
        from vio4wd_agent.relay import _dpdk  # type: ignore[attr-defined]
        return _dpdk
    name = "vio4wd_agent.relay._dpdk"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError("VIO4WD_DPDK_EXT=%s is not a module" % path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


_ext = _extension()
ffi, lib = _ext.ffi, _ext.lib

LOG = logging.getLogger(__name__)

BURST: int = lib.V4W_BURST
PATH_MAX: int = lib.V4W_PATH_MAX
DEVARGS_MAX: int = lib.V4W_DEVARGS_MAX
_NONE: int = lib.V4W_NONE

_ERRNO_CLASSES: dict[int, type[exception.EngineError]] = {
    errno_mod.EEXIST: exception.RelayExists,
    errno_mod.ENOENT: exception.NotFound,
    errno_mod.EBUSY: exception.ResourceBusy,
    errno_mod.EADDRINUSE: exception.ResourceBusy,
    errno_mod.EINVAL: exception.InvalidArgument,
    errno_mod.ENOSPC: exception.OutOfResources,
    errno_mod.ENOMEM: exception.OutOfResources,
    errno_mod.ENODEV: exception.DeviceError,
    errno_mod.ENOTSUP: exception.DeviceError,
    errno_mod.EIO: exception.DeviceError,
    errno_mod.EALREADY: exception.EngineNotRunning,
}

_started = False
_start_lock = threading.Lock()
F = TypeVar("F", bound=Callable[..., Any])


def relay_heap_bytes(jumbo: bool, vf_queues: int, lcores: int) -> int:
    """The most DPDK heap one relay takes (see memory_needed_mb)."""
    return int(lib.v4w_relay_heap_bytes(int(jumbo), vf_queues, lcores))


def _check(rc: int) -> int:
    if rc >= 0:
        return rc
    err = -rc
    detail = ffi.string(lib.v4w_last_error()).decode("utf-8", "replace")
    if not detail:
        detail = "%s (errno %d)" % (errno_mod.errorcode.get(err, "?"), err)
    cls = _ERRNO_CLASSES.get(err, exception.EngineError)
    raise cls(err, detail)


def _to_c(value: int | None) -> int:
    """An optional int (CPU, node, uid, mode...) as C has it: V4W_NONE
    for None."""
    return _NONE if value is None else value


def _from_c(value: int) -> int | None:
    """The other way: None for V4W_NONE."""
    return None if value == _NONE else value


def _dir_stats(d) -> model.DirectionStats:  # type: ignore[no-untyped-def]
    return model.DirectionStats(
        rx_pkts=d.rx_pkts, rx_bytes=d.rx_bytes,
        tx_pkts=d.tx_pkts, tx_bytes=d.tx_bytes,
        drop_full_pkts=d.drop_full_pkts, drop_full_bytes=d.drop_full_bytes,
        drop_noconn_pkts=d.drop_noconn_pkts,
        drop_noconn_bytes=d.drop_noconn_bytes,
        drop_bad_pkts=d.drop_bad_pkts, drop_bad_bytes=d.drop_bad_bytes,
        retries=d.retries, held=d.held, cpu=_from_c(d.cpu))


def _encode(what: str, value: str, limit: int, relay_id: int) -> bytes:
    raw = value.encode("utf-8")
    if len(raw) >= limit:
        raise exception.InvalidArgument(
            errno_mod.EINVAL, "relay %d: %s is %d bytes long, the limit is "
            "%d: %r" % (relay_id, what, len(raw), limit - 1, value))
    if any(b < 0x20 or b == 0x7F for b in raw):
        raise exception.InvalidArgument(
            errno_mod.EINVAL, "relay %d: %s contains a control character: "
            "%r" % (relay_id, what, value))
    return raw


def _changes_relays(method: F) -> F:
    """The method adds, changes or removes a relay: the engine's change
    count moves once it returns or fails (a failed call may have done
    part of its work)."""
    @functools.wraps(method)
    def wrapper(self: "RelayEngine", *args: Any, **kw: Any) -> Any:
        try:
            return method(self, *args, **kw)
        finally:
            self._changed()
    return wrapper  # type: ignore[return-value]


# Events read from the data plane per call.
_EVENT_BATCH = 64
# The header's event numbers, as the model names them.
_EVENT_KINDS = {
    lib.V4W_EV_BOND_MEMBER_OUT: model.EventKind.MEMBER_OUT,
    lib.V4W_EV_BOND_MEMBER_IN: model.EventKind.MEMBER_IN,
    lib.V4W_EV_SOCKET_DOWN: model.EventKind.SOCKET_DOWN,
    lib.V4W_EV_SOCKET_UP: model.EventKind.SOCKET_UP,
    lib.V4W_EV_VF_RESTARTED: model.EventKind.VF_RESTARTED,
    lib.V4W_EV_POOL_MOVED: model.EventKind.POOL_MOVED,
    lib.V4W_EV_LOST: model.EventKind.LOST,
}


class RelayEngine:
    """The data plane of this process (there can be only one EAL)."""

    def __init__(self) -> None:
        self._running = False
        # Bumped after every call that adds, changes or removes a relay:
        # a sample of relays taken at another value is out of date.
        self._changes = 0
        self._changes_lock = threading.Lock()
        # events()'s buffer, made once: it has one reader (the manager's
        # thread), which asks ten times a second.
        self._event_buf: Any = None

    @property
    def changes(self) -> int:
        return self._changes

    def _changed(self) -> None:
        with self._changes_lock:
            self._changes += 1

    @property
    def running(self) -> bool:
        return self._running

    def start(self, eal_args: Sequence[str]) -> None:
        """Start the EAL and the worker lcores.  Once per process."""
        global _started
        with _start_lock:
            if _started:
                raise exception.EngineNotRunning(
                    errno_mod.EALREADY,
                    "the DPDK EAL was already started in this process")
            _started = True
        LOG.info("starting the data plane: %s", " ".join(eal_args))
        keep = [ffi.new("char[]", a.encode()) for a in eal_args]
        _check(lib.v4w_eal_init(len(keep), ffi.new("char *[]", keep)))
        self._running = True
        limits = self.limits()
        LOG.info("data plane up: workers on CPUs %s; this DPDK build allows "
                 "%d ethernet ports and %d relays", self.workers(),
                 limits.max_ethports, limits.max_relays)

    def shutdown(self) -> None:
        if self._running:
            self._running = False
            lib.v4w_shutdown()

    @_changes_relays
    def add_relay(self, spec: model.RelaySpec) -> model.RelayState:
        _check(lib.v4w_relay_add(self._conf(spec)))
        return self.relay(spec.relay_id)

    @_changes_relays
    def set_vf(self, spec: model.RelaySpec) -> model.RelayState:
        """Attach spec's VF (or bond) to relay spec.relay_id, which has
        none, without disturbing a connected VM."""
        _check(lib.v4w_relay_set_vf(self._conf(spec)))
        return self.relay(spec.relay_id)

    @_changes_relays
    def clear_vf(self, relay_id: int) -> model.RelayState:
        """Detach the relay's VF; the socket and a connected VM stay."""
        _check(lib.v4w_relay_clear_vf(relay_id))
        return self.relay(relay_id)

    @staticmethod
    def _conf(spec: model.RelaySpec):  # type: ignore[no-untyped-def]
        conf = ffi.new("struct v4w_relay_conf *")
        conf.id = spec.relay_id
        conf.vf_devargs = _encode("VF devargs", spec.vf, DEVARGS_MAX,
                                  spec.relay_id)
        conf.vhost_path = _encode("vhost-user socket path", spec.vhost_path,
                                  PATH_MAX, spec.relay_id)
        conf.flags = ((lib.V4W_F_CLIENT if spec.client else 0) |
                      (lib.V4W_F_JUMBO if spec.jumbo else 0) |
                      (lib.V4W_F_MRGBUF if spec.mrgbuf else 0) |
                      (lib.V4W_F_TSO if spec.tso else 0))
        conf.cpu = [_to_c(spec.cpus[0]), _to_c(spec.cpus[1])]
        conf.numa_hint = _to_c(spec.numa_hint)
        conf.max_queues = spec.max_queues
        conf.vf_queues = spec.vf_queues
        if len(spec.bond_members) > lib.V4W_MAX_BOND:
            raise exception.InvalidArgument(
                errno_mod.EINVAL, "relay %d: a bond needs 2 to %d members, "
                "%d given" % (spec.relay_id, lib.V4W_MAX_BOND,
                              len(spec.bond_members)))
        conf.n_members = len(spec.bond_members)
        for i, member in enumerate(spec.bond_members):
            conf.members[i] = _encode("bond member", member, DEVARGS_MAX,
                                      spec.relay_id)
        conf.bond_mode = _to_c(spec.bond_mode)
        if spec.link_follows_vf:
            conf.flags |= lib.V4W_F_LINK_FOLLOW
        conf.socket_uid = _to_c(spec.socket_uid)
        conf.socket_gid = _to_c(spec.socket_gid)
        conf.socket_mode = _to_c(spec.socket_mode)
        return conf

    @_changes_relays
    def remove_relay(self, relay_id: int) -> None:
        _check(lib.v4w_relay_remove(relay_id))

    @_changes_relays
    def move(self, relay_id: int, direction: model.Direction,
             cpu: int | None) -> model.RelayState:
        """Move one direction to worker ``cpu`` (None: least loaded) while
        traffic flows; returns the relay's state afterwards."""
        _check(lib.v4w_relay_set_cpu(relay_id, int(direction), _to_c(cpu)))
        return self.relay(relay_id)

    @_changes_relays
    def set_numa_node(self, relay_id: int, node: int) -> None:
        """Move the relay's mempool to ``node`` now."""
        _check(lib.v4w_relay_set_numa(relay_id, node))

    def relay(self, relay_id: int) -> model.RelayState:
        info = ffi.new("struct v4w_relay_info *")
        _check(lib.v4w_relay_get(relay_id, info))
        return model.RelayState(
            relay_id=info.id,
            vhost_path=ffi.string(info.vhost_path).decode(),
            vf_name=ffi.string(info.vf_name).decode(),
            vf_port=_from_c(info.vf_port),
            vf_ready=bool(info.vf_ready),
            vm_connected=bool(info.vm_connected),
            client=bool(info.flags & lib.V4W_F_CLIENT),
            numa_node=info.numa_node,
            vm_numa_node=_from_c(info.vm_numa_node),
            numa_hint=_from_c(info.numa_hint),
            mtu=info.mtu,
            pool_moves=info.pool_moves,
            vm_connects=info.vm_connects,
            vf_to_vm=_dir_stats(info.dir[lib.V4W_VF_TO_VM]),
            vm_to_vf=_dir_stats(info.dir[lib.V4W_VM_TO_VF]),
            vf_rx_missed=info.vf_rx_missed, vf_rx_errors=info.vf_rx_errors,
            vf_tx_errors=info.vf_tx_errors, vm_rxq_mask=info.vm_rxq_mask,
            vm_txq_mask=info.vm_txq_mask, max_queues=info.max_queues,
            vf_queues=info.vf_queues, bond_members=info.n_members,
            bond_mode=_from_c(info.bond_mode),
            active_member=_from_c(info.active_member),
            vf_link_up=bool(info.vf_link_up),
            vm_on_socket=bool(info.vm_socket),
            socket_down=bool(info.socket_down),
            members_out=info.members_out,
            reason=model.REASONS.get(info.reason, "unknown (%d)" % info.reason))

    def queue_stats(self, relay_id: int,
                    direction: model.Direction) -> list[model.QueueStats]:
        """Per queue counters of one direction, for the queue pairs the
        relay serves (or its VF has, if more)."""
        buf = ffi.new("struct v4w_queue_stats[]", lib.V4W_MAX_QUEUES)
        n = _check(lib.v4w_relay_queue_stats(relay_id, int(direction), buf,
                                             lib.V4W_MAX_QUEUES))
        return [model.QueueStats(q, buf[q].pkts, buf[q].bytes, buf[q].drops,
                                 buf[q].vf_pkts) for q in range(n)]

    def events(self) -> list[model.DataPlaneEvent]:
        """What the data plane did to relays on its own since the last
        call, oldest first (C never calls back: the manager asks; one
        thread only)."""
        if not self._running:
            return []
        if self._event_buf is None:
            self._event_buf = ffi.new("struct v4w_event[]", _EVENT_BATCH)
        buf = self._event_buf
        out: list[model.DataPlaneEvent] = []
        while True:
            n = lib.v4w_events_read(buf, _EVENT_BATCH)
            out += [model.DataPlaneEvent(_from_c(buf[i].relay),
                                         _EVENT_KINDS[buf[i].kind], buf[i].arg)
                    for i in range(n)]
            if n < _EVENT_BATCH:
                break
        if out:
            self._changed()     # stats answers must not predate them
        return out

    def relay_ids(self) -> list[int]:
        n = lib.v4w_relay_list(ffi.NULL, 0)
        while True:
            buf = ffi.new("uint32_t[]", max(n, 1))
            got = lib.v4w_relay_list(buf, n)
            if got <= n:
                return sorted(buf[i] for i in range(got))
            n = got

    def relays(self) -> list[model.RelayState]:
        states = []
        for relay_id in self.relay_ids():
            try:
                states.append(self.relay(relay_id))
            except exception.NotFound:
                pass  # removed meanwhile
        return states

    def workers(self) -> list[int]:
        buf = ffi.new("int32_t[]", 1024)
        n = lib.v4w_workers(buf, 1024)
        return [buf[i] for i in range(min(n, 1024))]

    def worker_stats(self) -> list[model.WorkerStats]:
        out = ffi.new("struct v4w_worker_stats *")
        stats = []
        for cpu in self.workers():
            _check(lib.v4w_worker_get(cpu, out))
            stats.append(model.WorkerStats(
                cpu=out.cpu, directions=out.directions,
                busy_cycles=out.busy_cycles, idle_cycles=out.idle_cycles,
                rounds=out.rounds, naps=out.naps, tsc_hz=out.tsc_hz))
        return stats

    @staticmethod
    def limits() -> model.Limits:
        out = ffi.new("struct v4w_limits *")
        lib.v4w_get_limits(out)
        return model.Limits(max_ethports=out.max_ethports,
                            max_relays=out.max_relays,
                            max_lcores=out.max_lcores, burst=out.burst)

    def memory(self) -> model.Memory:
        out = ffi.new("struct v4w_memory *")
        lib.v4w_get_memory(out)
        return model.Memory(heap_bytes=out.heap_bytes,
                            alloc_bytes=out.alloc_bytes)

    def resources(self) -> model.Resources:
        out = ffi.new("struct v4w_resources *")
        lib.v4w_get_resources(out)
        return model.Resources(relays=out.relays, ports=out.ports,
                               mempools=out.mempools, workers=out.workers)
