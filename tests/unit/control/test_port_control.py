# SPDX-License-Identifier: Apache-2.0
"""Port control requests: decoding and their translation into manager
requests (the data plane is not involved)."""
from __future__ import annotations

import errno
import os

import pytest

from vio4wd_agent import manager
from vio4wd_agent.conf.settings import VhostFlags
from vio4wd_agent.control import port_control as pc
from vio4wd_agent.control import protocol
from vio4wd_agent.vhostuser.sockets import SocketPolicy

R = protocol.PortControlRequest


class Recorder:
    def __init__(self) -> None:
        self.requests: list[object] = []

    def submit(self, request):  # type: ignore[no-untyped-def]
        import concurrent.futures
        self.requests.append(request)
        f: concurrent.futures.Future = concurrent.futures.Future()
        if isinstance(request, manager.Query):
            from vio4wd_agent.relay.model import RelaySpec
            f.set_result(RelaySpec(0, request.vhost_path or "/run/v/p",
                                   vf="net_null0",
                                   vf_label="0000:01:00.1"))
        else:
            f.set_result(None)
        return f


def control(dynamic: bool = False):  # type: ignore[no-untyped-def]
    flags = VhostFlags(client=False, jumbo=False, mrgbuf=True, tso=False,
                       link_follows_vf=False, max_queues=32, vf_queues=0)
    policy = SocketPolicy("/run/v", "vf%u.sock", os.getuid(), os.getgid(),
                          0o660)
    rec = Recorder()
    return pc.PortControl(rec, flags, policy, {"0000:01:00.1": "net_null0"},
                          dynamic, "zmq"), rec  # type: ignore[arg-type]


def run(ctl, data: bytes):  # type: ignore[no-untyped-def]
    handler = pc.PortControlHandler(ctl)
    out: list[bytes] = []
    handler.handle(data, out.append)
    assert len(out) == 1
    return protocol.PortControlResponse.FromString(out[0])


def msg(op, **kw):  # type: ignore[no-untyped-def]
    m = R(op=op)
    for p in kw.pop("pcis", []):
        m.pci_addrs.add(domain=p[0], bus=p[1], slot=p[2], function=p[3])
    for k, v in kw.items():
        setattr(m, k, v)
    return m.SerializePartialToString()


def test_add_maps_through_the_device_map():
    ctl, rec = control()
    answer = run(ctl, msg(R.ADD, virtio_id=3, pcis=[(0, 1, 0, 1)]))
    assert answer.status == answer.OK
    req = rec.requests[0]
    assert isinstance(req, manager.AddRelay)
    assert req.spec.vf == "net_null0" and req.spec.vf_label == "0000:01:00.1"
    assert req.spec.vhost_path == "/run/v/vf3.sock" and req.conditional
    assert req.persist and not req.allocate_id


def test_bond_add():
    ctl, rec = control()
    run(ctl, msg(R.ADD, virtio_id=4, pcis=[(0, 1, 0, 1), (0, 1, 0, 2)],
                 name="net_bonding4", mode=4))
    spec = rec.requests[0].spec
    assert spec.vf == "net_bonding4" and spec.bond_mode == 4
    assert spec.bond_members == ("net_null0", "0000:01:00.2")


def test_dynamic_socket_ops():
    ctl, rec = control(dynamic=True)
    run(ctl, msg(R.ADD_SOCK, vhost_path="/run/vm/vhu1", pcis=[(0, 1, 0, 1)],
                 conditional=False))
    add = rec.requests[0]
    assert add.allocate_id and add.spec.vhost_path == "/run/vm/vhu1"
    assert not add.conditional
    run(ctl, msg(R.REMOVE_SOCK, vhost_path="/run/vm/vhu1"))
    assert rec.requests[1] == manager.RemoveRelay(
        vhost_path="/run/vm/vhu1", source="zmq", conditional=True)
    answer = run(ctl, msg(R.QUERY_PCI, vhost_path="/run/vm/vhu1"))
    assert answer.query_string == "0000:01:00.1"


