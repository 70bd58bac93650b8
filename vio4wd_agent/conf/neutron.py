# SPDX-License-Identifier: Apache-2.0
"""Options of the agent's presence in Neutron (oslo.messaging).

The bus itself is oslo.messaging's: ``[DEFAULT] transport_url`` and the
library's own groups (``[oslo_messaging_rabbit]``,
``[oslo_messaging_notifications]``...).  With no transport_url the agent
runs on its own, as without OpenStack.
"""
from __future__ import annotations

import socket

from oslo_config import cfg

DEFAULT_OPTS: list[cfg.Opt] = [
    cfg.HostDomainOpt("host", default=socket.gethostname(),
                      sample_default="compute-0",
                      help="This compute host's name as Nova and Neutron "
                           "know it (nova-compute's [DEFAULT] host, the "
                           "ports' binding:host_id): the agent reports "
                           "under it and serves RPC on it."),
]

GROUP = cfg.OptGroup("neutron", title="Neutron agent (oslo.messaging)")

OPTS = [
    cfg.FloatOpt("report_interval", default=30.0, min=1.0,
                 help="Seconds between state reports to neutron-server "
                      "(keep it below half of Neutron's agent_down_time)."),
    cfg.FloatOpt("status_interval", default=1.0, min=0.1, max=60.0,
                 help="Seconds between looks at the relays for port "
                      "status (a port is up once its relay has its VF "
                      "and its VM connected) and VM connect/disconnect "
                      "notifications."),
    cfg.FloatOpt("rpc_timeout", default=30.0, min=1.0,
                 help="Seconds to wait for neutron-server's answer to a "
                      "report or a port status update before trying "
                      "again."),
    cfg.ListOpt("physical_networks", default=["*"],
                help="Physical networks this host's VFs reach, reported "
                     "to Neutron; its ML2 driver binds flat and vlan "
                     "segments of these only. '*': any."),
    cfg.StrOpt("vhostuser_mode", default="client",
               choices=[("client", "QEMU connects, the relay creates the "
                                   "socket (as ML2/OVN binds)"),
                        ("server", "QEMU creates the socket, the relay "
                                   "connects (as the Agilio driver binds)")],
               help="The vhostuser_mode Neutron puts in the ports it binds "
                    "to this host (QEMU's side of the socket). The relay "
                    "serves either way; this picks what new bindings "
                    "ask for."),
]
