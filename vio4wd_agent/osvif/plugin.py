# SPDX-License-Identifier: Apache-2.0
"""os-vif plugin: Nova's ``VIFVHostUser`` for a vnic_type
``virtio-forwarder`` port becomes a vio4wd relay.

Unmodified Nova builds, for a port bound with vif_type ``agilio_ovs`` and
vnic_type ``virtio-forwarder``, a ``VIFVHostUser`` whose plugin is
``agilio_ovs``, whose ``path``/``mode`` come from the binding's
``vhostuser_socket``/``vhostuser_mode`` (``mode`` is QEMU's side) and whose
port profile names the VF's PCI address (``representor_address``, also in
its ``datapath_offload``).  ``plug`` registers that VF and socket with the
running agent over port control (ADD_SOCK with the port's id, MAC and
instance, so the agent can list, report and remove by port); ``unplug``
withdraws it.  Both are idempotent.  With ``plug_representor`` the VF's
representor netdev also joins the integration bridge for OVN.

Every failure is an os-vif ``PlugException``/``UnplugException`` naming
the port, the VF, the socket and the reason, within ``timeout``.
"""
from __future__ import annotations

import dataclasses
import logging
import os
from typing import Any

from os_vif import exception as osv_exception
from os_vif import objects
from os_vif import plugin

from vio4wd_agent.conf.parsing import normalize_pci
from vio4wd_agent.control import protocol
from vio4wd_agent.osvif import opts
from vio4wd_agent.osvif.agent_client import AgentClient, AgentError
from vio4wd_agent.osvif.representor import (Representors, RepresentorError,
                                            find_netdev)

LOG = logging.getLogger(__name__)
R = protocol.PortControlRequest


class BadVIF(Exception):
    pass


@dataclasses.dataclass(frozen=True)
class Port:
    """What plugging one VIF needs, checked."""

    port_id: str
    mac: str
    instance_uuid: str
    path: str
    relay_client: bool          # QEMU made the socket (mode 'server')
    vf: str                     # PCI address, "" when not known
    representor_name: str
    interface_id: str
    bridge: str

    def describe(self) -> str:
        return "port %s (VF %s, socket %s)" % (
            self.port_id or "?", self.vf or "?", self.path or "?")

    def pci_addr(self) -> Any:
        dom, bus, rest = self.vf.split(":")
        slot, func = rest.split(".")
        return R.PciAddress(domain=int(dom, 16), bus=int(bus, 16),
                            slot=int(slot, 16), function=int(func, 16))


def _get(obj: Any, field: str) -> Any:
    """A field of an os-vif object, None when unset."""
    if obj is None:
        return None
    try:
        if not obj.obj_attr_is_set(field):
            return None
    except (AttributeError, NotImplementedError):
        return getattr(obj, field, None)
    return getattr(obj, field)


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def port_of(vif: Any, instance_info: Any, default_bridge: str,
            need_vf: bool = True) -> Port:
    """The Port of ``vif``; BadVIF says what is missing or wrong (the
    partial description is in its second argument)."""
    profile = _get(vif, "port_profile")
    offload = _get(profile, "datapath_offload")
    addrs = [a for a in (_text(_get(offload, "representor_address")),
                         _text(_get(profile, "representor_address"))) if a]
    names = [n for n in (_text(_get(offload, "representor_name")),
                         _text(_get(profile, "representor_name"))) if n]
    network = _get(vif, "network")
    port = Port(
        port_id=_text(_get(vif, "id")),
        mac=_text(_get(vif, "address")),
        instance_uuid=_text(_get(instance_info, "uuid")),
        path=_text(_get(vif, "path")),
        relay_client=_get(vif, "mode") == "server",
        vf=normalize_pci(addrs[0]) or addrs[0] if addrs else "",
        representor_name=names[0] if names else _text(_get(vif,
                                                           "vif_name")),
        interface_id=_text(_get(profile, "interface_id")) or
        _text(_get(vif, "id")),
        bridge=_text(_get(network, "bridge")) or default_bridge)
    if vif.obj_name() != objects.vif.VIFVHostUser.__name__:
        raise BadVIF("vio4wd plugs VIFVHostUser only, not %s"
                     % vif.obj_name(), port)
    if not port.port_id:
        raise BadVIF("the VIF has no id (the Neutron port)", port)
    if not port.path:
        raise BadVIF("the VIF has no path (the binding's vif_details "
                     "vhostuser_socket)", port)
    if not os.path.isabs(port.path):
        raise BadVIF("socket path %r is not absolute" % port.path, port)
    if _get(vif, "mode") not in ("client", "server"):
        raise BadVIF("vhost-user mode %r is neither client nor server"
                     % _get(vif, "mode"), port)
    if need_vf:
        if not addrs:
            raise BadVIF("the port profile names no VF (no "
                         "representor_address: the port's binding:profile "
                         "has no pci_slot)", port)
        if len({normalize_pci(a) or a for a in addrs}) > 1:
            raise BadVIF("the port profile names VF %s and its datapath "
                         "offload VF %s" % (addrs[1], addrs[0]), port)
        if normalize_pci(addrs[0]) is None:
            raise BadVIF("the VF %r is not a PCI address" % addrs[0], port)
    return port


