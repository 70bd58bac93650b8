# SPDX-License-Identifier: Apache-2.0
"""libvirt watcher: domains whose vhost-user interfaces use the agent's
socket directory get their relays before QEMU needs them.

The only module that imports libvirt.  libvirt's default event loop runs
on its own thread (registered before any connection); its callbacks only
put neutral events on a queue.  One worker thread turns events into
RelayManager requests: on DEFINED and STARTED (also after a migration) it
reads the domain XML and claims a relay per interface (source
``libvirt/<domain>``); UNDEFINED withdraws those claims; STOPPED does only
for a transient domain, after a grace period, so a restart keeps the
relay.  When libvirtd goes away the close callback fires; the worker
reconnects, registers again and resyncs every domain.  libvirtError never
leaves this module.

Events come too late for a transient domain (``virsh create``) and for a
migration's destination: QEMU is already waiting for its peer.  For those
the qemu hook (vio4wd-libvirt-hook) hands the domain XML over at
``prepare`` through a HookListener, answered on its own thread (the worker
may be inside a libvirt call that waits for that very hook) under the lock
that guards the claims.
"""
from __future__ import annotations

import dataclasses
import errno
import heapq
import logging
import queue
import threading
import time
from typing import Any

import libvirt

from vio4wd_agent import manager, service
from vio4wd_agent.conf.parsing import normalize_pci
from vio4wd_agent.conf.settings import VhostFlags, resolve_vf
from vio4wd_agent.exception import Vio4wdException
from vio4wd_agent.relay.model import RelaySpec
from vio4wd_agent.vhostuser.sockets import SocketInUse, SocketPolicy
from vio4wd_agent.virt import domain as domxml
from vio4wd_agent.virt.hooklistener import HookListener, answer

LOG = logging.getLogger(__name__)

_event_impl_lock = threading.Lock()
_event_impl_ready = False

EVENT_NAMES = {
    libvirt.VIR_DOMAIN_EVENT_DEFINED: "defined",
    libvirt.VIR_DOMAIN_EVENT_UNDEFINED: "undefined",
    libvirt.VIR_DOMAIN_EVENT_STARTED: "started",
    libvirt.VIR_DOMAIN_EVENT_STOPPED: "stopped",
}


def _ignore_libvirt_errors(_ctx: Any, _err: Any) -> None:
    """libvirt prints every error to stderr by default; ours are logged."""


@dataclasses.dataclass(frozen=True)
class Event:
    """A neutral event: what happened, not what to do about it."""

    kind: str                 # lifecycle, closed
    uuid: str = ""
    name: str = ""
    event: int = -1
    detail: int = -1


class _EventLoop(service.Service):
    """libvirt's default event loop (callbacks: translate and queue)."""

    thread_name = "libvirt-events"
    stop_timeout = 5.0

    def run(self) -> None:
        while not self.stopping:
            try:
                libvirt.virEventRunDefaultImpl()
            except libvirt.libvirtError as exc:
                LOG.debug("libvirt event loop: %s", exc)
                self.sleep(0.1)


