# SPDX-License-Identifier: Apache-2.0
"""The ML2 mechanism driver's binding decisions, on Neutron's own base
class (a stand-in PortContext; the real one is in
tests/functional/test_neutron.py)."""
from __future__ import annotations

import logging

import pytest

pytest.importorskip("neutron")

from vio4wd_agent.neutron import constants as c  # noqa: E402
from vio4wd_agent.neutron.mech_driver import Vio4wdMechanismDriver  # noqa

PORT = "4f1c2d3e-5a6b-4c7d-8e9f-001122334455"


class Network:
    current = {"id": "net-1"}


class Context:
    def __init__(self, agents, segments, vnic=c.VNIC_TYPE) -> None:
        self.current = {"id": PORT, "binding:vnic_type": vnic,
                        "fixed_ips": [], "binding:host_id": "compute-1"}
        self.network = Network()
        self.segments_to_bind = segments
        self._agents = agents
        self.host = "compute-1"
        self.bound = None

    def host_agents(self, agent_type):
        assert agent_type == c.AGENT_TYPE
        return self._agents

    def set_binding(self, segment_id, vif_type, vif_details, status=None):
        self.bound = (segment_id, vif_type, vif_details)


def agent(alive=True, **conf):
    configurations = {"socket_dir": "/run/vio4wd/vhost",
                      "vhostuser_mode": "server",
                      "physical_networks": ["physnet1"]}
    configurations.update(conf)
    return {"agent_type": c.AGENT_TYPE, "alive": alive, "host": "compute-1",
            "configurations": configurations}


FLAT = {"id": "seg-flat", "network_type": "flat",
        "physical_network": "physnet1", "segmentation_id": None,
        "network_id": "net-1"}
VLAN = {"id": "seg-vlan", "network_type": "vlan",
        "physical_network": "physnet1", "segmentation_id": 101,
        "network_id": "net-1"}


def test_binds_with_the_agents_socket_dir_and_mode():
    ctx = Context([agent()], [FLAT])
    Vio4wdMechanismDriver().bind_port(ctx)
    segment, vif_type, details = ctx.bound
    assert (segment, vif_type) == ("seg-flat", "agilio_ovs")
    assert details["vhostuser_socket"] == "/run/vio4wd/vhost/vhu4f1c2d3e-5a"
    assert details["vhostuser_mode"] == "server"
    assert details["port_filter"] is False


def test_vlan_segments_carry_their_vlan():
    ctx = Context([agent(vhostuser_mode="client")], [VLAN])
    Vio4wdMechanismDriver().bind_port(ctx)
    assert ctx.bound[0] == "seg-vlan" and ctx.bound[2]["vlan"] == "101"
    assert ctx.bound[2]["vhostuser_mode"] == "client"


@pytest.mark.parametrize("ctx_args,log", [
    (([agent(alive=False)], [FLAT]), "its vio4wd agent is dead"),
    (([], [FLAT]), "no vio4wd agent reports from that host"),
    (([agent(physical_networks=["other"])], [FLAT]), None),
    (([agent()], [dict(FLAT, network_type="vxlan")]), None),
    (([agent(socket_dir="relative")], [FLAT]), "no absolute socket_dir"),
    (([agent(vhostuser_mode="sideways")], [FLAT]), "vhostuser_mode"),
])
def test_refusals(ctx_args, log, caplog):
    ctx = Context(*ctx_args)
    with caplog.at_level(logging.DEBUG):
        Vio4wdMechanismDriver().bind_port(ctx)
    assert ctx.bound is None
    if log:
        assert log in caplog.text


def test_any_physnet_and_other_vnic_types():
    ctx = Context([agent(physical_networks=["*"])],
                  [dict(FLAT, physical_network="elsewhere")])
    Vio4wdMechanismDriver().bind_port(ctx)
    assert ctx.bound is not None
    ctx = Context([agent()], [FLAT], vnic="normal")
    Vio4wdMechanismDriver().bind_port(ctx)
    assert ctx.bound is None
