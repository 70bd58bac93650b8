# SPDX-License-Identifier: Apache-2.0
"""vio4wd-ctl: port control, as virtio-forwarder's port control client.

    vio4wd-ctl add --virtio-id 3 --pci-addr 0000:05:08.1
    vio4wd-ctl add --virtio-id 4 --pci-addr 05:08.2 --pci-addr 05:08.3 \\
        --name net_bonding4 --mode 1
    vio4wd-ctl add_sock --vhost-path /run/vhost/vhu1 --pci-addr 05:08.4
    vio4wd-ctl query_pci --vhost-path /run/vhost/vhu1
    vio4wd-ctl remove_sock --port-id 4f1c...   (a Neutron port's relay)

Exit status 0 on success, 1 with a message on any error.
"""
from __future__ import annotations

import argparse
import errno
import sys

from vio4wd_agent.conf.parsing import normalize_pci
from vio4wd_agent.control import client, protocol
from vio4wd_agent.relay.model import MAX_RELAY_ID

OPS = ("add", "remove", "add_sock", "remove_sock", "query_pci")


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        sys.stderr.write("%s: error: %s\n" % (self.prog, message))
        sys.exit(1)


def parser() -> Parser:
    p = Parser(prog="vio4wd-ctl", description="Add and remove relay ports "
               "of a running vio4wd agent.")
    p.add_argument("op", choices=OPS, help="port control operation")
    p.add_argument("--virtio-id", type=int,
                   help="relay (virtio) id, for add and remove")
    p.add_argument("--pci-addr", action="append", default=[],
                   help="VF PCI address (0000:05:08.1 or 05:08.1); "
                        "repeat for a bond")
    p.add_argument("--name", help="bond name (net_bonding...)")
    p.add_argument("--mode", type=int, choices=range(7), default=None,
                   help="bond mode 0-6 (default 1, active-backup)")
    p.add_argument("--vhost-path", help="vhost-user socket path, for the "
                   "*_sock operations and query_pci")
    p.add_argument("--port-id", help="Neutron port UUID: add_sock registers "
                   "the socket for this port; remove_sock and query_pci "
                   "find the port's relay (no --vhost-path needed)")
    p.add_argument("--mac", help="the port's MAC address (add_sock)")
    p.add_argument("--instance-uuid", help="the Nova instance (add_sock)")
    side = p.add_mutually_exclusive_group()
    side.add_argument("--vhost-client", dest="vhost_client",
                      action="store_true", default=None,
                      help="add_sock: the relay connects to the socket "
                           "(QEMU made it)")
    side.add_argument("--vhost-server", dest="vhost_client",
                      action="store_false",
                      help="add_sock: the relay makes the socket (QEMU "
                           "connects)")
    p.add_argument("--conditional", action="store_true",
                   help="a request that changes nothing is OK")
    p.add_argument("--zmq-ep", "--zmq_ep", default=client.PORT_CONTROL_EP,
                   help="port control endpoint (default: %(default)s)")
    p.add_argument("--timeout", type=int, default=2000,
                   help="ms to wait for the answer (default: %(default)s)")
    return p


def build(args: argparse.Namespace) -> object:
    msg = protocol.PortControlRequest()
    msg.op = getattr(protocol.PortControlRequest, args.op.upper())
    if args.virtio_id is not None:
        if not 0 <= args.virtio_id <= MAX_RELAY_ID:
            raise ValueError("--virtio-id %d is out of range" % args.virtio_id)
        msg.virtio_id = args.virtio_id
    for text in args.pci_addr:
        pci = normalize_pci(text)
        if pci is None:
            raise ValueError("--pci-addr %r is not a PCI address "
                             "(0000:05:08.1)" % text)
        dom, bus, rest = pci.split(":")
        slot, func = rest.split(".")
        msg.pci_addrs.add(domain=int(dom, 16), bus=int(bus, 16),
                          slot=int(slot, 16), function=int(func, 16))
    msg.conditional = args.conditional
    if args.name is not None:
        msg.name = args.name
        msg.mode = 1 if args.mode is None else args.mode
    elif args.mode is not None:
        msg.mode = args.mode
    if args.vhost_path is not None:
        msg.vhost_path = args.vhost_path
    for field in ("port_id", "mac", "instance_uuid"):
        if getattr(args, field) is not None:
            setattr(msg, field, getattr(args, field))
    if args.vhost_client is not None:
        msg.vhost_client = args.vhost_client
    return msg


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        msg = build(args)
        answer = client.request(args.zmq_ep, msg,
                                protocol.PortControlResponse, args.timeout)
    except (ValueError, client.ClientError) as exc:
        sys.stderr.write("vio4wd-ctl: %s\n" % exc)
        return 1
    if answer.status != answer.OK:
        code = answer.error_code
        name = errno.errorcode.get(abs(code), str(code))
        sys.stderr.write("vio4wd-ctl: %s (%s)\n" % (
            answer.error_code_source or "request refused", name))
        return 1
    if answer.HasField("query_string"):
        print(answer.query_string)
    return 0


if __name__ == "__main__":
    sys.exit(main())
