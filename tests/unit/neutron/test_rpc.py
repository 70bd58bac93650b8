# SPDX-License-Identifier: Apache-2.0
"""The agent's RPC API through oslo.messaging's fake transport (one
process): answers, and error replies that name what was wrong."""
from __future__ import annotations

import os
import uuid

import oslo_messaging
import pytest
from oslo_config import cfg

from vio4wd_agent import manager as mgr
from vio4wd_agent.conf.settings import VhostFlags
from vio4wd_agent.control.port_control import PORT_SOURCE, PortControl
from vio4wd_agent.neutron import constants as c
from vio4wd_agent.neutron import register_messaging_opts, rpc
from vio4wd_agent.vhostuser.sockets import SocketPolicy
from tests.unit.test_manager import FakeEngine


@pytest.fixture
def agent(tmp_path):
    policy = SocketPolicy(str(tmp_path), "vf%u.sock", os.getuid(),
                          os.getgid(), 0o600)
    engine = FakeEngine()
    m = mgr.RelayManager(engine, policy)
    m.start()
    flags = VhostFlags(client=False, jumbo=False, mrgbuf=True, tso=False,
                       link_follows_vf=False, max_queues=32, vf_queues=0)
    control = PortControl(m, flags, policy,
                          {"0000:99:00.1": "net_null0"}, False, "zmq")
    conf = cfg.ConfigOpts()
    conf([])
    register_messaging_opts(conf)
    transport = oslo_messaging.get_rpc_transport(conf, url="fake://")
    server = oslo_messaging.get_rpc_server(
        transport, oslo_messaging.Target(topic=c.AGENT_TOPIC, server="h1"),
        [rpc.AgentEndpoint(m, engine, control, timeout=10)],
        executor="threading")
    server.start()
    yield rpc.AgentClient(transport, "h1", timeout=10), m, policy
    server.stop()
    server.wait()
    transport.cleanup()
    m.stop()


def test_plug_list_unplug(agent):
    client, m, policy = agent
    port = str(uuid.uuid4())
    sock = os.path.join(policy.directory, "vhu" + port[:11])
    relay = client.call("plug", port_id=port, vf="99:00.1", socket=sock,
                        mac="FA:16:3E:00:00:01")
    assert (relay["port_id"], relay["vf"], relay["socket"], relay["mac"]) \
        == (port, "0000:99:00.1", sock, "fa:16:3e:00:00:01")
    assert m.claims(PORT_SOURCE)
    again = client.call("plug", port_id=port, vf="0000:99:00.1", socket=sock)
    assert again["relay_id"] == relay["relay_id"]
    [listed] = client.call("list_relays")
    assert listed["port_id"] == port
    [stats] = client.call("stats", relay_id=relay["relay_id"])
    assert stats["relay_id"] == relay["relay_id"]
    assert client.call("unplug", port_id=port) == {"port_id": port}
    assert client.call("list_relays") == []
    client.call("unplug", port_id=port)       # again: fine


@pytest.mark.parametrize("method,kwargs,words", [
    ("plug", {"port_id": "nope", "vf": "99:00.1", "socket": "/x"},
     "port_id 'nope' is not a UUID"),
    ("plug", {"port_id": str(uuid.uuid4()), "vf": "net_tap0,iface=eth0",
              "socket": "/x"}, "is not a PCI address"),
    ("plug", {"port_id": str(uuid.uuid4()), "vf": "99:00.1",
              "socket": "/etc/x"}, "not directly in a socket directory"),
    ("plug", {"port_id": str(uuid.uuid4()), "vf": 7, "socket": "/x"},
     "vf 7 is not a string"),
    ("plug", {"port_id": str(uuid.uuid4()), "vf": "99:00.1", "socket": "/x",
              "vhost_client": "yes"}, "vhost_client 'yes' is not true"),
    ("plug", {"vf": "99:00.1"}, "missing a required argument: 'port_id'"),
    ("unplug", {"port_id": str(uuid.uuid4()), "force": True},
     "unexpected keyword argument 'force'"),
    ("stats", {"relay_id": 42}, "relay 42 does not exist"),
    ("stats", {"relay_id": True}, "relay_id True is not a number"),
])
def test_bad_requests_are_named_and_the_server_lives_on(agent, method,
                                                        kwargs, words):
    client, m, policy = agent
    # (the fake transport hands back the server's exception itself; a
    # broker, a RemoteError carrying its text)
    with pytest.raises(Exception) as err:
        client.call(method, **kwargs)
    assert words in str(err.value), err.value
    assert client.call("list_relays") == []


def test_unknown_method(agent):
    client, m, policy = agent
    with pytest.raises(Exception) as err:
        client.call("reboot_host")
    assert "does not support RPC method reboot_host" in str(err.value)
    assert client.call("list_relays") == []


def test_quiet_refusals_filter():
    import logging
    record = logging.LogRecord("oslo_messaging.rpc.server", logging.ERROR,
                               "x", 1, "Exception during message handling",
                               (), None)
    try:
        raise oslo_messaging.NoSuchMethod("reboot_host")
    except oslo_messaging.NoSuchMethod:
        import sys
        record.exc_info = sys.exc_info()
    assert rpc.QuietRefusals().filter(record)
    assert record.levelno == logging.WARNING and record.exc_info is None
    assert "reboot_host" in record.getMessage()
