# SPDX-License-Identifier: Apache-2.0
"""Reader for virtio-forwarder's /etc/default/virtioforwarder.

The file is a shell fragment of ``NAME=value`` lines; values may be quoted
or bash arrays ``(a b c)``.  Each variable this agent understands becomes an
oslo.config override; errors name the variable and its value.  Variables of
features this version does not have are accepted and reported.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import re
import shlex
from typing import Any, Callable

from oslo_config import cfg

from vio4wd_agent.conf import parsing
from vio4wd_agent.relay import vfio
from vio4wd_agent.exception import ConfigError

LOG = logging.getLogger(__name__)

_LINE_RE = re.compile(r"^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$")

Value = str | list[str]


@dataclasses.dataclass
class LegacyConfig:
    path: str
    variables: dict[str, Value]
    # (group, option) -> value, and -> the variable it came from
    overrides: dict[tuple[str, str], Any] = dataclasses.field(
        default_factory=dict)
    origins: dict[tuple[str, str], str] = dataclasses.field(
        default_factory=dict)
    log_level: int | None = None
    not_supported: list[str] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)
    ignored: list[str] = dataclasses.field(default_factory=list)
    unknown: list[str] = dataclasses.field(default_factory=list)


def _array_body(text: str) -> tuple[str, bool]:
    """The text of a bash array up to its closing ')', comments dropped.

    Returns (body, closed); a ')' inside quotes does not close the array.
    """
    body: list[str] = []
    quote = ""
    at_word_start = True
    i = 0
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == quote:
                quote = ""
            elif ch == "\\" and quote == '"' and i + 1 < len(text):
                body.append(ch)
                i += 1
                ch = text[i]
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and at_word_start:
            while i < len(text) and text[i] != "\n":
                i += 1
            continue
        elif ch == ")":
            return "".join(body), True
        body.append(ch)
        at_word_start = ch.isspace()
        i += 1
    return "".join(body), False


def parse_text(text: str, path: str = "<legacy config>") -> dict[str, Value]:
    """NAME -> string or list of strings, in file order (later wins)."""
    variables: dict[str, Value] = {}
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        lineno, line = i + 1, lines[i].strip()
        i += 1
        while line.endswith("\\") and i < len(lines):
            line = line[:-1] + lines[i].strip()
            i += 1
        if not line or line.startswith("#"):
            continue
        m = _LINE_RE.match(line)
        if m is None:
            raise ConfigError(name="%s line %d" % (path, lineno), value=line,
                              reason="expected NAME=value")
        name, raw = m.group(1), m.group(2).strip()
        if raw.startswith("("):
            pending = raw[1:]
            body, closed = _array_body(pending)
            while not closed and i < len(lines):
                pending += "\n" + lines[i]
                i += 1
                body, closed = _array_body(pending)
            if not closed:
                raise ConfigError(name=name, value=raw,
                                  reason="unterminated bash array")
            try:
                variables[name] = shlex.split(body)
            except ValueError as exc:
                raise ConfigError(name=name, value=raw,
                                  reason=str(exc)) from None
            continue
        try:
            words = shlex.split(raw, comments=True)
        except ValueError as exc:
            raise ConfigError(name=name, value=raw, reason=str(exc)) from None
        if len(words) > 1:
            raise ConfigError(name=name, value=raw,
                              reason="a value with spaces must be quoted")
        variables[name] = words[0] if words else ""
    return variables


# ---- variable handlers ---------------------------------------------------

def _scalar(name: str, value: Value) -> str:
    if isinstance(value, list):
        if len(value) == 1:
            return value[0]
        raise ConfigError(name=name, value=value,
                          reason="a bash array is not allowed here")
    return value


def _items(value: Value) -> list[str]:
    if isinstance(value, list):
        return value
    return value.split()


def _flag(name: str, value: Value) -> bool:
    text = _scalar(name, value).strip()
    try:
        return parsing.parse_bool(text) if text else False
    except ValueError:
        # virtio-forwarder enables the feature for any non-empty value.
        return True


def _number(name: str, value: Value, lo: float, hi: float | None = None,
            kind: Callable[[str], Any] = float) -> Any:
    text = _scalar(name, value)
    try:
        number = kind(text.strip())
    except ValueError:
        raise ConfigError(name=name, value=text,
                          reason="not a number") from None
    if not lo <= number <= (hi if hi is not None else float("inf")):
        raise ConfigError(name=name, value=text,
                          reason="must be between %g and %s"
                          % (lo, "%g" % hi if hi is not None else "infinity"))
    return number


def _int(name: str, value: Value, lo: int, hi: int | None = None) -> int:
    return int(_number(name, value, lo, hi, int))


def _each(name: str, value: Value, parse: Callable[[str], Any]) -> list[str]:
    entries = _items(value)
    for entry in entries:
        try:
            parse(entry)
        except ValueError as exc:
            raise ConfigError(name=name, value=entry, reason=str(exc)) from None
    return entries


def _checked(name: str, value: Value, parse: Callable[[str], Any]) -> str:
    text = _scalar(name, value).strip()
    try:
        parse(text)
    except ValueError as exc:
        raise ConfigError(name=name, value=text, reason=str(exc)) from None
    return text


_Handler = Callable[[str, Value], Any]

# variable -> (group, option, handler)
_MAP: dict[str, tuple[str, str, _Handler]] = {
    "VIRTIOFWD_CPU_MASK": ("dataplane", "worker_cpus", lambda n, v: _checked(
        n, v, parsing.parse_cpu_list)),
    "VIRTIOFWD_MASTER_LCORE": ("dataplane", "main_lcore",
                               lambda n, v: _int(n, v, 0)),
    "VIRTIOFWD_LOG_LEVEL": ("dataplane", "log_level",
                            lambda n, v: _int(n, v, 0, 7)),
    "VIRTIOFWD_HUGETLBFS_MOUNT_POINT": ("dataplane", "hugepage_dir",
                                        lambda n, v: _scalar(n, v)),
    "VIRTIOFWD_SOCKET_DIR": ("vhost", "socket_dir",
                             lambda n, v: _scalar(n, v)),
    "VIRTIOFWD_SOCKET_FNAME_PATTERN": ("vhost", "socket_pattern",
                                       lambda n, v: _checked(
                                           n, v, parsing.check_socket_pattern)),
    "VIRTIOFWD_SOCKET_OWNER": ("vhost", "socket_owner",
                               lambda n, v: _scalar(n, v)),
    "VIRTIOFWD_SOCKET_GROUP": ("vhost", "socket_group",
                               lambda n, v: _scalar(n, v)),
    "VIRTIOFWD_VHOST_CLIENT": ("vhost", "client_mode", _flag),
    "VIRTIOFWD_JUMBO": ("vhost", "jumbo", _flag),
    "VIRTIOFWD_MRGBUF": ("vhost", "mrgbuf", _flag),
    "VIRTIOFWD_TSO": ("vhost", "tso", _flag),
    "VIRTIOFWD_STATIC_VFS": ("relay", "static_vfs", lambda n, v: _each(
        n, v, parsing.parse_static_vf)),
    "VIRTIOFWD_CPU_PINS": ("relay", "cpu_pins", lambda n, v: _each(
        n, v, parsing.parse_cpu_pin)),
    "VIO4WD_DEVICE_MAP": ("relay", "device_map", lambda n, v: _each(
        n, v, parsing.parse_device_map_entry)),
    "VIRTIOFWD_PID_DIR": ("agent", "pid_file", lambda n, v: os.path.join(
        _scalar(n, v), "virtioforwarder.pid")),
    "VIRTIOFWD_ZMQ_PORT_CONTROL_EP": ("control", "zmq_port_control_ep",
                                      lambda n, v: _endpoint(n, v)),
    "VIRTIOFWD_ZMQ_STATS_EP": ("control", "zmq_stats_ep",
                               lambda n, v: _endpoint(n, v)),
    "VIRTIOFWD_ZMQ_CORE_SCHED_EP": ("control", "zmq_core_sched_ep",
                                    lambda n, v: _endpoint(n, v)),
    "VIRTIOFWD_ZMQ_CONFIG_EP": ("control", "zmq_config_ep",
                                lambda n, v: _endpoint(n, v)),
    "VIRTIOFWD_DYNAMIC_SOCKETS": ("vhost", "dynamic_sockets", _flag),
    "VIRTIOFWD_OVSDB_SOCK_PATH": ("ovsdb", "connection",
                                  lambda n, v: "unix:" + _scalar(n, v)),
    # a comma-separated list in virtio-forwarder; a bash array works too
    "VIRTIOFWD_BIND_VFIO_PCI": ("dataplane", "bind_vfio_pci",
                                lambda n, v: _each(n, [
                                    x for item in _items(v)
                                    for x in item.split(",") if x.strip()],
                                    vfio.check_entry)),
    # "0": virtio-forwarder's default token; else a UUID (checked later)
    "VIRTIOFWD_VFIO_VF_TOKEN": ("dataplane", "vfio_vf_token",
                                lambda n, v: DEFAULT_VF_TOKEN if _scalar(
                                    n, v).strip() == "0" else _scalar(n, v)),
    # virtio-forwarder: anything but "true" leaves the scheduler off
    "VIO4WD_CORE_SCHED_ENABLE": ("core_scheduler", "enabled",
                                 lambda n, v: _scalar(n, v).strip() == "true"),
    "VIO4WD_CORE_SCHED_SENSITIVITY": ("core_scheduler", "sensitivity",
                                      lambda n, v: _number(n, v, 1, 100)),
    "VIO4WD_CORE_SCHED_POLL_INTERVAL": ("core_scheduler", "poll_interval",
                                        lambda n, v: _number(n, v, 0.5,
                                                             3600)),
    "VIO4WD_CORE_SCHED_GLOBAL_NUMA_OPT": ("core_scheduler", "cross_numa",
                                          _flag),
    "VIO4WD_CORE_SCHED_LOG_LEVEL": ("core_scheduler", "log_level",
                                    lambda n, v: _int(n, v, 0, 7)),
}

# The VF token virtio-forwarder passes for VIRTIOFWD_VFIO_VF_TOKEN=0.
DEFAULT_VF_TOKEN = "14d63f20-8445-11ea-8900-1f9ce7d5650d"

# Flags virtio-forwarder treats as off when the variable is absent.
_FLAGS_OFF_WHEN_ABSENT = ("VIRTIOFWD_VHOST_CLIENT", "VIRTIOFWD_JUMBO",
                          "VIRTIOFWD_MRGBUF", "VIRTIOFWD_TSO",
                          "VIRTIOFWD_DYNAMIC_SOCKETS")

# Known variables of features this version does not implement yet.
NOT_YET_SUPPORTED = (
    "VIRTIOFWD_ZERO_COPY",
)
# Known variables that need nothing here, and why (logged when set).
NOT_NEEDED = {
    "VIRTIOFWD_CPU_NIC_SAME_NUMA": "the data plane takes hugepage memory "
    "per NUMA node on demand, only on the nodes relays use",
}
# Meaningful only to virtio-forwarder's own start script.
IGNORED = ("VIRTIOFWD_BINARY",)
# Decided together: which source of port changes (see _port_control).
PORT_CONTROL = ("VIRTIOFWD_IPC_PORT_CONTROL",)


def _endpoint(name: str, value: Value) -> str:
    text = _scalar(name, value).strip()
    if not any(text.startswith(p) for p in ("ipc://", "tcp://", "inproc://")):
        raise ConfigError(name=name, value=text,
                          reason="not a ZeroMQ endpoint (ipc://PATH or "
                                 "tcp://HOST:PORT)")
    return text


def _port_control(variables: dict[str, Value], legacy: "LegacyConfig"
                  ) -> None:
    """virtio-forwarder's precedence: ZeroMQ port control when its endpoint
    is set, else the IPC file when VIRTIOFWD_IPC_PORT_CONTROL is, else
    OVSDB.  An OVSDB socket given together with either is a conflict."""
    def given(name: str) -> bool:
        value = variables.get(name, "")
        return not _is_empty(value)

    zmq = given("VIRTIOFWD_ZMQ_PORT_CONTROL_EP")
    ipc = given("VIRTIOFWD_IPC_PORT_CONTROL") and _flag(
        "VIRTIOFWD_IPC_PORT_CONTROL", variables["VIRTIOFWD_IPC_PORT_CONTROL"])
    ovsdb = given("VIRTIOFWD_OVSDB_SOCK_PATH")
    if ovsdb and (zmq or ipc):
        other = "VIRTIOFWD_ZMQ_PORT_CONTROL_EP" if zmq \
            else "VIRTIOFWD_IPC_PORT_CONTROL"
        raise ConfigError(name="VIRTIOFWD_OVSDB_SOCK_PATH",
                          value=variables["VIRTIOFWD_OVSDB_SOCK_PATH"],
                          reason="port control by OVSDB excludes %s; the "
                                 "sources are mutually exclusive, set one"
                                 % other)
    key = ("control", "port_control")
    if zmq:
        legacy.overrides[key] = "zmq"
        legacy.origins[key] = "VIRTIOFWD_ZMQ_PORT_CONTROL_EP"
        if ipc:
            legacy.notes.append(
                "VIRTIOFWD_IPC_PORT_CONTROL is ignored: ZeroMQ port control "
                "(VIRTIOFWD_ZMQ_PORT_CONTROL_EP) takes precedence, as with "
                "virtio-forwarder")
    elif ipc:
        legacy.overrides[key] = "ipc"
        legacy.origins[key] = "VIRTIOFWD_IPC_PORT_CONTROL"
    elif ovsdb:
        legacy.overrides[key] = "ovsdb"
        legacy.origins[key] = "VIRTIOFWD_OVSDB_SOCK_PATH"


def _is_empty(value: Value) -> bool:
    return value == "" or value == []


def interpret(variables: dict[str, Value], path: str) -> LegacyConfig:
    legacy = LegacyConfig(path=path, variables=variables)
    for name in _FLAGS_OFF_WHEN_ABSENT:
        group, opt, _ = _MAP[name]
        legacy.overrides[(group, opt)] = False
        legacy.origins[(group, opt)] = name
    for name, value in variables.items():
        if name in _MAP:
            group, opt, handler = _MAP[name]
            legacy.origins[(group, opt)] = name
            if _is_empty(value) and name not in _FLAGS_OFF_WHEN_ABSENT:
                continue  # blank means "the default", as in the original
            legacy.overrides[(group, opt)] = handler(name, value)
            if name == "VIRTIOFWD_LOG_LEVEL":
                legacy.log_level = legacy.overrides[(group, opt)]
        elif name in NOT_YET_SUPPORTED:
            if not _is_empty(value):
                legacy.not_supported.append(name)
        elif name in IGNORED:
            legacy.ignored.append(name)
        elif name in NOT_NEEDED:
            if not _is_empty(value):
                legacy.notes.append("%s has no effect: %s"
                                    % (name, NOT_NEEDED[name]))
        elif name in PORT_CONTROL:
            pass
        else:
            legacy.unknown.append(name)
    _port_control(variables, legacy)
    return legacy


def read(path: str) -> LegacyConfig:
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        raise ConfigError(name="--legacy-config", value=path,
                          reason=exc.strerror or str(exc)) from None
    except UnicodeDecodeError:
        raise ConfigError(name="--legacy-config", value=path,
                          reason="not a text file") from None
    return interpret(parse_text(text, path), path)


def apply(conf: cfg.ConfigOpts, legacy: LegacyConfig) -> None:
    for (group, opt), value in legacy.overrides.items():
        conf.set_override(opt, value, group=group)


def report(legacy: LegacyConfig) -> None:
    """Log what the file set that this version does not act on."""
    for note in legacy.notes:
        LOG.warning("%s: %s", legacy.path, note)
    for name in legacy.not_supported:
        LOG.warning("%s: %s is set but not supported yet by this version; "
                    "ignored", legacy.path, name)
    for name in legacy.unknown:
        LOG.warning("%s: unknown variable %s ignored", legacy.path, name)
