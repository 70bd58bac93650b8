# SPDX-License-Identifier: Apache-2.0
"""vio4wd-ctl: port control, as virtio-forwarder's port control client.

    vio4wd-ctl add --virtio-id 3 --pci-addr 0000:05:08.1
    vio4wd-ctl add --virtio-id 4 --pci-addr 05:08.2 --pci-addr 05:08.3 \\
        --name net_bonding4 --mode 1
    vio4wd-ctl add_sock --vhost-path /run/vhost/vhu1 --pci-addr 05:08.4
    vio4wd-ctl query_pci --vhost-path /run/vhost/vhu1
    vio4wd-ctl remove_sock --port-id 4f1c...   (a Neutron port's relay)

Any host's agent over Neutron's bus (oslo.messaging; the transport from
``--transport-url`` or the config file's ``[DEFAULT] transport_url``)::

    vio4wd-ctl --host compute-1 list
    vio4wd-ctl --host compute-1 stats
    vio4wd-ctl --host compute-1 add_sock --port-id 4f1c... \
        --pci-addr 05:08.1 --vhost-path /run/vio4wd/vhost/vhu4f1c...
    vio4wd-ctl --host compute-1 remove_sock --port-id 4f1c...

Exit status 0 on success, 1 with a message on any error.
"""
from __future__ import annotations

import argparse
import errno
import json
import os
import sys
from typing import Any

from vio4wd_agent.conf.parsing import normalize_pci
from vio4wd_agent.control import client, protocol
from vio4wd_agent.relay.model import MAX_RELAY_ID

OPS = ("add", "remove", "add_sock", "remove_sock", "query_pci", "list",
       "stats")
BUS_ONLY = ("list", "stats")
DEFAULT_CONFIG = "/etc/vio4wd/vio4wd.conf"


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
    p.add_argument("--timeout", type=int, default=None,
                   help="ms to wait for the answer (default: 2000, over "
                        "the bus 30000)")
    bus = p.add_argument_group("over Neutron's bus")
    bus.add_argument("--host", help="drive this host's agent through its "
                     "RPC server (topic vio4wd-agent) instead of a local "
                     "endpoint")
    bus.add_argument("--transport-url", help="oslo.messaging transport "
                     "(default: [DEFAULT] transport_url of --config-file)")
    bus.add_argument("--config-file", help="where the transport and its "
                     "options are (default: %s, when it exists)"
                     % DEFAULT_CONFIG)
    bus.add_argument("--relay-id", type=int, help="stats: only this relay")
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


def bus_call(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    """The RPC method and arguments of a request for another host."""
    if args.op in ("add", "remove"):
        raise ValueError("%s (by virtio id) is not offered over the bus; "
                         "use add_sock/remove_sock with --port-id" % args.op)
    if args.op == "stats":
        return "stats", ({} if args.relay_id is None
                         else {"relay_id": args.relay_id})
    if args.op == "list":
        return "list_relays", {}
    if not args.port_id:
        raise ValueError("%s over the bus needs --port-id" % args.op)
    if args.op == "remove_sock":
        return "unplug", {"port_id": args.port_id}
    if args.op == "query_pci":
        return "list_relays", {}
    if len(args.pci_addr) != 1 or not args.vhost_path:
        raise ValueError("add_sock over the bus needs one --pci-addr and "
                         "--vhost-path")
    kwargs = {"port_id": args.port_id, "vf": args.pci_addr[0],
              "socket": args.vhost_path,
              "vhost_client": bool(args.vhost_client)}
    for field in ("mac", "instance_uuid"):
        if getattr(args, field) is not None:
            kwargs[field] = getattr(args, field)
    return "plug", kwargs


def over_bus(args: argparse.Namespace) -> int:
    from vio4wd_agent.neutron import register_messaging_opts, rpc
    import oslo_messaging
    from oslo_config import cfg
    method, kwargs = bus_call(args)
    conf = cfg.ConfigOpts()
    files = [args.config_file] if args.config_file else (
        [DEFAULT_CONFIG] if os.path.exists(DEFAULT_CONFIG) else [])
    conf([], project="vio4wd", default_config_files=files)
    register_messaging_opts(conf)
    if args.transport_url:
        conf.set_override("transport_url", args.transport_url)
    transport = oslo_messaging.get_rpc_transport(conf)
    if not conf.transport_url:
        raise ValueError("no transport: give --transport-url, or a config "
                         "file with [DEFAULT] transport_url")
    try:
        agent = rpc.AgentClient(transport, args.host,
                                timeout=(args.timeout or 30000) / 1000)
        try:
            result = agent.call(method, **kwargs)
        except oslo_messaging.MessagingTimeout:
            raise ValueError("no answer from the vio4wd agent of host %s "
                             "within %g s (is it running, on this bus?)" % (
                                 args.host, (args.timeout or 30000) / 1000)
                             ) from None
        except oslo_messaging.RemoteError as exc:
            raise ValueError("host %s: %s" % (args.host, exc.value)) from None
    finally:
        transport.cleanup()
    if args.op == "query_pci":
        mine = [r for r in result if r.get("port_id") == args.port_id]
        if not mine:
            raise ValueError("host %s: no relay serves port %s"
                             % (args.host, args.port_id))
        print(mine[0].get("vf") or "")
    elif args.op in BUS_ONLY or args.op == "add_sock":
        print(json.dumps(result, indent=2, sort_keys=True))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.host is not None:
        try:
            return over_bus(args)
        except ValueError as exc:
            sys.stderr.write("vio4wd-ctl: %s\n" % exc)
            return 1
        except Exception as exc:    # the bus's own errors, named
            sys.stderr.write("vio4wd-ctl: host %s: %s: %s\n" % (
                args.host, type(exc).__name__, exc))
            return 1
    if args.op in BUS_ONLY:
        sys.stderr.write("vio4wd-ctl: %s needs --host (locally, use "
                         "vio4wd-stats)\n" % args.op)
        return 1
    try:
        msg = build(args)
        answer = client.request(args.zmq_ep, msg,
                                protocol.PortControlResponse,
                                args.timeout or 2000)
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
