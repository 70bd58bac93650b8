# SPDX-License-Identifier: Apache-2.0
"""Nova's side of a vnic_type virtio-forwarder port, with Nova's own
code: the network-model VIF as Nova gets it from Neutron for a port bound
with vif_type agilio_ovs, converted by ``nova.network.os_vif_util``, and
the libvirt ``<interface>`` Nova's generic VIF driver makes of it."""
from __future__ import annotations

import dataclasses
import uuid as uuidlib
import warnings
from typing import Any

_READY = False


def setup() -> None:
    """What nova-compute does once at start: os-vif loads its plugins
    (ours among them, by entry point) and the objects are registered."""
    global _READY
    if _READY:
        return
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    import os_vif
    from nova import objects
    os_vif.initialize()
    objects.register_all()
    _READY = True


def configure(plugin: str = "agilio_ovs", **options: Any) -> None:
    """``[os_vif_<plugin>]`` options of nova.conf, set as overrides."""
    setup()
    from oslo_config import cfg
    from vio4wd_agent.osvif.opts import OPTS
    group = "os_vif_%s" % plugin
    for opt in OPTS:
        cfg.CONF.clear_override(opt.name, group=group)
    for name, value in options.items():
        cfg.CONF.set_override(name, value, group=group)


@dataclasses.dataclass
class Port:
    """A Neutron port as bound for vnic_type virtio-forwarder."""

    socket: str
    mode: str                         # vhostuser_mode: QEMU's side
    pci_slot: str
    mac: str = "fa:16:3e:00:00:01"
    port_id: str = dataclasses.field(
        default_factory=lambda: str(uuidlib.uuid4()))
    bridge: str | None = "br-int"

    @property
    def devname(self) -> str:
        return ("tap" + self.port_id)[:14]

    def nova_vif(self) -> Any:
        """nova.network.model.VIF, as the compute manager has it."""
        setup()
        from nova.network import model
        net = model.Network(id=str(uuidlib.uuid4()), bridge=self.bridge,
                            label="private", subnets=[], mtu=1500)
        details = {model.VIF_DETAILS_VHOSTUSER_MODE: self.mode}
        if self.socket:
            details[model.VIF_DETAILS_VHOSTUSER_SOCKET] = self.socket
        return model.VIF(
            id=self.port_id, address=self.mac, network=net,
            type=model.VIF_TYPE_AGILIO_OVS,
            vnic_type=model.VNIC_TYPE_VIRTIO_FORWARDER, details=details,
            profile={"pci_slot": self.pci_slot,
                     "physical_network": "physnet1"},
            devname=self.devname, ovs_interfaceid=self.port_id,
            active=False, preserve_on_delete=False)

    def osvif(self) -> Any:
        """The os-vif object Nova hands to os_vif.plug()."""
        from nova.network import os_vif_util
        return os_vif_util.nova_to_osvif_vif(self.nova_vif())


def instance(name: str = "vm1") -> tuple[Any, Any]:
    """(nova Instance, os-vif InstanceInfo)."""
    setup()
    from nova import objects
    from nova.network import os_vif_util
    inst = objects.Instance(uuid=str(uuidlib.uuid4()), project_id="demo",
                            display_name=name, id=1)
    return inst, os_vif_util.nova_to_osvif_instance(inst)


def libvirt_interface(port: Port, inst: Any) -> str:
    """The <interface> Nova's libvirt generic VIF driver writes for the
    port (virt_type qemu: no KVM here; a hugepage flavor)."""
    setup()
    from nova import objects
    from nova.virt.libvirt import vif as libvirt_vif
    flavor = objects.Flavor(vcpus=1, memory_mb=256, root_gb=0,
                            ephemeral_gb=0, swap=0, name="m1.hugepages",
                            extra_specs={"hw:mem_page_size": "large"})
    image = objects.ImageMeta.from_dict({"properties": {}})
    conf = libvirt_vif.LibvirtGenericVIFDriver().get_config(
        inst, port.nova_vif(), image, flavor, "qemu")
    return conf.to_xml()
