# SPDX-License-Identifier: Apache-2.0
"""Port control: virtio-forwarder's PortControlRequest, turned into
RelayManager requests.

Rules (the protocol's): ADD and REMOVE name a relay by ``virtio_id``;
several PCI addresses make a bond, which needs a ``name`` (and may give a
``mode``); ADD_SOCK and REMOVE_SOCK pair a VF with a vhost-user socket and
exist only with dynamic sockets; QUERY_PCI says which VF serves a socket.
``conditional`` (default true) turns requests that change nothing into OK.
Every error is answered with status ERROR, a negative errno and a readable
``error_code_source``.
"""
from __future__ import annotations

import concurrent.futures
import dataclasses
import errno
import logging
import os
import re
import uuid
from typing import Any, Callable

from google.protobuf.message import DecodeError

from vio4wd_agent import exception, manager
from vio4wd_agent.conf.parsing import check_bond_name
from vio4wd_agent.conf.settings import VhostFlags, resolve_vf
from vio4wd_agent.control import protocol
from vio4wd_agent.control.server import Reply
from vio4wd_agent.relay.model import MAX_BOND, MAX_RELAY_ID
from vio4wd_agent.vhostuser.sockets import SocketPolicy

LOG = logging.getLogger(__name__)

Req = protocol.PortControlRequest
OPS = {Req.ADD: "ADD", Req.REMOVE: "REMOVE", Req.ADD_SOCK: "ADD_SOCK",
       Req.REMOVE_SOCK: "REMOVE_SOCK", Req.QUERY_PCI: "QUERY_PCI"}
# Registrations naming a Neutron port (the os-vif plugin) are this
# source's claims: Nova's, whichever client carried them.
PORT_SOURCE = "os-vif"
_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")


