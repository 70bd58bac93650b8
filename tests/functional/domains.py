# SPDX-License-Identifier: Apache-2.0
"""Domain XML for the libvirt tests: QEMU under TCG, shared memfd memory
(vhost-user needs it), vhost-user NICs with vectors=0 (QEMU 7.2 + TCG
crashes when the guest driver loads otherwise), serial to a file."""
from __future__ import annotations

import dataclasses
import uuid as uuidlib

from vio4wd_agent.virt.domain import NAMESPACE


@dataclasses.dataclass
class Nic:
    path: str
    mode: str = "client"             # QEMU's side
    mac: str = "52:54:00:00:00:01"
    vf: str = ""                     # declared in the vio4wd metadata


def domain_xml(name: str, nics: list[Nic], *, numa: str | None = None,
               kernel: str = "", initrd: str = "", cmdline: str = "",
               console: str = "", uuid: str = "",
               memory_mib: int = 128,
               interface_xml: list[str] | None = None,
               nova_ports: list[str] | None = None) -> str:
    """``interface_xml``: <interface> elements as someone else wrote
    them (Nova's VIF driver), put in as they are but for the alias the
    vectors=0 override needs."""
    uuid = uuid or str(uuidlib.uuid4())
    meta = "".join("<v:interface mac='%s' vf='%s'/>" % (n.mac, n.vf)
                   for n in nics if n.vf)
    ifaces, overrides = [], []
    for i, n in enumerate(nics):
        ifaces.append(
            "<interface type='vhostuser'><mac address='%s'/>"
            "<source type='unix' path='%s' mode='%s'/><model type='virtio'/>"
            "<alias name='ua-net%d'/><rom enabled='no'/></interface>"
            % (n.mac, n.path, n.mode, i))
        overrides.append(
            "<qemu:device alias='ua-net%d'><qemu:frontend><qemu:property "
            "name='vectors' type='unsigned' value='0'/></qemu:frontend>"
            "</qemu:device>" % i)
    for extra in interface_xml or []:
        i = len(ifaces)
        ifaces.append(extra.replace(
            "</interface>", "<alias name='ua-net%d'/></interface>" % i, 1))
        overrides.append(
            "<qemu:device alias='ua-net%d'><qemu:frontend><qemu:property "
            "name='vectors' type='unsigned' value='0'/></qemu:frontend>"
            "</qemu:device>" % i)
    boot = ("<kernel>%s</kernel><initrd>%s</initrd><cmdline>%s</cmdline>"
            % (kernel, initrd, cmdline)) if kernel else ""
    serial = ("<serial type='file'><source path='%s'/></serial>" % console
              if console else "")
    return """<domain type='qemu'
        xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>%(name)s</name>
  <uuid>%(uuid)s</uuid>
  %(metadata)s
  <memory unit='MiB'>%(mem)d</memory>
  <memoryBacking><source type='memfd'/><access mode='shared'/>
  </memoryBacking>
  <vcpu>1</vcpu>
  %(numa)s
  <os><type arch='x86_64' machine='pc'>hvm</type>%(boot)s</os>
  <devices>%(ifaces)s%(serial)s</devices>
  <qemu:override>%(overrides)s</qemu:override>
</domain>""" % dict(
        name=name, uuid=uuid, mem=memory_mib,
        metadata=("<metadata>%s%s</metadata>" % (
            ("<v:relay xmlns:v='%s'>%s</v:relay>" % (NAMESPACE, meta))
            if meta else "",
            # Nova's own metadata naming the instance's Neutron ports
            ("<nova:instance xmlns:nova='http://openstack.org/xmlns/"
             "libvirt/nova/1.1'><nova:ports>%s</nova:ports></nova:instance>"
             % "".join("<nova:port uuid='%s'/>" % p for p in nova_ports))
            if nova_ports else "")) if meta or nova_ports else "",
        numa=("<numatune><memory mode='strict' nodeset='%s'/></numatune>"
              % numa) if numa is not None else "",
        boot=boot, ifaces="".join(ifaces), serial=serial,
        overrides="".join(overrides))
