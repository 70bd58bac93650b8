# SPDX-License-Identifier: Apache-2.0
"""The agent: data plane, manager, relay sources, servers wired together."""
from __future__ import annotations

import dataclasses
import logging
import os
import time
from typing import Any

import zmq

from vio4wd_agent import exception, service, trusted
from vio4wd_agent.conf.settings import Settings
from vio4wd_agent.control.core_sched import CoreSchedHandler
from vio4wd_agent.control.port_control import PortControl, PortControlHandler
from vio4wd_agent.control.server import ZmqServer
from vio4wd_agent.control.stats import (ConfigHandler, RateSampler,
                                        StatsHandler, TimerQueue)
from vio4wd_agent.journal import Journal
from vio4wd_agent.manager import RelayManager, RemoveRelay, SetPins
from vio4wd_agent.metrics import BalancerCollector, MetricsServer
from vio4wd_agent.host import vfio
from vio4wd_agent.relay.engine import RelayEngine
from vio4wd_agent.relay.model import RelaySpec
from vio4wd_agent.sources.ipcdir import IpcDirectory

LOG = logging.getLogger(__name__)

# A part of the agent that takes longer than this to stop is named in the
# log (a stop that hangs somewhere shows where).
SLOW_STOP = 2.0


class Agent:
    def __init__(self, settings: Settings,
                 engine: RelayEngine | None = None,
                 conf: Any = None) -> None:
        """``conf``: the oslo.config options the settings were built from
        (oslo.messaging reads its own there); needed only on Neutron's
        bus."""
        self.settings = settings
        self.conf = conf
        self.engine = engine or RelayEngine()
        journal = Journal(os.path.join(settings.state_dir, "journal")) \
            if settings.state_dir else None
        self.manager = RelayManager(self.engine, settings.sockets,
                                    settings.pins, journal)
        self.timers = TimerQueue()
        self.metrics: MetricsServer | None = None
        self.balancer: Any = None
        self.neutron: Any = None
        self._services: list[Any] = []
        self._zmq: zmq.Context | None = None

    def start(self) -> None:
        s = self.settings
        if s.memory.hugepage_dir is None:
            LOG.warning("data plane without hugepages (--no-huge -m %d): %s; "
                        "real PCI VFs need an IOMMU in this mode",
                        s.memory.memory_mb, s.memory.reason)
        else:
            LOG.info("data plane on hugepages at %s (%s)",
                     s.memory.hugepage_dir, s.memory.reason)
        s.sockets.ensure_directories()
        if s.state_dir:
            # The journal is restored as root's own word: nobody else may
            # have put it there.
            trusted.ensure_dir(s.state_dir, mode=0o700,
                               what="state directory")
        if s.bind_vfio_pci:
            vfio.bind_all(list(s.bind_vfio_pci))
        self.engine.start(s.eal_args)
        self.manager.start()
        self.manager.load_pins()
        self.add_static_relays()
        self.manager.restore()
        self.timers.start()
        self._start_services()

    def _start_services(self) -> None:
        s, c = self.settings, self.settings.control
        control = PortControl(self.manager, s.flags, s.sockets, s.device_map,
                              c.dynamic_sockets, source=c.port_control)
        self._zmq = zmq.Context()
        sampler = RateSampler(self.engine, self.timers)
        sampler.start()
        handlers: list[tuple[str, Any]] = [
            (c.stats_ep, StatsHandler(self.engine, self.timers, sampler,
                                      self.manager.specs)),
            (c.core_sched_ep, CoreSchedHandler(self.manager, self.engine)),
            (c.config_ep, ConfigHandler(self.engine)),
        ]
        if c.port_control == "zmq":
            handlers.insert(0, (c.port_control_ep,
                                PortControlHandler(control)))
        for endpoint, handler in handlers:
            if endpoint:
                server = ZmqServer(self._zmq, endpoint, handler,
                                   ipc_gid=c.endpoint_gid)
                server.start()
                self._services.append(server)
        if c.port_control == "ipc":
            ipc = IpcDirectory(c.ipc_dir, control, c.endpoint_gid)
            ipc.start()
            self._services.append(ipc)
        elif c.port_control == "ovsdb":
            from vio4wd_agent.sources.ovsdb import OvsdbWatcher
            watcher = OvsdbWatcher(c.ovsdb, self.manager, s.flags,
                                   s.sockets, s.device_map,
                                   allow_devargs=c.allow_devargs)
            watcher.start()
            self._services.append(watcher)
        if c.libvirt_uri is not None:
            self._start_libvirt()
        if s.core_sched.enabled:
            self._start_core_scheduler()
        if c.metrics is not None:
            self.metrics = MetricsServer(self.engine, *c.metrics)
            if self.balancer is not None:
                self.metrics.add(BalancerCollector(self.balancer))
            try:
                self.metrics.start()
            except OSError as exc:
                LOG.error("metrics endpoint %s:%d not started: %s",
                          c.metrics[0], c.metrics[1], exc)
                self.metrics = None
        if s.neutron is not None:
            self._start_neutron(control)

    def _start_neutron(self, control: PortControl) -> None:
        if self.conf is None:
            LOG.error("Neutron presence not started: no configuration "
                      "object for oslo.messaging")
            return
        from vio4wd_agent.neutron.presence import NeutronPresence
        presence = NeutronPresence(self.conf, self.settings, self.manager,
                                   self.engine, control)
        presence.start()
        self._services.append(presence)
        self.neutron = presence

    def _start_core_scheduler(self) -> None:
        from vio4wd_agent.scheduler.daemon import CoreBalancer
        from vio4wd_agent.virt.domain import host_cpu_node
        cs = self.settings.core_sched
        balancer = CoreBalancer(
            self.manager, self.engine, poll_interval=cs.poll_interval,
            sensitivity=cs.sensitivity, cross_numa=cs.cross_numa,
            cpu_node=host_cpu_node, log_level=cs.log_level)
        balancer.start()
        self._services.append(balancer)
        self.balancer = balancer

    def _start_libvirt(self) -> None:
        s, c = self.settings, self.settings.control
        assert c.libvirt_uri is not None
        try:
            from vio4wd_agent.virt.host import LibvirtWatcher
        except ImportError as exc:
            LOG.error("libvirt watcher not started: %s (install "
                      "libvirt-python, or set [libvirt] enabled = false)",
                      exc)
            return
        watcher = LibvirtWatcher(c.libvirt_uri, self.manager, s.flags,
                                 s.sockets, s.device_map, c.dynamic_sockets,
                                 c.stopped_grace, c.hook_socket,
                                 allow_devargs=c.allow_devargs)
        watcher.start()
        self._services.append(watcher)

    def add_static_relays(self) -> int:
        """Add the configured static VFs; a failing one does not stop the
        others.  Returns how many failed."""
        failed = 0
        futures = [(spec, self.manager.submit_add(spec, "static"))
                   for spec in self.settings.static_relays]
        for spec, future in futures:
            try:
                service.result(future, "static relay %d" % spec.relay_id)
            except exception.Vio4wdException as exc:
                failed += 1
                LOG.error("static relay %d (VF %s) not added: %s",
                          spec.relay_id, spec.vf, exc)
        return failed

    # What a reload applies; every other setting needs a restart.
    RELOADABLE = ("static_relays", "pins", "bind_vfio_pci")

    def reload(self, new: Settings) -> None:
        """Apply a re-read configuration: static relays reconciled with
        what the manager holds for "static" (so one that failed before is
        tried again), configured pins; the rest is reported."""
        old = self.settings
        later = [f.name for f in dataclasses.fields(Settings)
                 if f.name not in self.RELOADABLE and
                 getattr(old, f.name) != getattr(new, f.name)]
        if new.sockets != old.sockets:
            # Socket settings take effect at the next start: the static
            # relays stay on the running sockets (a directory that cannot
            # be used now never costs a relay).
            new = dataclasses.replace(new, static_relays=[
                dataclasses.replace(spec,
                                    vhost_path=old.sockets.path_for(
                                        spec.relay_id))
                for spec in new.static_relays])
        if new.bind_vfio_pci:           # new devices, or ones fixed since
            vfio.bind_all(list(new.bind_vfio_pci))
        want = {spec.relay_id: spec for spec in new.static_relays}
        have = self.manager.claims("static")
        # A static relay whose pin alone changed is moved (SetPins below),
        # not re-made.
        changed = sorted(i for i in set(want) | set(have)
                         if i not in want or i not in have or
                         _unpinned(want[i]) != _unpinned(have[i]))
        removed = added = failed = 0
        for relay_id in (i for i in changed if i in have):
            try:
                service.result(self.manager.submit(RemoveRelay(
                    relay_id, source="static", conditional=True)),
                    "reload: remove static relay %d" % relay_id)
                removed += 1
            except exception.Vio4wdException as exc:
                LOG.error("reload: static relay %d not removed: %s",
                          relay_id, exc)
        for relay_id in (i for i in changed if i in want):
            try:
                service.result(self.manager.submit_add(want[relay_id],
                                                       "static"),
                               "reload: add static relay %d" % relay_id)
                added += 1
            except exception.Vio4wdException as exc:
                failed += 1
                LOG.error("reload: static relay %d (VF %s) not added: %s",
                          relay_id, want[relay_id].vf, exc)
        try:
            moved = service.result(self.manager.submit(SetPins(new.pins)),
                                   "reload: new pins")
        except exception.Vio4wdException:
            moved = []
        self.settings = dataclasses.replace(
            old, static_relays=new.static_relays, pins=new.pins,
            bind_vfio_pci=new.bind_vfio_pci)
        LOG.info("reload: static relays %d added, %d removed, %d failed; "
                 "%d relay(s) moved to new pins", added, removed, failed,
                 len(moved))
        if later:
            LOG.warning("reload: %s changed; takes effect when the agent "
                        "restarts", ", ".join(later))

    def stop(self) -> None:
        """Stop whatever was started (also after a start that failed part
        way); one part failing to stop does not keep the others up."""
        was_running = self.engine.running
        parts = [(getattr(service, "name", type(service).__name__),
                  service.stop) for service in reversed(self._services)]
        if self.metrics is not None:
            parts.append(("metrics", self.metrics.stop))
        parts.append(("stats timers", self.timers.stop))
        if self._zmq is not None:
            parts.append(("zmq", self._zmq.term))
        parts += [("relay manager", self.manager.stop),
                  ("data plane", self.engine.shutdown)]
        for what, stop in parts:
            began = time.monotonic()
            try:
                stop()
            except Exception:
                LOG.exception("stopping %s failed", what)
            took = time.monotonic() - began
            if took > SLOW_STOP:
                LOG.warning("stopping %s took %.1f s", what, took)
        self._services = []
        self._zmq = None
        if was_running:
            LOG.info("data plane stopped")


def _unpinned(spec: RelaySpec) -> RelaySpec:
    return dataclasses.replace(spec, cpus=(None, None))
