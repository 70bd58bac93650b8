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
from typing import Any, Callable

from oslo_config import cfg

from vio4wd_agent.conf import parsing
from vio4wd_agent.host import vfio
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


# One pass over the file (linear in its size, whatever the lines hold):
# shell words built from plain text, '...', "..." and \x pieces.
_ASSIGN_RE = re.compile(r"[ \t]*(?:export[ \t]+)?([A-Za-z_][A-Za-z0-9_]*)=")
_PIECE_RE = re.compile(r"""
    (?P<sq>'[^']*')
  | (?P<dq>"(?:[^"\\]|\\[\s\S])*")
  | (?P<cont>\\\n)
  | (?P<esc>\\[\s\S])
  | (?P<text>[^\s'"\\()]+)
""", re.X)
_BLANK_RE = re.compile(r"[ \t\r\f\v]*")
_DQ_ESCAPE_RE = re.compile(r'\\([\\"$`\n])')


def _control_char(value: str) -> str | None:
    for ch in value:
        if ord(ch) < 0x20 or ord(ch) == 0x7F:
            return "contains a control character (%r)" % ch
    return None


class _Reader:
    """Reads ``NAME=value`` statements from a shell fragment."""

    def __init__(self, text: str, path: str) -> None:
        self.text = text
        self.path = path
        self.pos = 0

    @property
    def lineno(self) -> int:
        return self.text.count("\n", 0, self.pos) + 1

    def _skip_blank(self, newlines: bool) -> None:
        """Blanks (and newlines, comments and continuations when
        ``newlines``) up to the next word, ')' or line end."""
        t = self.text
        while self.pos < len(t):
            blank = _BLANK_RE.match(t, self.pos)
            assert blank is not None     # it matches the empty string
            self.pos = blank.end()
            if t.startswith("\\\n", self.pos):
                self.pos += 2
            elif self.pos < len(t) and t[self.pos] == "#":
                end = t.find("\n", self.pos)
                self.pos = len(t) if end < 0 else end
            elif newlines and self.pos < len(t) and t[self.pos] == "\n":
                self.pos += 1
            else:
                return

    def _word(self, name: str) -> str | None:
        """The word at pos, or None if there is none."""
        parts: list[str] = []
        t = self.text
        while self.pos < len(t):
            m = _PIECE_RE.match(t, self.pos)
            if m is None:
                if t[self.pos] in "'\"":
                    raise ConfigError(name=name, value=t[self.pos:self.pos +
                                                         40],
                                      reason="no closing quotation")
                break
            self.pos = m.end()
            kind, piece = m.lastgroup, m.group()
            if kind == "sq":
                parts.append(piece[1:-1])
            elif kind == "dq":
                parts.append(_DQ_ESCAPE_RE.sub(
                    lambda e: "" if e.group(1) == "\n" else e.group(1),
                    piece[1:-1]))
            elif kind == "esc":
                parts.append(piece[1])
            elif kind == "text":
                parts.append(piece)
            # a continuation joins lines and adds nothing
        return "".join(parts) if parts else None

    def statements(self) -> dict[str, Value]:
        variables: dict[str, Value] = {}
        t = self.text
        while True:
            self._skip_blank(newlines=True)
            if self.pos >= len(t):
                return variables
            m = _ASSIGN_RE.match(t, self.pos)
            if m is None:
                end = t.find("\n", self.pos)
                raise ConfigError(name="%s line %d" % (self.path,
                                                       self.lineno),
                                  value=t[self.pos:end if end >= 0 else
                                          len(t)][:80],
                                  reason="expected NAME=value")
            name = m.group(1)
            self.pos = m.end()
            if t.startswith("(", self.pos):
                self.pos += 1
                words: list[str] = []
                while True:
                    self._skip_blank(newlines=True)
                    if self.pos >= len(t):
                        raise ConfigError(name=name, value="(...",
                                          reason="unterminated bash array")
                    if t[self.pos] == ")":
                        self.pos += 1
                        break
                    word = self._word(name)
                    if word is None:
                        raise ConfigError(name=name, value=t[self.pos],
                                          reason="unexpected character in "
                                          "a bash array")
                    words.append(word)
                value: Value = words
            else:
                word = self._word(name)
                self._skip_blank(newlines=False)
                if self.pos < len(t) and t[self.pos] != "\n":
                    raise ConfigError(name=name, value=t[m.end():t.find(
                        "\n", m.end()) if "\n" in t[m.end():] else
                        len(t)][:80],
                        reason="a value with spaces must be quoted")
                value = word or ""
            for item in value if isinstance(value, list) else [value]:
                bad = _control_char(item)
                if bad:
                    raise ConfigError(name=name, value=item, reason=bad)
            variables[name] = value
            self._skip_blank(newlines=False)


def parse_text(text: str, path: str = "<legacy config>") -> dict[str, Value]:
    """NAME -> string or list of strings, in file order (later wins)."""
    return _Reader(text, path).statements()


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
