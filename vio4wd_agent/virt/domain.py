# SPDX-License-Identifier: Apache-2.0
"""What a libvirt domain's XML says about vhost-user interfaces.

Pure parsing (no libvirt): for each ``<interface type='vhostuser'>`` whose
socket is in the agent's socket directory, the relay it needs.  QEMU's
``<source mode='client'>`` means the relay serves the socket; ``'server'``
means QEMU does and the relay connects.  The VM's NUMA node comes from
``<numatune>``; a VF may be named per interface MAC in the domain's
metadata, in vio4wd's namespace::

    <metadata>
      <vio4wd:relay xmlns:vio4wd="http://vio4wd.org/xmlns/relay/1.0">
        <vio4wd:interface mac="52:54:00:12:34:56" vf="0000:05:08.1"/>
        <vio4wd:interface mac="52:54:00:12:34:57" bond="net_bonding7"
                          members="0000:05:08.2 0000:05:08.3" mode="1"/>
      </vio4wd:relay>
    </metadata>

A domain Nova made names its Neutron ports in Nova's metadata
(``<nova:ports><nova:port uuid=...>``); an interface whose device name
(``tap`` + 11 characters of the port id) or socket name (``vhu`` + the
same) matches exactly one of them is that port's, and its relay reports
the port's status to Neutron.

Problems with one interface (bad mode, a socket in the directory named
against the pattern...) are reported and that interface skipped; the
others still count.
"""
from __future__ import annotations

import dataclasses
import os
import re
import xml.etree.ElementTree as ET
from typing import Callable

from vio4wd_agent.conf import parsing
from vio4wd_agent.relay.model import MAX_BOND
from vio4wd_agent.vhostuser.sockets import (BadSocketPath,
                                             OutsideSocketDirectories,
                                             SocketPolicy)

NAMESPACE = "http://vio4wd.org/xmlns/relay/1.0"
NOVA_NAMESPACE = "http://openstack.org/xmlns/libvirt/nova/1.1"
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-"
                   r"[0-9a-f]{12}$")


class DomainXMLError(ValueError):
    pass


@dataclasses.dataclass(frozen=True)
class VhostInterface:
    mac: str
    path: str
    qemu_mode: str                  # QEMU's side: client or server
    relay_id: int | None            # from the socket name (static sockets)
    queues: int | None
    vf: str = ""                    # from the metadata, if given
    bond_members: tuple[str, ...] = ()
    bond_mode: int | None = None
    port_id: str = ""               # Nova's metadata names the port

    @property
    def relay_is_client(self) -> bool:
        return self.qemu_mode == "server"


@dataclasses.dataclass(frozen=True)
class Domain:
    uuid: str
    name: str
    numa_node: int | None
    interfaces: tuple[VhostInterface, ...]
    problems: tuple[str, ...]


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    parts = pattern.replace("%%", "\0").split("%u")
    return re.compile("^" + r"(\d+)".join(
        re.escape(p.replace("\0", "%")) for p in parts) + "$")


def _first(nodeset: str | None) -> int | None:
    if not nodeset:
        return None
    try:
        nodes = parsing.parse_cpu_list(
            ",".join(p for p in nodeset.split(",") if not
                     p.strip().startswith("^")))
    except ValueError:
        return None
    return nodes[0] if nodes else None


def numa_node(root: ET.Element,
              cpu_node: Callable[[int], int | None] | None = None
              ) -> int | None:
    """The host node of the VM's memory.

    ``<numatune><memory nodeset>`` first, then the ``<memnode>`` of the
    lowest guest ``<cpu><numa><cell>``; without numatune, the node of the
    host CPUs the vCPUs are placed on (``<vcpu cpuset>``, else the first
    ``<cputune><vcpupin>``), when ``cpu_node`` maps a CPU to its node.
    """
    tune = root.find("numatune")
    if tune is not None:
        memory = tune.find("memory")
        if memory is not None and _first(memory.get("nodeset")) is not None:
            return _first(memory.get("nodeset"))
        cells = {c.get("id"): c for c in root.iterfind("cpu/numa/cell")}

        def order(m: ET.Element) -> tuple[int, str]:
            cellid = m.get("cellid", "")
            return (0 if cellid in cells or not cells else 1,
                    cellid.zfill(8))
        for memnode in sorted(tune.findall("memnode"), key=order):
            node = _first(memnode.get("nodeset"))
            if node is not None:
                return node
    if cpu_node is None:
        return None
    cpuset = None
    vcpu = root.find("vcpu")
    if vcpu is not None and vcpu.get("cpuset"):
        cpuset = vcpu.get("cpuset")
    else:
        pin = root.find("cputune/vcpupin")
        if pin is not None:
            cpuset = pin.get("cpuset")
    cpu = _first(cpuset)
    return cpu_node(cpu) if cpu is not None else None


def host_cpu_node(cpu: int) -> int | None:
    """The NUMA node of a host CPU, from sysfs."""
    try:
        names = os.listdir("/sys/devices/system/cpu/cpu%d" % cpu)
    except OSError:
        return None
    for name in names:
        if name.startswith("node") and name[4:].isdigit():
            return int(name[4:])
    return None


def _metadata(root: ET.Element) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for iface in root.iter("{%s}interface" % NAMESPACE):
        mac = (iface.get("mac") or "").lower()
        if mac:
            out[mac] = dict(iface.attrib)
    return out


def is_uuid(text: str) -> bool:
    return bool(_UUID.match(text))


