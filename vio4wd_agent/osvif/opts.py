# SPDX-License-Identifier: Apache-2.0
"""Options of the os-vif plugin.

os-vif registers a plugin's options in the group ``os_vif_<entry point
name>`` of the process that loads it (nova-compute's nova.conf):
``[os_vif_agilio_ovs]`` for the name unmodified Nova uses, and
``[os_vif_vio4wd]``.  This module imports neither os-vif nor ovsdbapp, so
that the config generator lists the options anywhere.
"""
from __future__ import annotations

from oslo_config import cfg

PLUGIN_NAMES = ("agilio_ovs", "vio4wd")

OPTS = [
    cfg.StrOpt("port_control_endpoint",
               default="ipc:///var/run/virtio-forwarder/port_control",
               help="The vio4wd agent's port control endpoint ([control] "
                    "zmq_port_control_ep of the agent, which serves it "
                    "with port_control = zmq). nova-compute's user must be "
                    "in the agent's [control] endpoint_group."),
    cfg.FloatOpt("timeout", default=10.0, min=0.1,
                 help="Seconds a plug or unplug waits for the agent (and "
                      "for OVSDB) before it fails with a PlugException or "
                      "UnplugException naming what did not answer."),
    cfg.BoolOpt("plug_representor", default=False,
                help="Also plug the VF's representor netdev into the "
                     "integration bridge, with the external_ids "
                     "(iface-id, iface-status, attached-mac, vm-uuid) "
                     "by which OVN's controller claims the port, so that "
                     "Neutron reports it up. For OVS/OVN hosts with "
                     "switchdev VFs; leave off on plain SR-IOV hosts."),
    cfg.StrOpt("ovsdb_connection",
               default="unix:/run/openvswitch/db.sock",
               help="OVSDB server for plug_representor."),
    cfg.StrOpt("integration_bridge", default="br-int",
               help="Bridge for the representor when the VIF's network "
                    "names none."),
    cfg.BoolOpt("wait_for_vswitchd", default=True,
                help="After an OVSDB change, wait (up to timeout) until "
                     "ovs-vswitchd has applied it, as ovs-vsctl does. Off "
                     "only where no ovs-vswitchd runs."),
]


def list_opts() -> list[tuple[cfg.OptGroup, list[cfg.Opt]]]:
    """For oslo-config-generator: the groups as os-vif names them."""
    return [(cfg.OptGroup("os_vif_%s" % name,
                          title="os-vif plugin %s (nova-compute's nova.conf)"
                          % name), list(OPTS))
            for name in PLUGIN_NAMES]
