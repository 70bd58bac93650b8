# SPDX-License-Identifier: Apache-2.0
"""Bind VFs to vfio-pci at start (``[dataplane] bind_vfio_pci``, legacy
``VIRTIOFWD_BIND_VFIO_PCI``), through sysfs only: ``driver_override``,
unbind from the current driver, ``drivers_probe``.

Entries: a PCI address (``0000:01:02.3`` or ``01:02.3``), a PF netdev
(all its VFs) or ``netdev:count`` (its first ``count`` VFs).  A device
that cannot be bound is reported and the others are still bound; its
relay will then fail to add with DPDK's reason.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import re
import subprocess
from typing import Callable

from vio4wd_agent.conf.parsing import normalize_pci
from vio4wd_agent.host.sysfs import SYS, pf_vfs

LOG = logging.getLogger(__name__)

DRIVER = "vfio-pci"
_NETDEV = re.compile(r"^([A-Za-z0-9_.@-]{1,15})(?::(\d+))?$")


class BindError(Exception):
    pass


def check_entry(text: str) -> str:
    """Validate one entry (for configuration parsing)."""
    text = text.strip()
    if normalize_pci(text) is not None:
        return text
    m = _NETDEV.match(text)
    if m is None or (m.group(2) is not None and int(m.group(2)) < 1):
        raise ValueError("%r is neither a PCI address (0000:01:02.3), a "
                         "netdev nor netdev:count" % text)
    return text


def resolve(entry: str, sys_root: str = SYS) -> list[str]:
    """The PCI addresses an entry stands for."""
    pci = normalize_pci(entry)
    if pci is not None:
        if not os.path.isdir(os.path.join(sys_root, "bus", "pci", "devices",
                                          pci)):
            raise BindError("no PCI device %s" % pci)
        return [pci]
    m = _NETDEV.match(entry.strip())
    if m is None:
        raise BindError("%r is neither a PCI address nor a netdev" % entry)
    name, count = m.group(1), m.group(2)
    dev = os.path.join(sys_root, "class", "net", name, "device")
    if not os.path.exists(dev):
        raise BindError("no netdev %s (or it is not a PCI device)" % name)
    vfs = pf_vfs(dev)
    if not vfs:
        raise BindError("netdev %s has no VFs (sriov_numvfs is 0?)" % name)
    if count is not None:
        if int(count) > len(vfs):
            raise BindError("netdev %s has %d VFs, not %s"
                            % (name, len(vfs), count))
        vfs = vfs[:int(count)]
    return [pci for _, pci in vfs]


def _write(path: str, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


def current_driver(pci: str, sys_root: str = SYS) -> str | None:
    try:
        return os.path.basename(os.readlink(os.path.join(
            sys_root, "bus", "pci", "devices", pci, "driver")))
    except OSError:
        return None


def bind(pci: str, sys_root: str = SYS,
         write: Callable[[str, str], None] = _write) -> str | None:
    """Bind ``pci`` to vfio-pci; returns the driver it was taken from
    (None if it had none).  Raises BindError saying what failed."""
    dev = os.path.join(sys_root, "bus", "pci", "devices", pci)
    old = current_driver(pci, sys_root)
    if old == DRIVER:
        return DRIVER
    step = "driver_override"
    try:
        write(os.path.join(dev, "driver_override"), DRIVER)
        if old is not None:
            step = "unbind from %s" % old
            write(os.path.join(dev, "driver", "unbind"), pci)
        step = "drivers_probe"
        write(os.path.join(sys_root, "bus", "pci", "drivers_probe"), pci)
    except OSError as exc:
        raise BindError("%s: %s" % (step, exc.strerror or exc)) from None
    now = current_driver(pci, sys_root)
    if now != DRIVER:
        raise BindError("still bound to %s after the probe (IOMMU off? "
                        "see dmesg)" % (now or "no driver"))
    return old


@dataclasses.dataclass
class Report:
    bound: list[str] = dataclasses.field(default_factory=list)
    failed: list[str] = dataclasses.field(default_factory=list)


def ensure_module(sys_root: str = SYS) -> None:
    """Load vfio-pci unless sysfs already lists the driver."""
    if not os.path.isdir(os.path.join(sys_root, "bus", "pci", "drivers",
                                      DRIVER)):
        done = subprocess.run(["modprobe", DRIVER], capture_output=True,
                              text=True)
        if done.returncode != 0:
            LOG.error("modprobe %s failed: %s", DRIVER,
                      done.stderr.strip() or done.returncode)


def bind_all(entries: list[str], sys_root: str = SYS,
             write: Callable[[str, str], None] = _write) -> Report:
    report = Report()
    if not entries:
        return report
    ensure_module(sys_root)
    for entry in entries:
        try:
            addresses = resolve(entry, sys_root)
        except (BindError, OSError) as exc:
            LOG.error("bind_vfio_pci %s: %s", entry, exc)
            report.failed.append(entry)
            continue
        for pci in addresses:
            try:
                old = bind(pci, sys_root, write)
            except BindError as exc:
                LOG.error("bind_vfio_pci %s: %s not bound to %s: %s", entry,
                          pci, DRIVER, exc)
                report.failed.append(pci)
                continue
            report.bound.append(pci)
            if old != DRIVER:
                LOG.info("%s bound to %s (was %s)", pci, DRIVER,
                         old or "unbound")
    return report
