# SPDX-License-Identifier: Apache-2.0
"""Helpers of the functional tests: deadline polling, names."""
from __future__ import annotations

import itertools
import time
from typing import Callable, TypeVar

T = TypeVar("T")

_seq = itertools.count()


def unique(prefix: str) -> str:
    return "%s%d" % (prefix, next(_seq))


def wait_for(predicate: Callable[[], T], timeout: float = 10.0,
             what: str = "condition", interval: float = 0.02) -> T:
    """Poll until ``predicate()`` is truthy; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    last: T = predicate()
    while not last:
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.1f s waiting for %s"
                                 % (timeout, what))
        time.sleep(interval)
        last = predicate()
    return last


def wait_stable(read: Callable[[], T], settle: float = 0.3,
                timeout: float = 10.0, what: str = "counters") -> T:
    """Poll until ``read()`` stops changing for ``settle`` seconds."""
    deadline = time.monotonic() + timeout
    value = read()
    since = time.monotonic()
    while time.monotonic() - since < settle:
        if time.monotonic() > deadline:
            raise AssertionError("%s still changing after %.1f s"
                                 % (what, timeout))
        time.sleep(0.05)
        new = read()
        if new != value:
            value, since = new, time.monotonic()
    return value
