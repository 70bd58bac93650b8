# SPDX-License-Identifier: Apache-2.0
"""ML2 mechanism driver ``vio4wd``: binds vnic_type ``virtio-forwarder``
ports on hosts whose vio4wd agent is alive, on flat and vlan segments of
the physical networks that agent reports.

The binding is vif_type ``agilio_ovs`` with ``vhostuser_socket`` in the
agent's socket directory and ``vhostuser_mode`` as the agent reports it, so
that unmodified Nova plugs the port through vio4wd's os-vif plugin.  The
socket directory and mode come from the agent's own state reports, never
from configuration on the Neutron side, so they cannot drift apart.

Loaded by neutron-server from the ``neutron.ml2.mechanism_drivers`` entry
point; enable with ``[ml2] mechanism_drivers = ...,vio4wd``.
"""
from __future__ import annotations

import os
from typing import Any

from neutron_lib.api.definitions import portbindings
from neutron_lib.plugins.ml2 import api
from oslo_log import log

from neutron.plugins.ml2.drivers import mech_agent

from vio4wd_agent.neutron import constants as c

LOG = log.getLogger(__name__)

MODES = (portbindings.VHOST_USER_MODE_CLIENT,
         portbindings.VHOST_USER_MODE_SERVER)


class Vio4wdMechanismDriver(mech_agent.SimpleAgentMechanismDriverBase):
    def __init__(self) -> None:
        super().__init__(
            c.AGENT_TYPE, c.VIF_TYPE,
            {portbindings.CAP_PORT_FILTER: False,
             portbindings.VHOST_USER_OVS_PLUG: False},
            supported_vnic_types=[c.VNIC_TYPE])

    @property
    def connectivity(self) -> str:
        return portbindings.CONNECTIVITY_L2

    def get_allowed_network_types(self, agent: Any = None) -> tuple:
        return c.NETWORK_TYPES

    def get_mappings(self, agent: dict[str, Any]) -> list[str]:
        return list(agent["configurations"].get(c.CONF_PHYSNETS) or [])

    def physnet_in_mappings(self, physnet: str, mappings: Any) -> bool:
        return c.ANY_PHYSNET in mappings or physnet in mappings

    def bind_port(self, context: api.PortContext) -> None:
        if context.current.get(portbindings.VNIC_TYPE) == c.VNIC_TYPE:
            agents = context.host_agents(self.agent_type)
            if not agents:
                LOG.warning("vio4wd: not binding port %s on host %s: no "
                            "vio4wd agent reports from that host",
                            context.current["id"], context.host)
            elif not any(a["alive"] for a in agents):
                LOG.warning("vio4wd: not binding port %s on host %s: its "
                            "vio4wd agent is dead (no state report for "
                            "longer than agent_down_time)",
                            context.current["id"], context.host)
        super().bind_port(context)

    def check_segment_for_agent(self, segment: dict[str, Any],
                                agent: dict[str, Any]) -> bool:
        if not super().check_segment_for_agent(segment, agent):
            return False
        conf = agent["configurations"]
        problem = None
        if not os.path.isabs(str(conf.get(c.CONF_SOCKET_DIR) or "")):
            problem = "reports no absolute socket_dir"
        elif conf.get(c.CONF_VHOSTUSER_MODE) not in MODES:
            problem = "reports vhostuser_mode %r" % (
                conf.get(c.CONF_VHOSTUSER_MODE),)
        if problem:
            LOG.warning("vio4wd: agent on host %s %s; not binding there",
                        agent["host"], problem)
            return False
        return True

    def get_vif_details(self, context: api.PortContext,
                        agent: dict[str, Any],
                        segment: dict[str, Any]) -> dict[str, Any]:
        conf = agent["configurations"]
        details = dict(self.vif_details)
        details[portbindings.VHOST_USER_SOCKET] = os.path.join(
            conf[c.CONF_SOCKET_DIR], c.socket_name(context.current["id"]))
        details[portbindings.VHOST_USER_MODE] = conf[c.CONF_VHOSTUSER_MODE]
        if segment.get(api.NETWORK_TYPE) == "vlan" and \
                segment.get(api.SEGMENTATION_ID) is not None:
            details[portbindings.VIF_DETAILS_VLAN] = str(
                segment[api.SEGMENTATION_ID])
        return details
