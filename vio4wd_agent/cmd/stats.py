# SPDX-License-Identifier: Apache-2.0
"""vio4wd-stats: relay counters and rates from a running agent.

Formats: ``flat`` (virtio-forwarder's ``relay_<id>.<path>=<value>`` lines,
so scripts reading them keep working), ``json``, ``table``, ``protobuf``.
Rates are measured over ``--delay`` ms by the agent; counters are never
reset by asking.
"""
from __future__ import annotations

import json
import numbers
import sys
from typing import Any, Iterator

from google.protobuf import json_format

from vio4wd_agent.cmd.ctl import Parser
from vio4wd_agent.control import client, protocol

VF_TO_VM = ("pkts_rx_from_vf", "bytes_rx_from_vf", "pkts_tx_to_vm",
            "bytes_tx_to_vm", "pkt_rate_rx_from_vf", "byte_rate_rx_from_vf",
            "pkt_rate_tx_to_vm", "byte_rate_tx_to_vm",
            "pkts_dropped_vm_queue_full", "bytes_dropped_vm_queue_full",
            "pkts_dropped_vm_not_connected",
            "bytes_dropped_vm_not_connected")
VM_TO_VF = ("pkts_rx_from_vm", "bytes_rx_from_vm", "pkts_tx_to_vf",
            "bytes_tx_to_vf", "pkt_rate_rx_from_vm", "byte_rate_rx_from_vm",
            "pkt_rate_tx_to_vf", "byte_rate_tx_to_vf",
            "pkts_dropped_vf_queue_full", "bytes_dropped_vf_queue_full",
            "pkts_dropped_vf_not_connected",
            "bytes_dropped_vf_not_connected", "pkts_dropped_vf_refused",
            "bytes_dropped_vf_refused")


def flat_lines(response: Any, suppress_zero: bool = False) -> Iterator[str]:
    """virtio-forwarder's flat format: one ``relay_<id>.<path>=<value>``
    line per field that is set, in its order; integer zeros left out with
    ``suppress_zero``."""
    for r in response.relay:
        head = "relay_%d" % r.id

        def line(msg: Any, field: str, path: list[str]) -> Iterator[str]:
            if not msg.HasField(field):
                return
            value = getattr(msg, field)
            if suppress_zero and isinstance(value, numbers.Integral) and \
                    not isinstance(value, bool) and value == 0:
                return
            yield ".".join([head] + path + ["%s=%s" % (field, value)])

        yield from line(r, "active", [])
        yield from line(r.cpu, "vf_to_vm", ["cpu"])
        yield from line(r.cpu, "vm_to_vf", ["cpu"])
        yield from line(r.vf, "pci_addr_str", ["vf"])
        yield from line(r.vhost, "vhost_socket_name", ["vhost"])
        for name, fields in (("vf_to_vm", VF_TO_VM), ("vm_to_vf", VM_TO_VF)):
            direction = getattr(r, name)
            yield from line(direction, "active", [name])
            yield from line(direction, "internal_state", [name])
            path = [name]
            if r.cpu.HasField(name):
                path.append("cpu_%d" % getattr(r.cpu, name))
            for field in fields:
                yield from line(direction, field, path)


def as_dict(response: Any) -> dict[str, Any]:
    return json_format.MessageToDict(response, preserving_proto_field_name=True,
                                     use_integers_for_enums=False)


def _si(value: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= scale:
            return "%.2f%s" % (value / scale, unit)
    return "%.0f" % value


def table_lines(response: Any) -> Iterator[str]:
    yield "%-5s %-10s %-28s %-8s | %-24s | %s" % (
        "relay", "state", "VF", "CPUs", "VF->VM pps (drops)",
        "VM->VF pps (drops)")
    for r in response.relay:
        a, b = r.vf_to_vm, r.vm_to_vf
        yield ("%-5d %-10s %-28s %-8s | %-24s | %s" % (
            r.id, "forwarding" if r.active else "idle",
            r.vf.pci_addr_str[:28], "%s/%s" % (
                r.cpu.vf_to_vm if r.cpu.HasField("vf_to_vm") else "-",
                r.cpu.vm_to_vf if r.cpu.HasField("vm_to_vf") else "-"),
            "%s (%d)" % (_si(a.pkt_rate_tx_to_vm),
                         a.pkts_dropped_vm_queue_full +
                         a.pkts_dropped_vm_not_connected),
            "%s (%d)" % (_si(b.pkt_rate_tx_to_vf),
                         b.pkts_dropped_vf_queue_full +
                         b.pkts_dropped_vf_not_connected))).rstrip()
        if not r.active and r.HasField("reason"):
            yield "      why: %s" % r.reason


def main(argv: list[str] | None = None) -> int:
    p = Parser(prog="vio4wd-stats", description=__doc__.split("\n")[0])
    p.add_argument("--stats-ep", default=client.STATS_EP,
                   help="stats endpoint (default: %(default)s)")
    p.add_argument("--delay", type=int, default=200,
                   help="ms over which rates are measured "
                        "(default: %(default)s)")
    p.add_argument("--include-inactive", action="store_true",
                   help="also relays that do not forward")
    p.add_argument("--relay", type=int, action="append", default=[],
                   help="only this relay (repeatable)")
    p.add_argument("-z", "--suppress-zero", action="store_true",
                   help="leave out integer zeros (flat format)")
    p.add_argument("--format", "--output-format", dest="format",
                   choices=("flat", "json", "table", "protobuf"),
                   default="flat", help="output format (default: flat)")
    args = p.parse_args(argv)
    if args.delay < 0:
        p.error("--delay must not be negative")
    req = protocol.StatsRequest()
    req.relay.extend(args.relay)
    req.include_inactive = args.include_inactive
    req.delay = args.delay
    try:
        answer = client.request(args.stats_ep, req, protocol.StatsResponse,
                                2000 + args.delay)
    except client.ClientError as exc:
        sys.stderr.write("vio4wd-stats: %s\n" % exc)
        return 1
    if answer.status != answer.OK:
        sys.stderr.write("vio4wd-stats: %s%s\n" % (
            protocol.StatsResponse.Status.Name(answer.status),
            ": " + answer.error if answer.HasField("error") else ""))
        return 1
    if args.format == "flat":
        lines = list(flat_lines(answer, args.suppress_zero))
    elif args.format == "json":
        lines = [json.dumps(as_dict(answer), indent=2, sort_keys=True)]
    elif args.format == "table":
        lines = list(table_lines(answer))
    else:
        lines = [str(answer)]
    for line in lines:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
