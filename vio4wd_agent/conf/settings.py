# SPDX-License-Identifier: Apache-2.0
"""Validated settings of an agent, built once from the option values.

Every error names where the value came from: the legacy variable when the
legacy file set it, else ``[group] option``.
"""
from __future__ import annotations

import dataclasses
import importlib.metadata
import os
import re
import uuid
from typing import Any, Callable, TypeVar

from oslo_config import cfg

from vio4wd_agent.conf import parsing
from vio4wd_agent.exception import ConfigError
from vio4wd_agent.host import vfio
from vio4wd_agent.relay import eal
from vio4wd_agent.relay.model import RelaySpec
from vio4wd_agent.vhostuser import sockets

T = TypeVar("T")

_ONLINE = "/sys/devices/system/cpu/online"


def online_cpus() -> list[int]:
    try:
        with open(_ONLINE, encoding="utf-8") as f:
            return parsing.parse_cpu_list(f.read())
    except (OSError, ValueError):
        import os
        return list(range(os.cpu_count() or 1))


@dataclasses.dataclass(frozen=True)
class VhostFlags:
    """What every relay of this agent gets unless a request says more."""

    client: bool
    jumbo: bool
    mrgbuf: bool
    tso: bool
    link_follows_vf: bool
    max_queues: int
    vf_queues: int

    def spec(self, relay_id: int, vhost_path: str, vf: str,
             **extra: object) -> RelaySpec:
        return RelaySpec(relay_id=relay_id, vhost_path=vhost_path, vf=vf,
                         client=self.client, jumbo=self.jumbo,
                         mrgbuf=self.mrgbuf, tso=self.tso,
                         link_follows_vf=self.link_follows_vf,
                         max_queues=self.max_queues,
                         vf_queues=self.vf_queues,
                         **extra)  # type: ignore[arg-type]


@dataclasses.dataclass(frozen=True)
class CoreSchedSettings:
    enabled: bool
    poll_interval: float
    sensitivity: float
    cross_numa: bool
    log_level: int | None


@dataclasses.dataclass(frozen=True)
class ControlSettings:
    port_control: str                 # zmq, ipc, ovsdb, none
    port_control_ep: str
    stats_ep: str
    core_sched_ep: str
    config_ep: str
    endpoint_gid: int | None
    ipc_dir: str
    dynamic_sockets: bool
    metrics: tuple[str, int] | None   # (host, port), None when off
    ovsdb: str                        # OVSDB remote (port_control = ovsdb)
    libvirt_uri: str | None           # None: no libvirt watcher
    stopped_grace: float
    hook_socket: str                  # "" when no hook requests are taken
    # OVSDB rows and domain metadata may name VFs by DPDK devargs
    allow_devargs: bool = False


@dataclasses.dataclass(frozen=True)
class NeutronSettings:
    """The agent on Neutron's bus (only when a transport_url is set)."""

    host: str
    report_interval: float
    status_interval: float
    rpc_timeout: float
    physical_networks: tuple[str, ...]
    vhostuser_mode: str               # QEMU's side, as Neutron names it


@dataclasses.dataclass(frozen=True)
class Settings:
    main_lcore: int
    worker_cpus: list[int]
    memory: eal.MemoryPlan
    eal_args: list[str]
    sockets: sockets.SocketPolicy
    flags: VhostFlags
    static_relays: list[RelaySpec]
    pins: dict[int, parsing.CpuPin]
    device_map: dict[str, str]
    pid_file: str | None
    state_dir: str | None
    control: ControlSettings
    core_sched: CoreSchedSettings
    bind_vfio_pci: tuple[str, ...]
    neutron: NeutronSettings | None = None


class _Namer:
    def __init__(self, origins: dict[tuple[str, str], str]) -> None:
        self.origins = origins

    def __call__(self, group: str, opt: str) -> str:
        return self.origins.get((group, opt), "[%s] %s" % (group, opt))

    def parse(self, group: str, opt: str, value: str,
              parse: Callable[[str], T]) -> T:
        try:
            return parse(value)
        except ValueError as exc:
            raise ConfigError(name=self(group, opt), value=value,
                              reason=str(exc)) from None


