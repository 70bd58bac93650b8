# SPDX-License-Identifier: Apache-2.0
"""Parsers for the value formats shared by the oslo.config options and the
legacy /etc/default/virtioforwarder file.

Each raises ValueError with a reason; callers add the option or variable
name so that the operator sees where the bad value came from.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import re
import stat

from vio4wd_agent.relay.model import MAX_RELAY_ID

_PCI_RE = re.compile(
    r"^(?:([0-9a-fA-F]{1,4}):)?([0-9a-fA-F]{1,2}):([0-9a-fA-F]{1,2})"
    r"\.([0-7])$")
# A DPDK devargs string starts with a driver/device name such as net_tap0.
_DEVARGS_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*(,[^\s=,]+=[^\s,]*)*$")


def parse_cpu_list(text: str) -> list[int]:
    """``1,2``, ``1-3,5`` or a hex mask ``0x6`` -> sorted CPU numbers."""
    text = text.strip()
    if not text:
        raise ValueError("empty CPU list")
    if text.lower().startswith("0x"):
        try:
            mask = int(text, 16)
        except ValueError:
            raise ValueError("not a hex CPU mask") from None
        if mask == 0:
            raise ValueError("the CPU mask selects no CPU")
        return [bit for bit in range(mask.bit_length()) if mask >> bit & 1]
    cpus: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        lo, sep, hi = part.partition("-")
        try:
            first = int(lo)
            last = int(hi) if sep else first
        except ValueError:
            raise ValueError("%r is not a CPU number or range" % part) from None
        if first < 0 or last < first:
            raise ValueError("%r is not a valid CPU range" % part)
        cpus.update(range(first, last + 1))
    return sorted(cpus)


def format_cpu_list(cpus: list[int]) -> str:
    return ",".join(str(c) for c in cpus)


def normalize_pci(text: str) -> str | None:
    """``0000:05:08.1``/``05:08.1`` (any case) -> ``0000:05:08.1``, or None."""
    m = _PCI_RE.match(text.strip())
    if m is None:
        return None
    domain, bus, slot, func = m.groups()
    return "%04x:%02x:%02x.%d" % (int(domain or "0", 16), int(bus, 16),
                                  int(slot, 16), int(func))


def check_vf(text: str) -> str:
    """A VF given as a PCI address (normalised) or as DPDK devargs."""
    text = text.strip()
    pci = normalize_pci(text)
    if pci is not None:
        return pci
    if not _DEVARGS_RE.match(text):
        raise ValueError("%r is neither a PCI address (0000:05:08.1) nor "
                         "DPDK devargs (net_tap0,iface=tap0)" % text)
    return text


def parse_relay_id(text: str) -> int:
    try:
        value = int(text.strip())
    except ValueError:
        raise ValueError("relay id %r is not a number" % text) from None
    if not 0 <= value <= MAX_RELAY_ID:
        raise ValueError("relay id %d is out of range (0-%d)"
                         % (value, MAX_RELAY_ID))
    return value


def parse_static_vf(text: str) -> tuple[str, int]:
    """``<pci or devargs>=<relay id>``; devargs may contain ``=``."""
    vf, sep, rid = text.strip().rpartition("=")
    if not sep or not vf:
        raise ValueError("%r is not of the form <pci>=<relay id>" % text)
    return check_vf(vf), parse_relay_id(rid)


@dataclasses.dataclass(frozen=True)
class CpuPin:
    relay_id: int
    vf_to_vm: int
    vm_to_vf: int


def parse_cpu_pin(text: str) -> CpuPin:
    """``<relay id>:<cpu>[,<cpu>]``: first CPU VF->VM, second VM->VF."""
    rid, sep, cpus = text.strip().partition(":")
    if not sep:
        raise ValueError("%r is not of the form <relay id>:<cpu>[,<cpu>]"
                         % text)
    parts = [p.strip() for p in cpus.split(",")]
    if not 1 <= len(parts) <= 2:
        raise ValueError("%r: give one or two CPUs" % text)
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise ValueError("%r: CPU is not a number" % text) from None
    if any(v < 0 for v in values):
        raise ValueError("%r: negative CPU" % text)
    return CpuPin(parse_relay_id(rid), values[0], values[-1])


def parse_device_map_entry(text: str) -> tuple[str, str]:
    """``<pci>=<devargs>``: lets a PCI address stand for a DPDK device."""
    pci, sep, devargs = text.strip().partition("=")
    norm = normalize_pci(pci)
    if not sep or norm is None:
        raise ValueError("%r is not of the form <pci address>=<devargs>"
                         % text)
    devargs = devargs.strip()
    if normalize_pci(devargs) is None and not _DEVARGS_RE.match(devargs):
        raise ValueError("%r: %r is not DPDK devargs" % (text, devargs))
    return norm, devargs


def check_socket_pattern(pattern: str) -> str:
    """Exactly one ``%u`` (the relay id), no other conversion, no slash."""
    stripped = pattern.replace("%%", "")
    if stripped.count("%u") != 1 or stripped.count("%") != 1:
        raise ValueError("the socket name pattern must contain exactly one "
                         "%u and no other % conversion")
    if "/" in pattern:
        raise ValueError("the socket name pattern is a file name, not a path")
    return pattern


def socket_name(pattern: str, relay_id: int) -> str:
    return pattern.replace("%%", "\0").replace("%u", str(relay_id)).replace(
        "\0", "%")


def parse_bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "y", "yes", "true", "on"):
        return True
    if value in ("", "0", "n", "no", "false", "off"):
        return False
    raise ValueError("%r is not a boolean" % text)


# Syslog-style levels (0-7, as VIRTIOFWD_LOG_LEVEL) -> Python logging.
_PY_LEVELS = {0: logging.CRITICAL, 1: logging.CRITICAL, 2: logging.CRITICAL,
              3: logging.ERROR, 4: logging.WARNING, 5: logging.INFO,
              6: logging.INFO, 7: logging.DEBUG}


def python_log_level(syslog_level: int) -> int:
    return _PY_LEVELS[syslog_level]


def check_socket_dir(text: str) -> str:
    """An absolute directory path of printable characters; if something is
    there already, a directory.  (Missing is fine: it is made at start.)"""
    if not text or not text.startswith("/"):
        raise ValueError("not an absolute path")
    if any(ord(c) < 0x20 or ord(c) == 0x7f for c in text):
        raise ValueError("contains a control character")
    path = os.path.normpath(text)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return path
    except OSError as exc:
        raise ValueError("cannot be used: %s" % exc.strerror) from None
    if not stat.S_ISDIR(st.st_mode):
        raise ValueError("exists and is not a directory")
    return path


_BOND_NAME_RE = re.compile(r"net_bonding[A-Za-z0-9_]{1,40}")


def check_bond_name(name: str) -> str:
    """A bond's name: net_bonding plus letters, digits or '_' (it names
    the DPDK port; it is not devargs, so no ',options')."""
    if _BOND_NAME_RE.fullmatch(name) is None:
        raise ValueError("bond name %r must be net_bonding followed by "
                         "letters, digits or '_' (no devargs options)"
                         % name)
    return name