class Vio4wdPlugin(plugin.PluginBase):
    """Registered as ``vio4wd``; :class:`AgilioOvsPlugin` is the same
    plugin under the name unmodified Nova asks for."""

    NAME = "vio4wd"
    CONFIG_OPTS = opts.OPTS

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        self._representors: Representors | None = None

    def describe(self) -> Any:
        profiles = [
            objects.host_info.HostPortProfileInfo(
                profile_object_name=cls.__name__, min_version="1.0",
                max_version=cls.VERSION)
            for cls in (objects.vif.VIFPortProfileOVSRepresentor,
                        objects.vif.VIFPortProfileBase)]
        return objects.host_info.HostPluginInfo(
            plugin_name=self.NAME,
            vif_info=[objects.host_info.HostVIFInfo(
                vif_object_name=objects.vif.VIFVHostUser.__name__,
                min_version="1.0",
                max_version=objects.vif.VIFVHostUser.VERSION,
                supported_port_profiles=profiles)])

    # ---- helpers ------------------------------------------------------
    def _client(self) -> AgentClient:
        return AgentClient(self.config.port_control_endpoint,
                           self.config.timeout)

    def _ovs(self) -> Representors:
        want = (self.config.ovsdb_connection, self.config.timeout,
                self.config.wait_for_vswitchd)
        have = self._representors
        if have is None or (have.connection, have.timeout,
                            have.wait) != want:
            have = self._representors = Representors(*want)
        return have

    def _port(self, vif: Any, instance_info: Any, need_vf: bool,
              error: type) -> Port:
        try:
            return port_of(vif, instance_info,
                           self.config.integration_bridge, need_vf)
        except BadVIF as exc:
            reason, port = exc.args
            raise error(vif=port.describe(), err=reason) from None

    def _representor(self, vif: Any) -> bool:
        """Does this VIF's representor go on the bridge?"""
        return bool(self.config.plug_representor) and isinstance(
            _get(vif, "port_profile"),
            objects.vif.VIFPortProfileOVSRepresentor)

    # ---- os-vif -------------------------------------------------------
    def plug(self, vif: Any, instance_info: Any) -> None:
        port = self._port(vif, instance_info, True, osv_exception.PlugException)
        msg = R(op=R.ADD_SOCK, conditional=True, vhost_path=port.path,
                port_id=port.port_id, vhost_client=port.relay_client)
        msg.pci_addrs.append(port.pci_addr())
        if port.mac:
            msg.mac = port.mac
        if port.instance_uuid:
            msg.instance_uuid = port.instance_uuid
        try:
            self._client().request(msg)
        except AgentError as exc:
            raise osv_exception.PlugException(vif=port.describe(),
                                              err=str(exc)) from None
        LOG.info("vio4wd: %s registered (%s serves the socket)",
                 port.describe(),
                 "QEMU" if port.relay_client else "the relay")
        if not self._representor(vif):
            return
        try:
            netdev = find_netdev(port.vf, port.representor_name)
            self._ovs().plug(port.bridge, netdev, {
                "iface-id": port.interface_id, "iface-status": "active",
                "attached-mac": port.mac, "vm-uuid": port.instance_uuid})
        except RepresentorError as exc:
            # Nothing half-done stays behind.
            try:
                self._unregister(port)
            except AgentError as undo:
                LOG.error("vio4wd: %s: registration not withdrawn after "
                          "the representor failed: %s", port.describe(),
                          undo)
            raise osv_exception.PlugException(vif=port.describe(),
                                              err=str(exc)) from None
        LOG.info("vio4wd: %s: representor %s on bridge %s",
                 port.describe(), netdev, port.bridge)

    def _unregister(self, port: Port) -> None:
        msg = R(op=R.REMOVE_SOCK, conditional=True, port_id=port.port_id)
        if port.path:
            msg.vhost_path = port.path
        self._client().request(msg)

    def unplug(self, vif: Any, instance_info: Any) -> None:
        port = self._port(vif, instance_info, False,
                          osv_exception.UnplugException)
        try:
            if self._representor(vif):
                removed = self._ovs().unplug(port.interface_id)
                if removed:
                    LOG.info("vio4wd: %s: representor %s off its bridge",
                             port.describe(), ", ".join(removed))
            self._unregister(port)
        except (AgentError, RepresentorError) as exc:
            raise osv_exception.UnplugException(vif=port.describe(),
                                                err=str(exc)) from None
        LOG.info("vio4wd: %s unregistered", port.describe())


class AgilioOvsPlugin(Vio4wdPlugin):
    """The name unmodified Nova puts on these VIFs: vio4wd as a drop-in
    successor of the Agilio/virtio-forwarder plugin."""

    NAME = "agilio_ovs"