class LibvirtWatcher(service.Service):
    name = "libvirt"
    thread_name = "libvirt-watcher"
    stop_timeout = 5.0

    def __init__(self, uri: str, mgr: manager.RelayManager,
                 flags: VhostFlags, policy: SocketPolicy,
                 device_map: dict[str, str], dynamic_sockets: bool,
                 stopped_grace: float = 10.0, hook_socket: str = "",
                 allow_devargs: bool = False) -> None:
        super().__init__()
        self.uri = uri
        self.allow_devargs = allow_devargs
        self.manager = mgr
        self.flags = flags
        self.policy = policy
        self.device_map = device_map
        self.pattern = None if dynamic_sockets else policy.pattern
        self.stopped_grace = stopped_grace
        self.events: queue.Queue[Event | None] = queue.Queue()
        # domain uuid -> {socket path: the spec claimed}
        self.claims: dict[str, dict[str, RelaySpec]] = {}
        self.names: dict[str, str] = {}
        # domain uuid -> the manager source its claims are made as (the
        # name it had when first seen: a rename does not orphan them)
        self.sources: dict[str, str] = {}
        self._problems: dict[str, tuple[str, ...]] = {}
        # claims, names, sources and problems: the worker and hook requests
        self._lock = threading.RLock()
        self._hook = HookListener(hook_socket, self.hook) \
            if hook_socket else None
        self._timers: list[tuple[float, str]] = []
        self._conn: Any = None
        self._callbacks: list[int] = []
        self._event_loop = _EventLoop()
        self.synced = threading.Event()      # a full resync was done
        self.resyncs = 0

    # ---- lifecycle ------------------------------------------------------
    def start(self) -> None:
        global _event_impl_ready
        with _event_impl_lock:
            if not _event_impl_ready:
                libvirt.virEventRegisterDefaultImpl()
                libvirt.registerErrorHandler(_ignore_libvirt_errors, None)
                _event_impl_ready = True
        # A timer keeps the event loop waking up, so it notices stop().
        libvirt.virEventAddTimeout(500, lambda *a: None, None)
        if self._hook is not None:
            try:
                self._hook.start()
            except SocketInUse:
                # Another agent answers libvirt there: one agent per
                # endpoint, so this one does not start.
                raise OSError(errno.EADDRINUSE, "libvirt hook socket %s is "
                              "in use by another process (another agent?)"
                              % self._hook.path) from None
            except (OSError, Vio4wdException) as exc:
                LOG.error("libvirt hook socket %s not opened: %s; transient "
                          "domains need their sockets made beforehand",
                          self._hook.path, exc)
                self._hook = None
        self._event_loop.start()
        super().start()

    def wake(self) -> None:
        self.events.put(None)

    def stop(self, timeout: float | None = None) -> bool:
        if self._hook is not None:
            self._hook.stop()
        stopped = super().stop(timeout)
        stopped = self._event_loop.stop() and stopped
        self._disconnect()
        return stopped

    # ---- connection -----------------------------------------------------
    def _connect(self) -> bool:
        try:
            conn = libvirt.openReadOnly(self.uri)
        except libvirt.libvirtError as exc:
            if self.resyncs == 0 and not getattr(self, "_said", False):
                LOG.warning("libvirt %s not reachable yet (%s); retrying",
                            self.uri, exc.get_error_message())
                self._said = True
            return False
        try:
            conn.registerCloseCallback(self._closed, None)
            self._callbacks = [conn.domainEventRegisterAny(
                None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE,
                self._lifecycle, None)]
            conn.setKeepAlive(5, 3)
        except libvirt.libvirtError as exc:
            LOG.warning("libvirt %s: cannot register for events: %s",
                        self.uri, exc.get_error_message())
            try:
                conn.close()
            except libvirt.libvirtError:
                pass
            return False
        self._conn = conn
        LOG.info("libvirt %s connected; watching domains", self.uri)
        return True

    def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        for cb in self._callbacks:
            try:
                conn.domainEventDeregisterAny(cb)
            except libvirt.libvirtError:
                pass
        self._callbacks = []
        try:
            conn.unregisterCloseCallback()
            conn.close()
        except libvirt.libvirtError:
            pass

    # ---- callbacks (event loop thread): translate and queue only ---------
    def _lifecycle(self, _conn: Any, dom: Any, event: int, detail: int,
                   _opaque: Any) -> None:
        try:
            self.events.put(Event("lifecycle", dom.UUIDString(), dom.name(),
                                  event, detail))
        except libvirt.libvirtError:
            pass

    def _closed(self, _conn: Any, reason: int, _opaque: Any) -> None:
        self.events.put(Event("closed", event=reason))

    # ---- the worker -----------------------------------------------------
    def run(self) -> None:
        """The watcher's thread: (re)connects, resyncs, applies events."""
        backoff = 0.5
        while not self.stopping:
            if self._conn is None:
                if self._connect():
                    backoff = 0.5
                    self.resync()
                else:
                    self.sleep(backoff)
                    backoff = min(backoff * 2, 5.0)
                    continue
            timeout = 1.0
            if self._timers:
                timeout = max(0.0, min(timeout,
                                       self._timers[0][0] - time.monotonic()))
            try:
                ev = self.events.get(timeout=timeout)
            except queue.Empty:
                ev = None
            self._fire_timers()
            if ev is None:
                if self._conn is not None and not self._alive():
                    self._lost("connection dead")
                continue
            if ev.kind == "closed":
                self._lost("closed (reason %d)" % ev.event)
            else:
                self._handle(ev)

    def _alive(self) -> bool:
        try:
            return bool(self._conn.isAlive())
        except libvirt.libvirtError:
            return False

    def _lost(self, why: str) -> None:
        LOG.warning("libvirt %s: connection %s; reconnecting", self.uri, why)
        self._disconnect()

    def _handle(self, ev: Event) -> None:
        what = EVENT_NAMES.get(ev.event)
        LOG.debug("libvirt: domain %s %s (detail %d)", ev.name,
                  what or ev.event, ev.detail)
        self.names[ev.uuid] = ev.name
        if what in ("defined", "started"):
            self._timers = [t for t in self._timers if t[1] != ev.uuid]
            heapq.heapify(self._timers)
            self.sync_domain(ev.uuid)
        elif what == "undefined":
            if self._active(ev.uuid):
                # It runs on as a transient domain: its relays go when it
                # stops (after the grace), not under the running guest.
                LOG.info("libvirt: domain %s undefined while running; its "
                         "relays stay until it stops", ev.name)
            else:
                self.drop(ev.uuid, "undefined")
        elif what == "stopped":
            if not self._persistent(ev.uuid):
                heapq.heappush(self._timers, (time.monotonic() +
                                              self.stopped_grace, ev.uuid))

    def _persistent(self, uuid: str) -> bool:
        return self._domain_is(uuid, "isPersistent")

    def _active(self, uuid: str) -> bool:
        return self._domain_is(uuid, "isActive")

    def _domain_is(self, uuid: str, query: str) -> bool:
        """A yes/no of libvirt about a domain; no when it (or the
        connection) is gone."""
        try:
            return bool(getattr(self._conn.lookupByUUIDString(uuid),
                                query)())
        except (libvirt.libvirtError, AttributeError):
            return False

    def _fire_timers(self) -> None:
        now = time.monotonic()
        while self._timers and self._timers[0][0] <= now:
            _, uuid = heapq.heappop(self._timers)
            if not self._persistent(uuid) and not self._active(uuid):
                self.drop(uuid, "stopped for %.0f s" % self.stopped_grace)

    # ---- domains -> claims ------------------------------------------------
    def resync(self) -> None:
        try:
            doms = {d.UUIDString(): d.name()
                    for d in self._conn.listAllDomains(0)}
        except libvirt.libvirtError as exc:
            LOG.warning("libvirt: cannot list domains: %s",
                        exc.get_error_message())
            return
        for uuid in list(self.claims):
            if uuid not in doms:
                self.drop(uuid, "gone while we were not watching")
        for uuid, name in doms.items():
            self.names[uuid] = name
            self.sync_domain(uuid)
        self.resyncs += 1
        self.synced.set()
        LOG.info("libvirt: %d domain(s) seen, %d with relay sockets",
                 len(doms), len(self.claims))

    def sync_domain(self, uuid: str) -> None:
        try:
            xml = self._conn.lookupByUUIDString(uuid).XMLDesc(0)
        except libvirt.libvirtError as exc:
            LOG.debug("libvirt: domain %s: %s", uuid,
                      exc.get_error_message())
            return
        self.apply_xml(uuid, xml)

    def apply_xml(self, uuid: str, xml: str) -> tuple[list[str], list[str]]:
        """Claim what the domain's XML asks for, withdraw what it no longer
        does; returns (sockets served, errors)."""
        dom = self._parse(self.names.get(uuid, uuid), xml)
        if dom is None:
            return [], []
        with self._lock:
            return self._apply(uuid, dom)

    def _parse(self, name: str, xml: str) -> domxml.Domain | None:
        try:
            return domxml.parse(xml, self.policy, self.pattern,
                                domxml.host_cpu_node)
        except domxml.DomainXMLError as exc:
            LOG.error("libvirt: domain %s: %s; its interfaces are skipped",
                      name, exc)
            return None

    def _apply(self, uuid: str,
               dom: domxml.Domain) -> tuple[list[str], list[str]]:
        self.names[uuid] = name = dom.name
        if dom.problems and self._problems.get(uuid) != dom.problems:
            for problem in dom.problems:
                LOG.warning("libvirt: domain %s: %s; skipped", name, problem)
        self._problems[uuid] = dom.problems
        want = {i.path: self._spec(dom, i) for i in dom.interfaces}
        have = self.claims.get(uuid, {})
        source = self.sources.setdefault(uuid, "libvirt/%s" % dom.name)
        for path, spec in have.items():
            if want.get(path) != spec:
                self._remove(path, source)
        kept = {p: s for p, s in have.items() if want.get(p) == s}
        errors: list[str] = []
        for path, spec in want.items():
            if path in kept:
                continue
            other = next((self.names.get(u, u) for u, c in
                          self.claims.items() if u != uuid and path in c),
                         None)
            if other is not None:
                err = ("domain %s wants socket %s, which domain %s already "
                       "uses; refused" % (name, path, other))
                LOG.error("libvirt: %s", err)
                errors.append(err)
                continue
            refused = self._add(spec, source)
            if refused is None:
                kept[path] = spec
            else:
                errors.append(refused)
        if kept:
            self.claims[uuid] = kept
        else:
            self.claims.pop(uuid, None)
            self.sources.pop(uuid, None)
        return sorted(kept), errors

    # ---- the qemu hook (listener threads) ---------------------------------
    def hook(self, op: str, name: str, xml: str) -> dict[str, Any]:
        """A hook request: ``prepare`` claims the domain's sockets now, so
        they exist before its QEMU starts; ``release`` (the domain's QEMU
        is gone) counts as a stop.  Never calls libvirt."""
        try:
            dom = domxml.parse(xml, self.policy, self.pattern,
                               domxml.host_cpu_node)
        except domxml.DomainXMLError as exc:
            LOG.warning("libvirt hook: domain %s: %s; ignored", name, exc)
            return answer(warnings=["domain XML not understood: %s" % exc])
        if op == "release":
            if dom.uuid in self.claims:
                self.events.put(Event("lifecycle", dom.uuid, dom.name,
                                      libvirt.VIR_DOMAIN_EVENT_STOPPED, -1))
            return answer(warnings=dom.problems)
        if not dom.interfaces:
            return answer(warnings=dom.problems)
        with self._lock:
            self.names.setdefault(dom.uuid, dom.name)
            served, errors = self._apply(dom.uuid, dom)
        LOG.info("libvirt hook: domain %s prepared: %d socket(s) served%s",
                 dom.name, len(served),
                 ", %d refused" % len(errors) if errors else "")
        return answer(served, errors, dom.problems)

    def _devargs(self, iface: domxml.VhostInterface) -> str | None:
        """Whoever may define a domain must not choose what the root agent
        attaches: VFs are PCI addresses (through the device map if they
        are in it); DPDK devargs only with [control] allow_devargs.  The
        first name that is not allowed, or None."""
        if self.allow_devargs:
            return None
        names = iface.bond_members if iface.bond_members else (
            (iface.vf,) if iface.vf else ())
        return next((n for n in names if normalize_pci(n) is None), None)

    def _spec(self, dom: domxml.Domain,
              iface: domxml.VhostInterface) -> RelaySpec:
        bad = self._devargs(iface)
        if bad is not None:
            LOG.warning("libvirt: domain %s: interface %s: VF %r is not a "
                        "PCI address (DPDK devargs in domain metadata need "
                        "[control] allow_devargs); the socket is served "
                        "without a VF", dom.name, iface.mac, bad)
            iface = dataclasses.replace(iface, vf="", bond_members=(),
                                        bond_mode=None)
        vf = resolve_vf(iface.vf, self.device_map) if iface.vf else ""
        members = tuple(resolve_vf(m, self.device_map)
                        for m in iface.bond_members)
        spec = self.flags.spec(
            iface.relay_id if iface.relay_id is not None else 0, iface.path,
            vf, vf_label=iface.vf if vf != iface.vf else "",
            bond_members=members, bond_mode=iface.bond_mode,
            numa_hint=dom.numa_node)
        if iface.port_id:
            # Nova's domain: the relay serves this Neutron port
            spec = dataclasses.replace(
                spec, port_id=iface.port_id,
                mac=iface.mac if not iface.mac.startswith("#") else "",
                instance_uuid=dom.uuid if domxml.is_uuid(dom.uuid) else "")
        # QEMU's side decides ours, whatever the agent's default.
        return dataclasses.replace(spec, client=iface.relay_is_client)

    def _add(self, spec: RelaySpec, source: str) -> str | None:
        """None when the socket is served, else why not."""
        try:
            state = service.result(self.manager.submit(manager.AddRelay(
                spec, source, conditional=True,
                allocate_id=self.pattern is None or
                not self.policy.in_main_directory(spec.vhost_path))),
                "libvirt: %s: socket %s" % (source, spec.vhost_path))
        except Exception as exc:
            err = "%s: socket %s not served: %s" % (source, spec.vhost_path,
                                                    exc)
            LOG.error("libvirt: %s", err)
            return err
        LOG.info("libvirt: %s: relay %d %s %s%s", source, state.relay_id,
                 "connects to" if spec.client else "serves", spec.vhost_path,
                 " (VF %s)" % (spec.vf_label or spec.vf) if spec.vf else "")
        return None

    def _remove(self, path: str, source: str) -> None:
        try:
            service.result(self.manager.submit(manager.RemoveRelay(
                vhost_path=path, source=source, conditional=True)),
                "libvirt: %s: release socket %s" % (source, path))
        except Exception as exc:
            LOG.error("libvirt: %s: socket %s not released: %s", source,
                      path, exc)

    def drop(self, uuid: str, why: str) -> None:
        with self._lock:
            self._drop(uuid, why)

    def _drop(self, uuid: str, why: str) -> None:
        claims = self.claims.pop(uuid, {})
        source = self.sources.pop(uuid, "libvirt/%s" % uuid)
        name = self.names.get(uuid, uuid)
        for path in claims:
            self._remove(path, source)
        if claims:
            LOG.info("libvirt: domain %s %s: %d socket claim(s) withdrawn",
                     name, why, len(claims))