class BadRequest(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclasses.dataclass(frozen=True)
class PortRequest:
    """A validated port-control request, independent of its wire form."""

    op: str
    virtio_id: int | None = None
    pci_addrs: tuple[str, ...] = ()
    name: str | None = None
    mode: int | None = None
    vhost_path: str | None = None
    conditional: bool = True
    port_id: str | None = None
    mac: str | None = None
    instance_uuid: str | None = None
    vhost_client: bool | None = None


def pci_string(addr: Any, index: int) -> str:
    for field in ("domain", "bus", "slot", "function"):
        if not addr.HasField(field):
            raise BadRequest(errno.EINVAL, "pci_addrs[%d] has no %s"
                             % (index, field))
    if addr.domain > 0xFFFF or addr.bus > 0xFF or addr.slot > 0x1F or \
            addr.function > 7:
        raise BadRequest(errno.EINVAL, "pci_addrs[%d] is not a PCI address: "
                         "%x:%x:%x.%x" % (index, addr.domain, addr.bus,
                                          addr.slot, addr.function))
    return "%04x:%02x:%02x.%x" % (addr.domain, addr.bus, addr.slot,
                                  addr.function)


def _text(msg: Any, field: str) -> str | None:
    """A string field, or None if unset.  proto2 does not check UTF-8 on
    the wire; a field that is not valid UTF-8 is refused here."""
    if not msg.HasField(field):
        return None
    value = getattr(msg, field)
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            raise BadRequest(errno.EINVAL, "%s is not valid UTF-8"
                             % field) from None
    return value


def check_uuid(value: str | None, field: str) -> str | None:
    if value is None:
        return None
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise BadRequest(errno.EINVAL, "%s %r is not a UUID"
                         % (field, value[:64])) from None


def check_mac(value: str | None) -> str | None:
    if value is None:
        return None
    mac = value.strip().lower().replace("-", ":")
    if not _MAC.match(mac):
        raise BadRequest(errno.EINVAL, "mac %r is not a MAC address "
                         "(52:54:00:12:34:56)" % value[:64])
    return mac


def decode(data: bytes) -> PortRequest:
    msg = Req()
    try:
        msg.MergeFromString(data)
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise BadRequest(errno.EINVAL, "malformed request: %s" % exc) from None
    if not msg.HasField("op"):
        raise BadRequest(errno.EINVAL, "no op, or an unknown one")
    return PortRequest(
        op=OPS[msg.op],
        virtio_id=msg.virtio_id if msg.HasField("virtio_id") else None,
        pci_addrs=tuple(pci_string(a, i)
                        for i, a in enumerate(msg.pci_addrs)),
        name=_text(msg, "name"),
        mode=msg.mode if msg.HasField("mode") else None,
        vhost_path=_text(msg, "vhost_path"),
        conditional=msg.conditional,
        port_id=check_uuid(_text(msg, "port_id"), "port_id"),
        mac=check_mac(_text(msg, "mac")),
        instance_uuid=check_uuid(_text(msg, "instance_uuid"),
                                 "instance_uuid"),
        vhost_client=msg.vhost_client if msg.HasField("vhost_client")
        else None)


def response(code: int = 0, source: str = "", query: str | None = None
             ) -> bytes:
    out = protocol.PortControlResponse()
    if code == 0:
        out.status = out.OK
    else:
        out.status = out.ERROR
        out.error_code = -abs(code)
        out.error_code_source = source
    if query is not None:
        out.query_string = query
    return out.SerializeToString()


def error_code(exc: BaseException) -> int:
    if isinstance(exc, exception.EngineError):
        return exc.errno
    if isinstance(exc, exception.ConfigError):
        return errno.EINVAL
    if isinstance(exc, exception.Vio4wdException):
        return errno.EBUSY
    return errno.EIO


class PortControl:
    """Turns PortRequests into manager requests; shared by the ZeroMQ
    server and the IPC directory."""

    def __init__(self, mgr: manager.RelayManager, flags: VhostFlags,
                 policy: SocketPolicy, device_map: dict[str, str],
                 dynamic_sockets: bool, source: str) -> None:
        self.manager = mgr
        self.flags = flags
        self.policy = policy
        self.device_map = device_map
        self.dynamic = dynamic_sockets
        self.source = source

    def _device(self, req: PortRequest) -> tuple[str, str, tuple[str, ...]]:
        """(vf, vf_label, bond members) of a request."""
        if len(req.pci_addrs) > MAX_BOND:
            raise BadRequest(errno.EINVAL, "a bond has at most %d members, "
                             "%d given" % (MAX_BOND, len(req.pci_addrs)))
        if req.name is not None and len(req.pci_addrs) < 2:
            raise BadRequest(errno.EINVAL, "bond %s needs at least 2 PCI "
                             "addresses, %d given" % (req.name,
                                                      len(req.pci_addrs)))
        if len(req.pci_addrs) > 1:
            if req.name is None:
                raise BadRequest(errno.EINVAL, "%d PCI addresses make a "
                                 "bond: give its name" % len(req.pci_addrs))
            try:
                check_bond_name(req.name)
            except ValueError as exc:
                raise BadRequest(errno.EINVAL, str(exc)) from None
            return req.name, req.name, tuple(
                resolve_vf(p, self.device_map) for p in req.pci_addrs)
        if not req.pci_addrs:
            return "", "", ()
        pci = req.pci_addrs[0]
        return resolve_vf(pci, self.device_map), pci, ()

    def _request(self, req: PortRequest) -> manager.Request:
        if req.mode is not None and not 0 <= req.mode <= 6:
            raise BadRequest(errno.EINVAL, "bond mode %d is not 0-6" %
                             req.mode)
        port = req.port_id is not None
        if (req.mac or req.instance_uuid or req.vhost_client is not None) \
                and not port and req.op != "ADD_SOCK":
            raise BadRequest(errno.EINVAL, "mac, instance_uuid and "
                             "vhost_client belong to ADD_SOCK or to a "
                             "port's registration (port_id)")
        if port and req.op not in ("ADD_SOCK", "REMOVE_SOCK", "QUERY_PCI"):
            raise BadRequest(errno.EINVAL, "%s does not take a port_id "
                             "(ADD_SOCK, REMOVE_SOCK and QUERY_PCI do)"
                             % req.op)
        # A port's registration names its socket itself, whatever the
        # agent does with the sockets of numbered relays.
        if req.op in ("ADD_SOCK", "REMOVE_SOCK") and not self.dynamic and \
                not port:
            raise BadRequest(errno.EOPNOTSUPP, "%s needs dynamic sockets "
                             "(VIRTIOFWD_DYNAMIC_SOCKETS / [vhost] "
                             "dynamic_sockets), or a port_id" % req.op)
        if req.op in ("ADD", "REMOVE") and req.virtio_id is None:
            raise BadRequest(errno.EINVAL, "%s needs virtio_id" % req.op)
        if req.virtio_id is not None and req.virtio_id > MAX_RELAY_ID:
            raise BadRequest(errno.EINVAL, "virtio_id %d is out of range "
                             "(0-%d)" % (req.virtio_id, MAX_RELAY_ID))
        if req.op in ("ADD_SOCK", "REMOVE_SOCK", "QUERY_PCI"):
            by_port = port and req.op != "ADD_SOCK"
            if not req.vhost_path and not by_port:
                raise BadRequest(errno.EINVAL, "%s needs vhost_path%s"
                                 % (req.op, " (or a port_id)"
                                    if req.op != "ADD_SOCK" else ""))
            if req.vhost_path is not None and (
                    not os.path.isabs(req.vhost_path) or
                    "\0" in req.vhost_path):
                raise BadRequest(errno.EINVAL, "vhost_path %r is not an "
                                 "absolute path" % req.vhost_path)
        source = PORT_SOURCE if port else self.source
        if req.op == "QUERY_PCI":
            return manager.Query(req.vhost_path, port_id=req.port_id)
        vf, label, members = self._device(req)
        if req.op in ("ADD", "ADD_SOCK") and not vf:
            raise BadRequest(errno.EINVAL, "%s needs a PCI address" % req.op)
        if req.op == "REMOVE" and not vf:
            raise BadRequest(errno.EINVAL, "REMOVE needs the VF's PCI "
                             "address (or the bond's name)")
        if req.op == "ADD":
            assert req.virtio_id is not None
            spec = self.flags.spec(
                req.virtio_id, self.policy.path_for(req.virtio_id), vf,
                vf_label=label, bond_members=members,
                bond_mode=req.mode if members else None)
            return manager.AddRelay(spec, source, req.conditional,
                                    persist=True)
        if req.op == "ADD_SOCK":
            spec = self.flags.spec(0, req.vhost_path or "", vf,
                                   vf_label=label, bond_members=members,
                                   bond_mode=req.mode if members else None,
                                   port_id=req.port_id or "",
                                   mac=req.mac or "",
                                   instance_uuid=req.instance_uuid or "")
            if req.vhost_client is not None:
                spec = dataclasses.replace(spec, client=req.vhost_client)
            return manager.AddRelay(spec, source, req.conditional,
                                    persist=True, allocate_id=True)
        return manager.RemoveRelay(
            relay_id=req.virtio_id if req.op == "REMOVE" else None,
            vhost_path=req.vhost_path if req.op == "REMOVE_SOCK" else None,
            vf=vf or None, source=source, conditional=req.conditional,
            take_vf=req.op == "REMOVE", port_id=req.port_id)

    def submit(self, req: PortRequest,
               done: Callable[[int, str, str | None], None]) -> None:
        """Apply ``req``; ``done(code, message, query)`` when finished
        (code 0 for success, else a positive errno)."""
        what = req.op + (" %d" % req.virtio_id
                         if req.virtio_id is not None else "") + \
            (" %s" % req.vhost_path if req.vhost_path else "") + \
            (" (port %s)" % req.port_id if req.port_id else "")
        try:
            request = self._request(req)
        except BadRequest as exc:
            refused: BadRequest | None = exc
        else:
            refused = None
        if refused is not None:
            LOG.warning("port control %s refused: %s", what, refused)
            done(refused.code, "%s: %s" % (req.op, refused), None)
            return
        future = self.manager.submit(request)

        def finished(f: concurrent.futures.Future) -> None:
            exc = f.exception()
            if exc is not None:
                LOG.warning("port control %s failed: %s", what, exc)
                done(error_code(exc), "%s: %s" % (req.op, exc), None)
                return
            result = f.result()
            query = None
            if req.op == "QUERY_PCI":
                query = result.vf_label or result.vf
            done(0, "", query)

        future.add_done_callback(finished)


class PortControlHandler:
    """The ZeroMQ face of PortControl."""

    name = "port control"

    def __init__(self, control: PortControl) -> None:
        self.control = control

    def error(self, message: str) -> bytes:
        return response(errno.EINVAL, message)

    def handle(self, data: bytes, reply: Reply) -> None:
        try:
            req = decode(data)
        except BadRequest as exc:
            bad: BadRequest | None = exc
        else:
            bad = None
        if bad is not None:
            LOG.warning("port control: %s", bad)
            reply(response(bad.code, str(bad)))
            return
        self.control.submit(
            req, lambda code, msg, query: reply(response(code, msg, query)))
