# SPDX-License-Identifier: Apache-2.0
"""Options of the core scheduler (the load balancer of relay directions)."""
from __future__ import annotations

from oslo_config import cfg

GROUP = cfg.OptGroup("core_scheduler", title="Core scheduler")

OPTS = [
    cfg.BoolOpt("enabled", default=False,
                help="Balance relay directions over the worker CPUs by "
                     "their measured load, moving them while traffic "
                     "flows. Pinned directions ([relay] cpu_pins, "
                     "vio4wd-core-pinner) stay where they are pinned."),
    cfg.FloatOpt("poll_interval", default=5.0, min=0.5, max=3600,
                 help="Seconds between load samples (and possible "
                      "rebalancing)."),
    cfg.FloatOpt("sensitivity", default=25.0, min=1, max=100,
                 help="Rebalance only when that lowers the busiest "
                      "worker's load by at least this many percent; a "
                      "higher value moves less often."),
    cfg.BoolOpt("cross_numa", default=False,
                help="Let a direction go to a worker on another NUMA node "
                     "than its relay's (optimize globally instead of "
                     "NUMA-local)."),
    cfg.IntOpt("log_level", min=0, max=7,
               help="Syslog-style level (0-7) of the core scheduler's own "
                    "log lines; unset: the agent's level."),
]