def resolve_vf(vf: str, device_map: dict[str, str]) -> str:
    """PCI address -> its device-map devargs if mapped, else itself."""
    pci = parsing.normalize_pci(vf)
    if pci is not None:
        return device_map.get(pci, pci)
    return vf


def _cpus(conf: cfg.ConfigOpts, name: _Namer) -> tuple[int, list[int]]:
    online = online_cpus()
    main = conf.dataplane.main_lcore
    if main not in online:
        raise ConfigError(name=name("dataplane", "main_lcore"), value=main,
                          reason="CPU is not online (online: %s)"
                          % parsing.format_cpu_list(online))
    text = conf.dataplane.worker_cpus
    if text is None:
        workers = [c for c in online if c != main] or [main]
        if workers == [main]:
            raise ConfigError(name=name("dataplane", "worker_cpus"),
                              value="", reason="only one CPU is online; a "
                              "worker needs a CPU besides the main lcore")
        return main, workers
    workers = name.parse("dataplane", "worker_cpus", text,
                         parsing.parse_cpu_list)
    offline = [c for c in workers if c not in online]
    if offline:
        raise ConfigError(name=name("dataplane", "worker_cpus"), value=text,
                          reason="CPU %s not online (online: %s)"
                          % (parsing.format_cpu_list(offline),
                             parsing.format_cpu_list(online)))
    if main in workers:
        raise ConfigError(name=name("dataplane", "worker_cpus"), value=text,
                          reason="includes the main lcore %d (%s); use other "
                          "CPUs for workers" % (main,
                                                name("dataplane",
                                                     "main_lcore")))
    return main, workers


def _entries(conf: cfg.ConfigOpts, name: _Namer, opt: str,
             parse: Callable[[str], Any]) -> list[Any]:
    return [name.parse("relay", opt, v, parse)
            for v in getattr(conf.relay, opt)]


def check_values(conf: cfg.ConfigOpts) -> None:
    """Every option of ours reads as its type allows, or a ConfigError
    names it (oslo.config checks only when a value is first read)."""
    from vio4wd_agent import conf as vconf
    for group, opts in vconf.list_opts():
        for opt in opts:
            try:
                getattr(conf if group.name == "DEFAULT" else
                        getattr(conf, group.name), opt.dest)
            except (cfg.Error, ValueError) as exc:
                reason = str(exc)
                if " is not valid: " in reason:
                    reason = reason.split(" is not valid: ", 1)[1]
                where = "[%s] %s" % (group.name, opt.name)
                try:
                    loc = conf.get_location(opt.dest, group.name)
                    if loc is not None and loc.detail:
                        where += " (in %s)" % loc.detail
                except (cfg.Error, ValueError):
                    pass
                raise ConfigError("%s: %s" % (where, reason),
                                  name=where, value=None,
                                  reason=reason) from None


