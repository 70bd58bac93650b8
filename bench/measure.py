# SPDX-License-Identifier: Apache-2.0
"""What the benchmarks share: percentiles, a listening probe, a data plane
on hugepages."""
from __future__ import annotations

import socket

from vio4wd_agent.demo import hugepages
from vio4wd_agent.relay import eal
from vio4wd_agent.relay.engine import RelayEngine


def percentile(values: list[float], p: float) -> float:
    """The ``p`` quantile (0..1) of ``values``, nearest rank, same unit."""
    values = sorted(values)
    return values[min(len(values) - 1, int(p * len(values)))]


def ms(values: list[float], p: float) -> float:
    """``percentile`` of values in seconds, in milliseconds."""
    return percentile(values, p) * 1000


def listening(path: str) -> bool:
    """Someone accepts connections on the unix socket at ``path``."""
    s = socket.socket(socket.AF_UNIX)
    try:
        s.connect(path)
        return True
    except OSError:
        return False
    finally:
        s.close()


def start_on_hugepages(engine: RelayEngine, huge: hugepages.Hugepages,
                       main: int, worker: int, prefix: str) -> str | None:
    """Mount ``huge`` and start ``engine`` on it (main lcore, one worker);
    the mount point, or None (saying why) when there are no hugepages."""
    huge_dir = huge.setup()
    if huge_dir is None:
        print("needs hugepages: %s" % huge.reason)
        return None
    engine.start(eal.build_eal_args(
        main_lcore=main, worker_cpus=[worker], file_prefix=prefix,
        memory=eal.MemoryPlan(huge_dir, 0, "bench"), log_level=3))
    return huge_dir
