# SPDX-License-Identifier: Apache-2.0
"""vio4wd-core-pinner: put relay directions on worker CPUs at run time.

    vio4wd-core-pinner --virtio-cpu=3:1,2   # relay 3: VM->VF on 1, VF->VM on 2
    vio4wd-core-pinner --print-core-map

As virtio-forwarder's pinner: the first CPU is VM->VF, the second VF->VM
(one CPU pins both).  Pins made here are journaled by the agent and kept
across restarts.  Without arguments, prints the map.
"""
from __future__ import annotations

import sys
from typing import Any

from vio4wd_agent.cmd.ctl import Parser
from vio4wd_agent.control import client, protocol


def core_map_lines(stats: Any, workers: list[int]) -> list[str]:
    """Per worker CPU, the relays whose VM->VF and VF->VM it runs."""
    cols: dict[int, tuple[list[int], list[int]]] = {w: ([], []) for w in
                                                    workers}
    for r in stats.relay:
        if r.cpu.HasField("vm_to_vf"):
            cols.setdefault(r.cpu.vm_to_vf, ([], []))[0].append(r.id)
        if r.cpu.HasField("vf_to_vm"):
            cols.setdefault(r.cpu.vf_to_vm, ([], []))[1].append(r.id)
    cpus = sorted(cols)
    rule = "=" * (8 * len(cpus) + 3 * (len(cpus) - 1))
    lines = [rule, "   ".join("== %02d ==" % c for c in cpus)]
    depth = max([max(len(a), len(b)) for a, b in cols.values()] or [0])
    for i in range(depth):
        cells = []
        for c in cpus:
            a, b = cols[c]
            cells.append("%-2s    %-2s" % ("%02d" % a[i] if i < len(a) else "",
                                          "%02d" % b[i] if i < len(b) else ""))
        lines.append("   ".join(cells).rstrip())
    lines.append(rule)
    return lines


def parse_pin(text: str) -> tuple[int, int, int]:
    relay, sep, cpus = text.partition(":")
    parts = cpus.split(",")
    try:
        if not sep or not 1 <= len(parts) <= 2:
            raise ValueError
        vm_to_vf = int(parts[0])
        vf_to_vm = int(parts[-1])
        return int(relay), vm_to_vf, vf_to_vm
    except ValueError:
        raise ValueError("--virtio-cpu %r is not N:C1[,C2]" % text) from None


def main(argv: list[str] | None = None) -> int:
    p = Parser(prog="vio4wd-core-pinner", description=__doc__.split("\n")[0])
    p.add_argument("--virtio-cpu", action="append", default=[],
                   help="RELAY:VM2VF_CPU[,VF2VM_CPU], repeatable")
    p.add_argument("--print-core-map", action="store_true",
                   help="print the relay/CPU map and exit")
    p.add_argument("--stats-ep", default=client.STATS_EP)
    p.add_argument("--sched-ep", "--zmq-ep", default=client.CORE_SCHED_EP)
    args = p.parse_args(argv)
    try:
        pins = [parse_pin(t) for t in args.virtio_cpu]
    except ValueError as exc:
        p.error(str(exc))
    try:
        cores = client.request(args.sched_ep, protocol.CoreSchedRequest(
            op=protocol.CoreSchedRequest.GET_EAL_CORES),
            protocol.CoreSchedResponse).eal_cores
        if pins and not args.print_core_map:
            req = protocol.CoreSchedRequest(
                op=protocol.CoreSchedRequest.UPDATE)
            for relay, vm_to_vf, vf_to_vm in pins:
                print("Setting relay %d: VM->VF on CPU %d, VF->VM on CPU %d"
                      % (relay, vm_to_vf, vf_to_vm))
                req.relay_cpu_map.add(relay_number=relay,
                                      virtio2vf_cpu=vm_to_vf,
                                      vf2virtio_cpu=vf_to_vm)
            answer = client.request(args.sched_ep, req,
                                    protocol.CoreSchedResponse)
            if answer.status != answer.OK:
                sys.stderr.write("vio4wd-core-pinner: %s\n"
                                 % answer.error_code_source)
                return 1
        stats = client.request(args.stats_ep, protocol.StatsRequest(
            include_inactive=True), protocol.StatsResponse)
    except client.ClientError as exc:
        sys.stderr.write("vio4wd-core-pinner: %s\n" % exc)
        return 1
    print("Worker core affinities (per CPU: VM->VF relays, VF->VM "
          "relays):")
    for line in core_map_lines(stats, list(cores)):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