def build(conf: cfg.ConfigOpts,
          origins: dict[tuple[str, str], str] | None = None,
          memory: eal.MemoryPlan | None = None) -> Settings:
    """``memory``: the running data plane's plan, on a reload (the free
    hugepages it would be planned from are partly its own by then)."""
    check_values(conf)
    name = _Namer(origins or {})
    main, workers = _cpus(conf, name)

    vh = conf.vhost
    pattern = name.parse("vhost", "socket_pattern", vh.socket_pattern,
                         parsing.check_socket_pattern)
    socket_dir = name.parse("vhost", "socket_dir", vh.socket_dir,
                            parsing.check_socket_dir)
    extra_dirs = tuple(name.parse("vhost", "extra_socket_dirs", d,
                                  parsing.check_socket_dir)
                       for d in vh.extra_socket_dirs)
    policy = sockets.SocketPolicy(
        directory=socket_dir, pattern=pattern,
        uid=sockets.resolve_user(vh.socket_owner,
                                 name("vhost", "socket_owner")),
        gid=sockets.resolve_group(vh.socket_group,
                                  name("vhost", "socket_group")),
        mode=sockets.parse_mode(vh.socket_mode, name("vhost", "socket_mode")),
        extra=extra_dirs)
    flags = VhostFlags(client=vh.client_mode, jumbo=vh.jumbo,
                       mrgbuf=vh.mrgbuf, tso=vh.tso,
                       link_follows_vf=vh.link_follows_vf,
                       max_queues=vh.max_queues, vf_queues=vh.vf_queues)

    device_map = dict(_entries(conf, name, "device_map",
                               parsing.parse_device_map_entry))
    pins: dict[int, parsing.CpuPin] = {}
    for pin in _entries(conf, name, "cpu_pins", parsing.parse_cpu_pin):
        bad = [c for c in (pin.vf_to_vm, pin.vm_to_vf) if c not in workers]
        if bad:
            raise ConfigError(name=name("relay", "cpu_pins"),
                              value="%d:%d,%d" % (pin.relay_id, pin.vf_to_vm,
                                                  pin.vm_to_vf),
                              reason="CPU %d is not a worker CPU (workers: "
                              "%s)" % (bad[0],
                                       parsing.format_cpu_list(workers)))
        pins[pin.relay_id] = pin

    static: list[RelaySpec] = []
    seen: dict[int, str] = {}
    for vf, relay_id in _entries(conf, name, "static_vfs",
                                 parsing.parse_static_vf):
        if relay_id in seen:
            raise ConfigError(name=name("relay", "static_vfs"),
                              value="%s=%d" % (vf, relay_id),
                              reason="relay id %d is already given to %s"
                              % (relay_id, seen[relay_id]))
        seen[relay_id] = vf
        pin = pins.get(relay_id)
        static.append(flags.spec(
            relay_id, policy.path_for(relay_id), resolve_vf(vf, device_map),
            cpus=(pin.vf_to_vm, pin.vm_to_vf) if pin else (None, None)))

    dp = conf.dataplane
    relays = max(dp.expected_relays, len(static))
    if memory is None:
        memory = eal.plan_memory(
            dp.hugepage_dir, name("dataplane", "hugepage_dir"),
            needed_mb=eal.memory_needed_mb(relays, flags.jumbo,
                                           flags.vf_queues,
                                           len(workers) + 1),
            minimum_mb=eal.memory_needed_mb(max(1, len(static)),
                                            flags.jumbo, flags.vf_queues,
                                            len(workers) + 1),
            memory_mb=dp.memory_mb)
    args = eal.build_eal_args(main_lcore=main, worker_cpus=workers,
                              file_prefix=dp.file_prefix, memory=memory,
                              log_level=dp.log_level,
                              extra=dp.extra_eal_args,
                              vfio_vf_token=_vf_token(dp.vfio_vf_token,
                                                      name))
    return Settings(main_lcore=main, worker_cpus=workers, memory=memory,
                    eal_args=args, sockets=policy, flags=flags,
                    static_relays=static, pins=pins, device_map=device_map,
                    pid_file=conf.agent.pid_file or None,
                    state_dir=conf.agent.state_dir or None,
                    control=_control(conf, name),
                    core_sched=CoreSchedSettings(
                        enabled=conf.core_scheduler.enabled,
                        poll_interval=conf.core_scheduler.poll_interval,
                        sensitivity=conf.core_scheduler.sensitivity,
                        cross_numa=conf.core_scheduler.cross_numa,
                        log_level=conf.core_scheduler.log_level),
                    bind_vfio_pci=tuple(
                        name.parse("dataplane", "bind_vfio_pci", entry,
                                   vfio.check_entry)
                        for entry in dp.bind_vfio_pci if entry.strip()),
                    neutron=_neutron(conf))


