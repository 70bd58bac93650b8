# SPDX-License-Identifier: Apache-2.0
"""The agent in a real Neutron: neutron's API and RPC server with ML2 and
vio4wd's mechanism driver, on MariaDB and RabbitMQ, all started here.

The agent shows up alive in the API with its configurations; a
virtio-forwarder port bound to this host gets vif_type agilio_ovs and a
socket in the agent's directory; Nova's own conversion of that binding
plugged through os-vif makes the relay; the port goes ACTIVE once a VM
connects and DOWN when it goes; notifications and the agent's RPC API
over the real broker; a killed agent is dead to Neutron, which then
refuses to bind there, and a restarted one resyncs its ports' status.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import uuid
from typing import Any, Iterator

import pytest

from tests.functional import neutron_stack, novavif, util
from tests.functional.agentproc import native_agent

NULL_VF = "0000:99:00.2"
VF2 = "0000:99:00.3"
PHYSNET = "physnet1"
CTL = os.path.join(os.path.dirname(sys.executable), "vio4wd-ctl")


@pytest.fixture(scope="module")
def neutron() -> Iterator[neutron_stack.NeutronStack]:
    stack = neutron_stack.NeutronStack(tempfile.mkdtemp(prefix="v4wneutron-"))
    try:
        stack.start()
    except Exception:
        stack.cleanup()
        raise
    yield stack
    stack.cleanup()


@pytest.fixture(scope="module")
def network(neutron) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    status, body = neutron.request("POST", "/v2.0/networks", {"network": {
        "name": "v4wnet", "project_id": "v4wtest",
        "provider:network_type": "flat",
        "provider:physical_network": PHYSNET}})
    assert status == 201, body
    return body["network"]


class Notifications:
    """Every notification on the bus, as a consumer of Neutron's
    notifications topic sees it."""

    def __init__(self, url: str) -> None:
        import oslo_messaging
        from oslo_config import cfg
        self.events: list[tuple[str, str, dict[str, Any]]] = []
        self._lock = threading.Lock()
        from vio4wd_agent.neutron import register_messaging_opts
        conf = cfg.ConfigOpts()
        conf([])
        register_messaging_opts(conf)
        transport = oslo_messaging.get_notification_transport(conf, url=url)
        self._listener = oslo_messaging.get_notification_listener(
            transport, [oslo_messaging.Target(topic="notifications")],
            [self], executor="threading")
        self._transport = transport
        self._listener.start()

    def info(self, ctxt, publisher_id, event_type, payload,  # type: ignore
             metadata):
        with self._lock:
            self.events.append((publisher_id, event_type, payload))

    error = info

    def of(self, event_type: str) -> list[tuple[str, dict[str, Any]]]:
        with self._lock:
            return [(p, e) for p, t, e in self.events if t == event_type]

    def stop(self) -> None:
        self._listener.stop()
        self._listener.wait()
        self._transport.cleanup()


@pytest.fixture(scope="module")
def notifications(neutron) -> Iterator[Notifications]:  # type: ignore
    n = Notifications(neutron.transport_url)
    yield n
    n.stop()


def agent_config(transport_url: str, host: str) -> str:
    return textwrap.dedent("""\
        [DEFAULT]
        host = %s
        transport_url = %s
        [neutron]
        report_interval = 2
        status_interval = 0.5
        rpc_timeout = 5
        physical_networks = %s
        vhostuser_mode = client
        [relay]
        device_map = %s=net_null91
        device_map = %s=net_null92
        """) % (host, transport_url, PHYSNET, NULL_VF, VF2)


@pytest.fixture
def agent(tmp_path, cpus, hugepage_dir, neutron):  # type: ignore
    host = "v4wtest-%s" % uuid.uuid4().hex[:8]
    a = native_agent(tmp_path, cpus, hugepage_dir,
                     agent_config(neutron.transport_url, host), "neutron")
    a.host = host
    a.start().wait_ready()
    novavif.configure(port_control_endpoint=a.ep("port_control"),
                      timeout=30.0)
    yield a
    if a.proc is not None and a.proc.poll() is None:
        a.stop()
    novavif.configure()


def our_agent(neutron, host):  # type: ignore[no-untyped-def]
    return next((a for a in neutron.agents() if a["host"] == host), None)


def alive(neutron, host):  # type: ignore[no-untyped-def]
    def check() -> dict[str, Any] | None:
        a = our_agent(neutron, host)
        return a if a is not None and a["alive"] else None
    return util.wait_for(check, what="the agent alive in Neutron")


def create_port(neutron, network, host, vf):  # type: ignore
    status, body = neutron.request("POST", "/v2.0/ports", {"port": {
        "network_id": network["id"], "project_id": "v4wtest",
        "device_owner": "compute:nova", "device_id": str(uuid.uuid4()),
        "binding:vnic_type": "virtio-forwarder", "binding:host_id": host,
        "binding:profile": {"pci_slot": vf,
                            "physical_network": PHYSNET}}})
    assert status == 201, body
    return body["port"]


def port_status(neutron, port_id: str) -> str:  # type: ignore
    return neutron.get("/v2.0/ports/%s" % port_id)["port"]["status"]


def wait_status(neutron, port_id: str, want: str) -> None:  # type: ignore
    util.wait_for(lambda: port_status(neutron, port_id) == want,
                  what="port %s %s in Neutron" % (port_id, want))


def nova_port(port: dict[str, Any]) -> novavif.Port:
    """What Nova makes of the port as Neutron bound it."""
    details = port["binding:vif_details"]
    return novavif.Port(socket=details["vhostuser_socket"],
                        mode=details["vhostuser_mode"],
                        pci_slot=port["binding:profile"]["pci_slot"],
                        mac=port["mac_address"], port_id=port["id"])


def plug(port: novavif.Port) -> None:
    import os_vif
    _, info = novavif.instance()
    os_vif.plug(port.osvif(), info)


def ctl(neutron, host, *args: str) -> subprocess.CompletedProcess:  # type: ignore
    return subprocess.run([CTL, "--host", host, "--transport-url",
                           neutron.transport_url, *args],
                          capture_output=True, text=True, timeout=120)


def test_bound_plugged_active_down(neutron, network, notifications, agent,
                                   vm_factory):
    reported = alive(neutron, agent.host)
    conf = reported["configurations"]
    assert reported["agent_type"] == "vio4wd agent"
    assert reported["binary"] == "vio4wd-agent"
    assert conf["socket_dir"] == str(agent.socket_dir)
    assert conf["vhostuser_mode"] == "client"
    assert conf["physical_networks"] == [PHYSNET]
    assert conf["relays"] == 0 and conf["max_relays"] > 0
    assert conf["worker_cpus"] and conf["version"]

    port = create_port(neutron, network, agent.host, NULL_VF)
    assert port["binding:vif_type"] == "agilio_ovs", port
    details = port["binding:vif_details"]
    assert details["vhostuser_socket"] == os.path.join(
        str(agent.socket_dir), ("vhu" + port["id"])[:14])
    assert details["vhostuser_mode"] == "client"
    assert port["status"] == "DOWN"

    # Nova plugs (its own conversion of the binding), then starts QEMU.
    nport = nova_port(port)
    plug(nport)
    util.wait_for(lambda: our_agent(neutron, agent.host)
                  ["configurations"]["relays"] == 1,
                  what="the relay in the agent's report")
    assert port_status(neutron, port["id"]) == "DOWN"   # no VM yet
    # QEMU on the socket with the guest still paused (Nova resumes it
    # only after network-vif-plugged): a bare vhost-user connection, no
    # device made ready, is a VM connected.
    paused = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    paused.connect(nport.socket)
    wait_status(neutron, port["id"], "ACTIVE")
    paused.close()
    wait_status(neutron, port["id"], "DOWN")
    vm = vm_factory(nport.socket)
    wait_status(neutron, port["id"], "ACTIVE")
    assert our_agent(neutron, agent.host)["configurations"]["vfs_in_use"] \
        == [NULL_VF]
    vm.stop()
    wait_status(neutron, port["id"], "DOWN")

    # Notifications, from vio4wd.<host>, naming relay, port, VF, socket.
    publisher = "vio4wd.%s" % agent.host
    for event in ("vio4wd.relay.create", "vio4wd.vm.connect",
                  "vio4wd.vm.disconnect"):
        util.wait_for(lambda: [e for p, e in notifications.of(event)
                               if p == publisher and
                               e["port_id"] == port["id"]],
                      what="notification %s" % event)
    _, created = notifications.of("vio4wd.relay.create")[-1]
    assert created["vf"] == NULL_VF and created["socket"] == nport.socket
    assert isinstance(created["relay_id"], int)

    # The agent's RPC API over the bus, from a "controller".
    out = ctl(neutron, agent.host, "list")
    assert out.returncode == 0, out.stderr
    [relay] = json.loads(out.stdout)
    assert (relay["port_id"], relay["vf"], relay["socket"]) == (
        port["id"], NULL_VF, nport.socket)
    out = ctl(neutron, agent.host, "query_pci", "--port-id", port["id"])
    assert (out.returncode, out.stdout.strip()) == (0, NULL_VF), out.stderr
    out = ctl(neutron, agent.host, "stats")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)[0]["port_id"] == port["id"]

    # Plug and unplug by port, from there.
    other = str(uuid.uuid4())
    sock = os.path.join(str(agent.socket_dir), ("vhu" + other)[:14])
    out = ctl(neutron, agent.host, "add_sock", "--port-id", other,
              "--pci-addr", VF2, "--vhost-path", sock)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["port_id"] == other
    assert os.path.exists(sock)
    out = ctl(neutron, agent.host, "remove_sock", "--port-id", other)
    assert out.returncode == 0, out.stderr
    util.wait_for(lambda: [e for _, e in
                           notifications.of("vio4wd.relay.delete")
                           if e["port_id"] == other],
                  what="the relay.delete notification")

    # Bad requests over the bus: an error reply naming what was wrong.
    out = ctl(neutron, agent.host, "add_sock", "--port-id", other,
              "--pci-addr", "0000:99:00.7", "--vhost-path", "/etc/passwd")
    assert out.returncode == 1 and "/etc/passwd" in out.stderr, out.stderr
    out = ctl(neutron, agent.host, "add_sock", "--port-id", "not-a-uuid",
              "--pci-addr", VF2, "--vhost-path", sock)
    assert out.returncode == 1 and "not-a-uuid" in out.stderr, out.stderr
    assert "is not a UUID" in out.stderr
    _bad_rpc(neutron, agent.host)
    # A failed add is an error notification with the reason.
    util.wait_for(lambda: notifications.of("vio4wd.relay.error"),
                  what="a relay.error notification")

    # The port and its relay live on through all of that.
    out = ctl(neutron, agent.host, "list")
    assert [r["port_id"] for r in json.loads(out.stdout)] == [port["id"]]
    assert agent.proc.poll() is None
    assert "Traceback" not in agent.output()


def _bad_rpc(neutron, host: str) -> None:  # type: ignore[no-untyped-def]
    """An unknown method, a version the agent does not serve and bad
    arguments get error replies; the server keeps serving."""
    import oslo_messaging
    from oslo_config import cfg
    from vio4wd_agent.neutron import register_messaging_opts, rpc
    conf = cfg.ConfigOpts()
    conf([])
    register_messaging_opts(conf)
    transport = oslo_messaging.get_rpc_transport(conf,
                                                 url=neutron.transport_url)
    try:
        client = rpc.AgentClient(transport, host, timeout=30)
        with pytest.raises(oslo_messaging.RemoteError) as err:
            client.call("format_disk")
        assert "format_disk" in str(err.value)
        newer = rpc.AgentClient(transport, host, timeout=30, version="2.0")
        with pytest.raises(oslo_messaging.RemoteError) as err:
            newer.call("list_relays")
        assert "UnsupportedVersion" in err.value.exc_type, err.value
        with pytest.raises(oslo_messaging.RemoteError) as err:
            client.call("stats", relay_id="all")
        assert "relay_id 'all' is not a number" in err.value.value
        with pytest.raises(oslo_messaging.RemoteError) as err:
            client.call("plug", port_id=str(uuid.uuid4()), vf="net_tap0",
                        socket="/tmp/x")
        assert "vf 'net_tap0' is not a PCI address" in err.value.value
        with pytest.raises(oslo_messaging.RemoteError) as err:
            client.call("plug", port=str(uuid.uuid4()))
        assert "plug: missing a required argument: 'port_id'" in \
            err.value.value, err.value.value
        assert client.call("list_relays") is not None
    finally:
        transport.cleanup()


def test_dead_agent_refused_then_resynced(neutron, network, agent,
                                          vm_factory):
    alive(neutron, agent.host)
    port = create_port(neutron, network, agent.host, NULL_VF)
    nport = nova_port(port)
    plug(nport)
    vm = vm_factory(nport.socket)
    wait_status(neutron, port["id"], "ACTIVE")

    agent.kill()
    util.wait_for(lambda: not our_agent(neutron, agent.host)["alive"],
                  timeout=neutron_stack.AGENT_DOWN_TIME + util.DEADLINE,
                  what="Neutron calling the killed agent dead")
    # No binding on a host whose agent is dead, and Neutron's log says why.
    refused = create_port(neutron, network, agent.host, VF2)
    assert refused["binding:vif_type"] == "binding_failed", refused
    util.wait_for(lambda: "not binding port %s on host %s: its vio4wd "
                  "agent is dead" % (refused["id"], agent.host)
                  in neutron.log(), what="the refusal in Neutron's log")
    # The VM goes while nobody can tell Neutron.
    vm.stop()
    assert port_status(neutron, port["id"]) == "ACTIVE"

    agent.start().wait_ready()
    alive(neutron, agent.host)
    # The restored relay has no VM: the resync says so.
    wait_status(neutron, port["id"], "DOWN")
    vm_factory(nport.socket)
    wait_status(neutron, port["id"], "ACTIVE")
    assert "Traceback" not in agent.output()


def test_a_dead_broker_costs_nothing_but_reports(tmp_path, cpus,
                                                 hugepage_dir, vm_factory):
    """No broker at the transport's address: the agent starts, plugs,
    relays and stops as ever; the reports say what is wrong."""
    url = "rabbit://guest:guest@127.0.0.1:%d/" % neutron_stack.free_port()
    a = native_agent(tmp_path, cpus, hugepage_dir,
                     agent_config(url, "v4wtest-nobroker"), "nobroker")
    a.start().wait_ready()
    novavif.configure(port_control_endpoint=a.ep("port_control"),
                      timeout=30.0)
    try:
        port = novavif.Port(socket=os.path.join(str(a.socket_dir),
                                                "vhu-nobroker"),
                            mode="client", pci_slot=NULL_VF)
        plug(port)
        vm = vm_factory(port.socket)
        util.wait_for(lambda: "state report: no answer from neutron-server"
                      in a.output(), what="the missing answer logged")
        util.wait_for(lambda: vm.port_stats() is not None,
                      what="the VM up")
        from tests.functional.test_osvif import relays
        util.wait_for(lambda: relays(a)[port.port_id].active,
                      what="the relay forwarding")
        assert a.proc.poll() is None
    finally:
        novavif.configure()
    assert a.stop(timeout=60) == 0
    assert "vio4wd agent stopped" in a.output()
