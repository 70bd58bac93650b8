# SPDX-License-Identifier: Apache-2.0
"""The os-vif plugin without an agent: what it reads from Nova's objects,
what it refuses, and how it fails when nobody answers."""
from __future__ import annotations

import uuid
import warnings

import pytest

warnings.filterwarnings("ignore", category=DeprecationWarning)
os_vif = pytest.importorskip("os_vif")

from os_vif import exception as osv_exception, objects  # noqa: E402

from vio4wd_agent.osvif import plugin  # noqa: E402
from vio4wd_agent.osvif.agent_client import AgentClient, AgentError  # noqa: E402

os_vif.initialize()
PORT = str(uuid.uuid4())
VF = "0000:99:00.1"


def vif(**kw):  # type: ignore[no-untyped-def]
    profile = objects.vif.VIFPortProfileOVSRepresentor(
        interface_id=PORT, representor_name="tap" + PORT[:11],
        representor_address=VF)
    profile.datapath_offload = objects.vif.DatapathOffloadRepresentor(
        representor_name="tap" + PORT[:11], representor_address=VF)
    fields = dict(id=PORT, address="fa:16:3e:00:00:01", plugin="agilio_ovs",
                  path="/run/vio4wd/vhost/vhu" + PORT[:11], mode="client",
                  vif_name="tap" + PORT[:11], port_profile=profile)
    fields.update(kw)
    return objects.vif.VIFVHostUser(**fields)


def info():  # type: ignore[no-untyped-def]
    return objects.instance_info.InstanceInfo(uuid=str(uuid.uuid4()),
                                              name="vm", project_id="p")


def test_what_the_plugin_reads():
    p = plugin.port_of(vif(mode="server"), info(), "br-int")
    assert (p.port_id, p.vf, p.relay_client, p.bridge) == (
        PORT, VF, True, "br-int")
    assert not plugin.port_of(vif(), info(), "br-int").relay_client
    # the base profile with only a datapath offload
    base = objects.vif.VIFPortProfileBase()
    base.datapath_offload = objects.vif.DatapathOffloadRepresentor(
        representor_name="rep0", representor_address="0000:99:00.3")
    p = plugin.port_of(vif(port_profile=base), info(), "br-int")
    assert (p.vf, p.representor_name) == ("0000:99:00.3", "rep0")


@pytest.mark.parametrize("kw,error", [
    (dict(path="vhu-relative"), "is not absolute"),
    (dict(port_profile=objects.vif.VIFPortProfileBase()), "names no VF"),
])
def test_refusals(kw, error):
    with pytest.raises(plugin.BadVIF, match=error):
        plugin.port_of(vif(**kw), info(), "br-int")


def test_not_a_vhostuser_vif():
    other = objects.vif.VIFOpenVSwitch(id=PORT, plugin="agilio_ovs",
                                       address="fa:16:3e:00:00:01")
    with pytest.raises(plugin.BadVIF, match="VIFVHostUser only"):
        plugin.port_of(other, info(), "br-int")


def test_no_agent_is_a_plug_exception_at_once(tmp_path):
    from oslo_config import cfg
    group = "os_vif_agilio_ovs"
    cfg.CONF.set_override("port_control_endpoint",
                          "ipc://%s/absent" % tmp_path, group=group)
    try:
        with pytest.raises(osv_exception.PlugException,
                           match="does not exist"):
            os_vif.plug(vif(), info())
        with pytest.raises(osv_exception.UnplugException,
                           match="does not exist"):
            os_vif.unplug(vif(), info())
    finally:
        cfg.CONF.clear_override("port_control_endpoint", group=group)
    with pytest.raises(AgentError, match="does not exist"):
        AgentClient("ipc://%s/absent" % tmp_path, 1.0).request(None)


def test_describe_names_what_nova_sends():
    from vio4wd_agent.osvif.plugin import AgilioOvsPlugin, Vio4wdPlugin
    for cls in (AgilioOvsPlugin, Vio4wdPlugin):
        desc = cls.load(cls.NAME).describe()
        assert desc.plugin_name == cls.NAME
        (vinfo,) = desc.vif_info
        assert vinfo.vif_object_name == "VIFVHostUser"
        assert {p.profile_object_name for p in
                vinfo.supported_port_profiles} == {
            "VIFPortProfileOVSRepresentor", "VIFPortProfileBase"}