def _nova_ports(root: ET.Element) -> list[str]:
    """The Neutron port ids in Nova's metadata (well-formed ones only)."""
    out = []
    for port in root.iter("{%s}port" % NOVA_NAMESPACE):
        uuid = (port.get("uuid") or "").strip().lower()
        if _UUID.match(uuid):
            out.append(uuid)
    return out


def _port_of(names: list[str], ports: list[str]) -> str:
    """The one port whose id the device or socket name carries (Nova's
    ``tap``/``vhu`` + 11 characters), or ""."""
    found: set[str] = set()
    for name in names:
        if len(name) >= 14 and name[:3] in ("tap", "vhu"):
            found.update(p for p in ports if p[:11] == name[3:14])
    return found.pop() if len(found) == 1 else ""


def _vf(meta: dict[str, str], problems: list[str],
        mac: str) -> tuple[str, tuple[str, ...], int | None]:
    """(vf, bond members, bond mode) of one metadata entry: ``vf`` (a PCI
    address or DPDK devargs), or ``bond`` with 2-8 space-separated
    ``members`` and an optional ``mode`` (0-6)."""
    if not meta:
        return "", (), None
    bond = meta.get("bond", "").strip()
    try:
        if not bond:
            if not meta.get("vf", "").strip():
                raise ValueError("no vf (nor bond) attribute")
            return parsing.check_vf(meta["vf"]), (), None
        parsing.check_bond_name(bond)
        members = meta.get("members", "").split()
        if not 2 <= len(members) <= MAX_BOND:
            raise ValueError("bond %s needs 2-%d space-separated members, "
                             "got %d" % (bond, MAX_BOND, len(members)))
        mode = None
        if meta.get("mode", "").strip():
            try:
                mode = int(meta["mode"])
            except ValueError:
                raise ValueError("bond mode %r is not a number"
                                 % meta["mode"]) from None
            if not 0 <= mode <= 6:
                raise ValueError("bond mode %d is not 0-6" % mode)
        return bond, tuple(parsing.check_vf(m) for m in members), mode
    except ValueError as exc:
        problems.append("interface %s: metadata: %s; relayed without a VF"
                        % (mac, exc))
        return "", (), None


def parse(xml: str, policy: SocketPolicy, pattern: str | None,
          cpu_node: Callable[[int], int | None] | None = None) -> Domain:
    """``policy``: where the agent's sockets are (an interface whose socket
    is elsewhere belongs to another switch and is left alone); a socket's
    path is taken as the policy places it, never through a symbolic link.
    ``pattern``: the socket name pattern of static sockets in the main
    socket directory, or None (dynamic sockets: any name; ids
    allocated).  ``cpu_node`` maps a host CPU to its NUMA node (see
    numa_node)."""
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        raise DomainXMLError("not well-formed XML: %s" % exc) from None
    if root.tag != "domain":
        raise DomainXMLError("root element is <%s>, not <domain>" % root.tag)
    uuid = (root.findtext("uuid") or "").strip()
    name = (root.findtext("name") or "").strip()
    if not uuid and not name:
        raise DomainXMLError("no uuid and no name")
    regex = _pattern_regex(pattern) if pattern else None
    meta = _metadata(root)
    nova_ports = _nova_ports(root)
    problems: list[str] = []
    found = []
    devices = root.find("devices")
    for index, iface in enumerate([] if devices is None else
                                  devices.findall("interface")):
        if iface.get("type") != "vhostuser":
            continue
        mac_el = iface.find("mac")
        mac = (mac_el.get("address") if mac_el is not None else "") or \
            "#%d" % index
        mac = mac.lower()
        source = iface.find("source")
        if source is None or not source.get("path"):
            problems.append("interface %s: no <source path=...>" % mac)
            continue
        path = source.get("path", "")
        mode = source.get("mode")
        if mode not in ("client", "server"):
            problems.append("interface %s: unknown source mode %r (client "
                            "or server)" % (mac, mode))
            continue
        if not os.path.isabs(path):
            problems.append("interface %s: socket path %r is not absolute"
                            % (mac, path))
            continue
        try:
            real = policy.place(path)
        except OutsideSocketDirectories:
            continue        # not one of ours: another switch's socket
        except BadSocketPath as exc:
            problems.append("interface %s: %s" % (mac, exc))
            continue
        relay_id = None
        if regex is not None and policy.in_main_directory(real):
            m = regex.match(os.path.basename(real))
            if m is None:
                problems.append("interface %s: socket %s is in the socket "
                                "directory but not named like %s" % (
                                    mac, path, pattern))
                continue
            relay_id = int(m.group(1))
        driver = iface.find("driver")
        queues = None
        if driver is not None and driver.get("queues"):
            try:
                queues = int(driver.get("queues", ""))
            except ValueError:
                problems.append("interface %s: driver queues %r is not a "
                                "number" % (mac, driver.get("queues")))
        vf, members, bond_mode = _vf(meta.get(mac, {}), problems, mac)
        target = iface.find("target")
        port = _port_of([os.path.basename(real)] + (
            [target.get("dev", "")] if target is not None else []),
            nova_ports) if nova_ports else ""
        found.append(VhostInterface(mac=mac, path=real, qemu_mode=mode,
                                    relay_id=relay_id, queues=queues, vf=vf,
                                    bond_members=members,
                                    bond_mode=bond_mode, port_id=port))
    return Domain(uuid=uuid or name, name=name or uuid,
                  numa_node=numa_node(root, cpu_node), interfaces=tuple(found),
                  problems=tuple(problems))