def _neutron(conf: cfg.ConfigOpts) -> NeutronSettings | None:
    """The bus settings, or None without a transport_url (standalone)."""
    import oslo_messaging
    url = conf.transport_url
    # oslo.messaging's own default ("rabbit://", a broker on localhost)
    # is no configuration: without one the agent runs standalone.
    where = conf.get_location("transport_url")
    if not url or where is None or \
            where.location == cfg.Locations.opt_default:
        return None
    try:
        parsed = oslo_messaging.TransportURL.parse(conf, url)
    except oslo_messaging.InvalidTransportURL as exc:
        raise ConfigError(name="[DEFAULT] transport_url", value="(secret)",
                          reason=str(exc).replace(url, "...")) from None
    drivers = {ep.name for ep in
               importlib.metadata.entry_points(group="oslo.messaging.drivers")}
    if parsed.transport not in drivers:
        raise ConfigError(name="[DEFAULT] transport_url", value="(secret)",
                          reason="no oslo.messaging driver %r (known: %s)" % (
                              parsed.transport, ", ".join(sorted(drivers))))
    n = conf.neutron
    physnets = tuple(p.strip() for p in n.physical_networks if p.strip())
    if not physnets:
        raise ConfigError(name="[neutron] physical_networks", value="",
                          reason="names no physical network ('*' for any)")
    host = conf.host
    if not host or not re.match(r"^[A-Za-z0-9_.-]+$", host):
        raise ConfigError(name="[DEFAULT] host", value=host,
                          reason="not a host name")
    return NeutronSettings(host=host, report_interval=n.report_interval,
                           status_interval=n.status_interval,
                           rpc_timeout=n.rpc_timeout,
                           physical_networks=physnets,
                           vhostuser_mode=n.vhostuser_mode)


def _vf_token(value: str | None, name: _Namer) -> str | None:
    if not value:
        return None
    try:
        return str(uuid.UUID(value.strip()))
    except ValueError:
        raise ConfigError(name=name("dataplane", "vfio_vf_token"),
                          value=value, reason="not a UUID") from None


def _control(conf: cfg.ConfigOpts, name: _Namer) -> ControlSettings:
    c = conf.control
    for opt in ("zmq_port_control_ep", "zmq_stats_ep", "zmq_core_sched_ep",
                "zmq_config_ep"):
        value = getattr(c, opt) or ""
        if value and not value.startswith(("ipc://", "tcp://", "inproc://")):
            raise ConfigError(name=name("control", opt), value=value,
                              reason="not a ZeroMQ endpoint (ipc://PATH or "
                                     "tcp://HOST:PORT)")
    if c.port_control == "zmq" and not c.zmq_port_control_ep:
        raise ConfigError(name=name("control", "zmq_port_control_ep"),
                          value="", reason="port control by ZeroMQ needs "
                                           "an endpoint")
    gid = sockets.resolve_group(c.endpoint_group,
                                name("control", "endpoint_group")) \
        if c.endpoint_group else None
    hook = conf.libvirt.hook_socket or ""
    if hook and not os.path.isabs(hook):
        raise ConfigError(name=name("libvirt", "hook_socket"), value=hook,
                          reason="must be an absolute path")
    metrics = (conf.metrics.host, conf.metrics.port) \
        if conf.metrics.enabled else None
    return ControlSettings(
        port_control=c.port_control, port_control_ep=c.zmq_port_control_ep,
        stats_ep=c.zmq_stats_ep or "", core_sched_ep=c.zmq_core_sched_ep or "",
        config_ep=c.zmq_config_ep or "", endpoint_gid=gid, ipc_dir=c.ipc_dir,
        dynamic_sockets=conf.vhost.dynamic_sockets, metrics=metrics,
        ovsdb=conf.ovsdb.connection,
        libvirt_uri=conf.libvirt.uri if conf.libvirt.enabled else None,
        stopped_grace=conf.libvirt.stopped_grace,
        hook_socket=hook, allow_devargs=c.allow_devargs)