@pytest.mark.parametrize("data,code,text", [
    (b"\xff\xff", errno.EINVAL, "malformed"),
    (b"", errno.EINVAL, "no op"),
    (b"\x08\x0f", errno.EINVAL, "no op"),
    (msg(R.REMOVE, virtio_id=1), errno.EINVAL, "REMOVE needs the VF"),
    (msg(R.ADD_SOCK, vhost_path="/a", pcis=[(0, 1, 0, 1)]),
     errno.EOPNOTSUPP, "dynamic sockets"),
    (msg(R.ADD, virtio_id=1, pcis=[(0, 1, 32, 1)]), errno.EINVAL,
     "not a PCI address"),
    (msg(R.ADD, virtio_id=1, pcis=[(0, 1, 0, 1)] * 9, name="net_bonding1"),
     errno.EINVAL, "at most 8 members"),
    # A name with devargs options: refused, not cut at the comma.
    (msg(R.ADD, virtio_id=1, pcis=[(0, 1, 0, 1), (0, 1, 0, 2)],
         name="net_bonding1,mode=4"), errno.EINVAL, "no devargs options"),
    (msg(R.ADD, virtio_id=1, pcis=[(0, 1, 0, 1), (0, 1, 0, 2)],
         name="net_bonding"), errno.EINVAL, "followed by letters"),
])
def test_refusals(data, code, text):
    ctl, rec = control()
    answer = run(ctl, data)
    assert answer.status == answer.ERROR and answer.error_code == -code
    assert text in answer.error_code_source and rec.requests == []


PORT = "0b7e39d2-58a3-4c36-9a3b-1b2f6f0c9c11"
INST = "3c0f2a6e-7f7a-4a57-8d8e-0f1e2d3c4b5a"


def test_a_port_registration_needs_no_dynamic_sockets():
    """The os-vif plugin's ADD_SOCK names its port: it is Nova's claim,
    with the port, MAC, instance and the vhost-user side it asks for."""
    ctl, rec = control(dynamic=False)
    ans = run(ctl, msg(R.ADD_SOCK, vhost_path="/run/v/vhu0b7e39d2-58",
                       pcis=[(0, 1, 0, 1)], port_id=PORT.upper(),
                       mac="FA-16-3E-00-00-01", instance_uuid=INST,
                       vhost_client=True))
    assert ans.status == ans.OK, ans
    (req,) = rec.requests
    assert isinstance(req, manager.AddRelay) and req.source == "os-vif"
    assert (req.spec.port_id, req.spec.mac, req.spec.instance_uuid) == (
        PORT, "fa:16:3e:00:00:01", INST)
    assert req.spec.client and req.spec.vf == "net_null0"
    assert req.spec.vf_label == "0000:01:00.1" and req.allocate_id
    # by port alone: remove and query
    assert run(ctl, msg(R.REMOVE_SOCK, port_id=PORT)
               ).status == protocol.PortControlResponse.OK
    rm = rec.requests[-1]
    assert isinstance(rm, manager.RemoveRelay) and rm.port_id == PORT
    assert rm.vhost_path is None and rm.source == "os-vif"
    q = run(ctl, msg(R.QUERY_PCI, port_id=PORT))
    assert q.status == q.OK and q.query_string == "0000:01:00.1"


@pytest.mark.parametrize("fields,error", [
    (dict(port_id="not-a-uuid"), "port_id 'not-a-uuid' is not a UUID"),
    (dict(port_id=PORT, mac="fa:16:3e:00:00"), "is not a MAC address"),
    (dict(port_id=PORT, instance_uuid="x\n"), "instance_uuid"),
    (dict(mac="fa:16:3e:00:00:01"), None),     # plain ADD_SOCK: allowed?
])
def test_bad_port_fields_are_named(fields, error):
    ctl, rec = control(dynamic=True)
    ans = run(ctl, msg(R.ADD_SOCK, vhost_path="/run/v/x",
                       pcis=[(0, 1, 0, 1)], **fields))
    if error is None:
        assert ans.status == ans.OK, ans
        return
    assert ans.status == ans.ERROR and error in ans.error_code_source, ans
    assert ans.error_code == -errno.EINVAL and rec.requests == []


def test_port_id_only_where_it_means_something():
    ctl, rec = control(dynamic=True)
    ans = run(ctl, msg(R.ADD, virtio_id=1, pcis=[(0, 1, 0, 1)],
                       port_id=PORT))
    assert ans.status == ans.ERROR
    assert "ADD does not take a port_id" in ans.error_code_source
    ans = run(ctl, msg(R.REMOVE, virtio_id=1, pcis=[(0, 1, 0, 1)],
                       mac="fa:16:3e:00:00:01"))
    assert ans.status == ans.ERROR and "mac" in ans.error_code_source
    # without dynamic sockets, ADD_SOCK without a port is still refused
    ctl, rec = control(dynamic=False)
    ans = run(ctl, msg(R.ADD_SOCK, vhost_path="/run/v/x",
                       pcis=[(0, 1, 0, 1)]))
    assert ans.status == ans.ERROR and ans.error_code == -errno.EOPNOTSUPP
    assert "or a port_id" in ans.error_code_source and rec.requests == []
