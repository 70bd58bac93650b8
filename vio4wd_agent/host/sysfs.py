# SPDX-License-Identifier: Apache-2.0
"""What sysfs says about network devices: a netdev's PCI function, a
PF's VFs and a VF's index under its PF.  Vendor-neutral (no ethtool
output parsing).  The one place that knows where sysfs is."""
from __future__ import annotations

import os
import re
import socket

from vio4wd_agent.conf.parsing import normalize_pci

SYS = "/sys"
_VIRTFN = re.compile(r"^virtfn(\d+)$")


def netdev_pci(ifname: str, sys_root: str = SYS) -> str | None:
    """PCI address of ``ifname``'s device, None if it is not a PCI function
    (veth, tap, bridge...)."""
    if "/" in ifname or ifname in (".", ".."):
        return None
    link = os.path.join(sys_root, "class", "net", ifname, "device")
    try:
        target = os.readlink(link)
    except OSError:
        return None
    return normalize_pci(os.path.basename(target))


def netdev_exists(ifname: str) -> bool:
    """Whether ``ifname`` exists in this thread's network namespace (sysfs
    shows the namespace it was mounted in, which may be another)."""
    try:
        socket.if_nametoindex(ifname)
        return True
    except (OSError, ValueError):
        return False


def pf_vfs(pf_dir: str) -> list[tuple[int, str]]:
    """The VFs of the PF whose sysfs device directory is ``pf_dir``:
    (index, PCI address) pairs from its virtfnN links, by index; [] when
    it has none (or cannot be read)."""
    try:
        entries = os.listdir(pf_dir)
    except OSError:
        return []
    vfs = []
    for entry in entries:
        m = _VIRTFN.match(entry)
        if m is None:
            continue
        try:
            target = normalize_pci(os.path.basename(
                os.readlink(os.path.join(pf_dir, entry))))
        except OSError:
            continue
        if target is not None:
            vfs.append((int(m.group(1)), target))
    return sorted(vfs)


def vf_index(pci: str, sys_root: str = SYS) -> int | None:
    """Index of VF ``pci`` under its PF (virtfnN), None if not a VF."""
    physfn = os.path.join(sys_root, "bus", "pci", "devices", pci, "physfn")
    for index, vf in pf_vfs(physfn):
        if vf == pci:
            return index
    return None
