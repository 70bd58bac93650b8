# SPDX-License-Identifier: Apache-2.0
"""Names the agent and the ML2 driver share (no Neutron import here: the
agent does not need Neutron installed)."""
from __future__ import annotations

# How the agent appears in Neutron's agents table: Neutron keys agents on
# (agent_type, host).
AGENT_TYPE = "vio4wd agent"
BINARY = "vio4wd-agent"

# The per-host RPC server of the agent (server = host) and its API version.
AGENT_TOPIC = "vio4wd-agent"
RPC_API_VERSION = "1.0"

# Neutron's own topics its L2 agents talk to, on Neutron's exchange
# (neutron-server sets its control_exchange to "neutron").
NEUTRON_EXCHANGE = "neutron"
REPORTS_TOPIC = "q-reports-plugin"
PLUGIN_TOPIC = "q-plugin"

# What vio4wd binds, and how Nova is told to plug it (vif_type agilio_ovs
# makes unmodified Nova call the os-vif plugin registered as agilio_ovs).
VNIC_TYPE = "virtio-forwarder"
VIF_TYPE = "agilio_ovs"
SOCKET_PREFIX = "vhu"
SOCKET_NAME_LEN = 14            # what Nova and OVN use: "vhu" + 11 chars
NETWORK_TYPES = ("flat", "vlan")

# Keys of the agent's reported configurations the driver reads.
CONF_SOCKET_DIR = "socket_dir"
CONF_VHOSTUSER_MODE = "vhostuser_mode"
CONF_PHYSNETS = "physical_networks"
ANY_PHYSNET = "*"

# Notification event types (publisher id vio4wd.<host>).
EVENT_RELAY_CREATE = "vio4wd.relay.create"
EVENT_RELAY_DELETE = "vio4wd.relay.delete"
EVENT_RELAY_ERROR = "vio4wd.relay.error"
EVENT_VM_CONNECT = "vio4wd.vm.connect"
EVENT_VM_DISCONNECT = "vio4wd.vm.disconnect"


def socket_name(port_id: str) -> str:
    """The socket a port gets: ``vhu`` + the port id, 14 characters."""
    return (SOCKET_PREFIX + port_id)[:SOCKET_NAME_LEN]
