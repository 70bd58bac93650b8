# SPDX-License-Identifier: Apache-2.0
"""Port control of a running agent: every operation through vio4wd-ctl
and through raw protobuf messages on the wire, bonds, conditional
requests, and dynamic sockets with a testpmd VM passing traffic."""
from __future__ import annotations

import errno
import textwrap

import pytest
import zmq

from vio4wd_agent.control import client, protocol
from tests.functional import util
from tests.functional.agentproc import native_agent

DEVICES = """\
    [relay]
    device_map = 0000:99:00.1=net_null91
    device_map = 0000:99:00.2=net_null92
    device_map = 0000:99:01.0=net_tap93,iface=v4pc0
    device_map = 0000:99:01.1=net_tap94,iface=v4pc1
    """


@pytest.fixture
def agent(tmp_path, cpus, hugepage_dir):
    a = native_agent(tmp_path, cpus, hugepage_dir, DEVICES, "pc")
    a.start().wait_ready()
    yield a
    a.stop()


@pytest.fixture
def dynamic_agent(tmp_path, cpus, hugepage_dir):
    a = native_agent(tmp_path, cpus, hugepage_dir, textwrap.dedent(DEVICES) +
                     "[vhost]\ndynamic_sockets = true\n", "dyn")
    a.start().wait_ready()
    yield a
    a.stop()


def stats(agent, relay_ids=()):  # type: ignore[no-untyped-def]
    req = protocol.StatsRequest()
    req.relay.extend(relay_ids)
    return client.request(agent.ep("stats"), req, protocol.StatsResponse)


def relay_ids(agent) -> list[int]:  # type: ignore[no-untyped-def]
    return [r.id for r in stats(agent).relay]


def raw(agent, data: bytes):  # type: ignore[no-untyped-def]
    """Send bytes as they are; parse the answer."""
    sock = zmq.Context.instance().socket(zmq.REQ)
    sock.setsockopt(zmq.RCVTIMEO, 5000)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(agent.ep("port_control"))
    try:
        sock.send(data)
        answer = protocol.PortControlResponse()
        answer.ParseFromString(sock.recv())
        return answer
    finally:
        sock.close()


def test_every_op_through_ctl(agent, vm_factory):
    ok = agent.ctl("add", "--virtio-id", "3", "--pci-addr", "0000:99:00.1")
    assert ok.returncode == 0, ok.stderr
    sock = agent.socket_dir / "virtio-forwarder3.sock"
    assert sock.exists() and relay_ids(agent) == [3]
    vm = vm_factory(str(sock))
    vm.forward("rxonly")
    util.wait_for(lambda: vm.port_stats().rx_packets > 1000,
                  what="traffic through the relay port control made")

    again = agent.ctl("add", "--virtio-id", "3", "--pci-addr", "99:00.1")
    assert again.returncode == 1
    assert "relay 3 already exists" in again.stderr and "EEXIST" in again.stderr
    assert agent.ctl("add", "--virtio-id", "3", "--pci-addr", "99:00.1",
                     "--conditional").returncode == 0
    other = agent.ctl("add", "--virtio-id", "3", "--pci-addr", "99:00.2",
                      "--conditional")
    assert other.returncode == 1 and "already exists" in other.stderr

    wrong = agent.ctl("remove", "--virtio-id", "3", "--pci-addr", "99:00.2")
    assert wrong.returncode == 1 and "carries VF" in wrong.stderr
    assert relay_ids(agent) == [3]
    assert agent.ctl("remove", "--virtio-id", "3", "--pci-addr",
                     "99:00.1").returncode == 0
    util.wait_for(lambda: not sock.exists(), what="socket removed")
    gone = agent.ctl("remove", "--virtio-id", "3", "--pci-addr", "99:00.1")
    assert gone.returncode == 1 and "does not exist" in gone.stderr
    assert agent.ctl("remove", "--virtio-id", "3", "--pci-addr", "99:00.1",
                     "--conditional").returncode == 0

    bond = agent.ctl("add", "--virtio-id", "4", "--pci-addr", "99:01.0",
                     "--pci-addr", "99:01.1", "--name", "net_bonding4",
                     "--mode", "1")
    assert bond.returncode == 0, bond.stderr
    r = stats(agent, [4]).relay[0]
    assert r.vf.pci_addr_str == "net_bonding4"
    q = agent.ctl("query_pci", "--vhost-path",
                  str(agent.socket_dir / "virtio-forwarder4.sock"))
    assert q.returncode == 0 and q.stdout.strip() == "net_bonding4"

    static = agent.ctl("add_sock", "--vhost-path", "/tmp/x.sock",
                       "--pci-addr", "99:00.2")
    assert static.returncode == 1 and "dynamic sockets" in static.stderr
    bad = agent.ctl("add", "--virtio-id", "5", "--pci-addr", "99:zz.1")
    assert bad.returncode == 1 and "not a PCI address" in bad.stderr
    assert relay_ids(agent) == [4]


