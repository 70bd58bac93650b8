# SPDX-License-Identifier: Apache-2.0
"""What the latency benchmarks share: percentiles and a listening probe."""
from __future__ import annotations

import socket


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
