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
            f.set_result(RelaySpec(0, request.vhost_path, vf="net_null0",
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