def _req(op: int, **kw) -> object:  # type: ignore[no-untyped-def]
    msg = protocol.PortControlRequest()
    msg.op = op
    pcis = kw.pop("pcis", [])
    for dom, bus, slot, fn in pcis:
        msg.pci_addrs.add(domain=dom, bus=bus, slot=slot, function=fn)
    for key, value in kw.items():
        setattr(msg, key, value)
    return msg


R = protocol.PortControlRequest


@pytest.mark.parametrize("msg,code,text", [
    (_req(R.ADD, pcis=[(0, 0x99, 0, 1)]), errno.EINVAL, "needs virtio_id"),
    (_req(R.ADD, virtio_id=6), errno.EINVAL, "needs a PCI address"),
    (_req(R.ADD, virtio_id=6, pcis=[(0, 0x99, 0, 1)], name="net_bonding6"),
     errno.EINVAL, "needs at least 2 PCI addresses"),
    (_req(R.ADD, virtio_id=6, pcis=[(0, 0x99, 0, 1), (0, 0x99, 0, 2)]),
     errno.EINVAL, "give its name"),
    (_req(R.ADD, virtio_id=6, pcis=[(0, 0x99, 0, 1), (0, 0x99, 0, 2)],
          name="bond6"), errno.EINVAL, "must be net_bonding followed by"),
    (_req(R.ADD, virtio_id=6, pcis=[(0, 0x99, 0, 1), (0, 0x99, 0, 2)],
          name="net_bonding6", mode=9), errno.EINVAL, "bond mode 9"),
    (_req(R.ADD, virtio_id=6, pcis=[(0, 0x100, 0, 1)]), errno.EINVAL,
     "not a PCI address"),
    (_req(R.ADD, virtio_id=6, pcis=[(0, 0x99, 0, 5)]), errno.ENODEV,
     "0000:99:00.5"),
    (_req(R.QUERY_PCI), errno.EINVAL, "needs vhost_path"),
    (_req(R.QUERY_PCI, vhost_path="relative.sock"), errno.EINVAL,
     "not an absolute path"),
    (_req(R.QUERY_PCI, vhost_path="/nowhere.sock"), errno.ENOENT,
     "no relay serves socket /nowhere.sock"),
    (_req(R.REMOVE_SOCK, vhost_path="/x.sock"), errno.EOPNOTSUPP,
     "needs dynamic sockets"),
])
def test_raw_requests_answered(agent, msg, code, text):
    answer = raw(agent, msg.SerializePartialToString())
    assert answer.status == answer.ERROR
    assert answer.error_code == -code, answer
    assert text in answer.error_code_source, answer


def test_raw_request_defaults(agent):
    # conditional is true when the client does not set it: a second,
    # identical ADD is OK.
    msg = _req(R.ADD, virtio_id=7, pcis=[(0, 0x99, 0, 2)])
    for _ in range(2):
        assert raw(agent, msg.SerializePartialToString()).status == \
            protocol.PortControlResponse.OK
    msg.conditional = False
    answer = raw(agent, msg.SerializePartialToString())
    assert answer.status == answer.ERROR and answer.error_code == -17


def test_dynamic_sockets_with_traffic(dynamic_agent, vm_factory, tmp_path):
    a = dynamic_agent
    path = str(a.socket_dir / "vhu-port1")
    add = a.ctl("add_sock", "--vhost-path", path, "--pci-addr", "99:00.1")
    assert add.returncode == 0, add.stderr
    q = a.ctl("query_pci", "--vhost-path", path)
    assert q.stdout.strip() == "0000:99:00.1"
    assert a.ctl("add_sock", "--vhost-path", path, "--pci-addr", "99:00.1",
                 "--conditional").returncode == 0
    clash = a.ctl("add_sock", "--vhost-path", path, "--pci-addr", "99:00.2")
    assert clash.returncode == 1 and "already exists" in clash.stderr

    vm = vm_factory(path)
    vm.forward("rxonly")
    util.wait_for(lambda: vm.port_stats().rx_packets > 1000,
                  what="traffic on the dynamic socket")
    r = stats(a).relay[0]
    assert r.vhost.vhost_socket_name == path and r.active

    second = str(a.socket_dir / "vhu-port2")
    assert a.ctl("add_sock", "--vhost-path", second, "--pci-addr",
                 "99:00.2").returncode == 0
    assert sorted(relay_ids(a)) == [0, 1]

    assert a.ctl("remove_sock", "--vhost-path", path, "--pci-addr",
                 "99:00.1").returncode == 0
    util.wait_for(lambda: len(relay_ids(a)) == 1, what="relay removed")
    assert a.ctl("query_pci", "--vhost-path", path).returncode == 1
    assert a.ctl("remove_sock", "--vhost-path", path,
                 "--conditional").returncode == 0
