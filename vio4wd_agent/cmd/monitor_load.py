# SPDX-License-Identifier: Apache-2.0
"""vio4wd-monitor-load: live load bars of the agent's worker CPUs.

Load is the share of a worker's cycles spent in rounds that moved packets
(the rest it spent polling empty queues or napping), from the agent's
monotonic busy/idle cycle counters sampled once per interval.
"""
from __future__ import annotations

import sys
import time
from typing import Any

from vio4wd_agent.cmd.ctl import Parser
from vio4wd_agent.control import client, protocol


def sample(endpoint: str) -> dict[int, Any]:
    answer = client.request(endpoint, protocol.StatsRequest(
        include_inactive=True), protocol.StatsResponse)
    return {w.cpu: w for w in answer.worker}


def bars(before: dict[int, Any], after: dict[int, Any],
         width: int = 40) -> list[str]:
    lines = []
    for cpu in sorted(after):
        a, b = before.get(cpu), after[cpu]
        busy = b.busy_cycles - (a.busy_cycles if a else 0)
        idle = b.idle_cycles - (a.idle_cycles if a else 0)
        load = busy / (busy + idle) if busy + idle > 0 else 0.0
        fill = int(round(load * width))
        lines.append("CPU %3d [%s%s] %5.1f%%  %d direction(s)" % (
            cpu, "#" * fill, "." * (width - fill), load * 100,
            b.directions))
    return lines


def main(argv: list[str] | None = None) -> int:
    p = Parser(prog="vio4wd-monitor-load", description=__doc__.split("\n")[0])
    p.add_argument("--stats-ep", default=client.STATS_EP)
    p.add_argument("--interval", type=float, default=1.0,
                   help="seconds between samples (default: %(default)s)")
    p.add_argument("--count", type=int, default=0,
                   help="stop after this many updates (0: until Ctrl-C)")
    args = p.parse_args(argv)
    if args.interval <= 0:
        p.error("--interval must be positive")
    tty = sys.stdout.isatty()
    try:
        before = sample(args.stats_ep)
        shown = 0
        while args.count == 0 or shown < args.count:
            time.sleep(args.interval)
            after = sample(args.stats_ep)
            lines = bars(before, after)
            if tty:
                sys.stdout.write("\x1b[H\x1b[2J")
            sys.stdout.write("\n".join(lines) + "\n")
            sys.stdout.flush()
            before = after
            shown += 1
    except client.ClientError as exc:
        sys.stderr.write("vio4wd-monitor-load: %s\n" % exc)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
