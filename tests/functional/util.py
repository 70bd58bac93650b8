# SPDX-License-Identifier: Apache-2.0
"""Helpers of the functional tests: deadline polling, names."""
from __future__ import annotations

import itertools
import time
from typing import Any, Callable, TypeVar

T = TypeVar("T")

_seq = itertools.count()


def unique(prefix: str) -> str:
    return "%s%d" % (prefix, next(_seq))


# Deadlines are generous: a loaded 2-CPU machine may take many seconds
# for what takes milliseconds when idle; they only bound a hang.
DEADLINE = 60.0


def wait_for(predicate: Callable[[], T], timeout: float = DEADLINE,
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


def wait_stable(read: Callable[[], T], settle: float = 1.0,
                timeout: float = DEADLINE, what: str = "counters") -> T:
    """Poll until ``read()`` stops changing for ``settle`` seconds.  Only
    for counters whose final value is then checked against an invariant
    (or a count nothing can lose), never as a clock."""
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


def send_paced(send: Callable[[int], None], total: int,
               taken: Callable[[], int], window: int = 128,
               what: str = "the relay") -> None:
    """Call ``send(i)`` for i in 0..total-1, never getting more than
    ``window`` frames ahead of what ``taken()`` (a receive counter, read
    now as the base) says arrived.

    A VF stand-in's af_packet ring (512 frames by default) silently drops
    what overflows it; a sender that waits for the relay cannot overflow
    it however loaded the machine, so every frame sent is counted by the
    relay and exact counts stay exact.
    """
    base = taken()
    sent = 0
    deadline = time.monotonic() + DEADLINE
    while sent < total:
        arrived = taken() - base
        room = min(window - (sent - arrived), total - sent)
        if room <= 0:
            if time.monotonic() > deadline:
                raise AssertionError(
                    "%s took %d of the %d frames sent in %.0f s"
                    % (what, arrived, sent, DEADLINE))
            time.sleep(0.001)
            continue
        for _ in range(room):
            send(sent)
            sent += 1
        deadline = time.monotonic() + DEADLINE
    wait_for(lambda: taken() - base >= total,
             what="%s to take all %d frames" % (what, total))


def drained(read: Callable[[], T], done: Callable[[T], bool],
            what: str = "traffic to settle") -> T:
    """Poll ``read()`` until ``done(value)`` holds on two reads in a row
    with the same value (what is in flight between stages shows as an
    unbalanced or changing value), then return it."""
    last: list[T] = []

    def settled() -> bool:
        value = read()
        ok = done(value) and bool(last) and last[-1] == value
        last[:] = [value]
        return ok
    wait_for(settled, what=what, interval=0.2)
    return last[-1]


def drained_through_vm(relay: Callable[[], Any], vm: Any,
                       kernel_rx: Callable[[], int] | None = None,
                       ) -> tuple[Any, Any, int, int]:
    """For a VM that sends back what it gets (io, macswap, csum): wait
    until every stage passed on what it took -- relay to VM, VM back to
    the relay and, when ``kernel_rx`` counts what the kernel end of the
    VF received since the start, relay out of its VF -- and return
    (VF->VM, VM->VF, VM rx, VM tx).  The VM may drop (testpmd's own
    count); nothing else may be unaccounted for."""
    def stages() -> tuple[Any, Any, int, int, int]:
        vs = vm.port_stats()
        st = relay()
        return (st.vf_to_vm, st.vm_to_vf, vs.rx_packets, vs.tx_packets,
                kernel_rx() if kernel_rx is not None else 0)

    a, b, vm_rx, vm_tx, _ = drained(stages, lambda v: (
        v[0].held == 0 and v[1].held == 0 and v[0].tx_pkts == v[2] and
        v[3] == v[1].rx_pkts and
        (kernel_rx is None or v[1].tx_pkts == v[4])))
    return a, b, vm_rx, vm_tx


def rounds_pass(engine: Any, rounds: int = 1024) -> None:
    """Wait until every worker of ``engine`` went ``rounds`` times over
    its directions (an idle direction is polled every 32nd round, and
    every one after a nap): what a poll would have taken by now, it has.
    The sync point for "this was not polled" without a timed sleep."""
    start = {w.cpu: w.rounds for w in engine.worker_stats()}
    wait_for(lambda: all(w.rounds - start.get(w.cpu, w.rounds) >= rounds
                         for w in engine.worker_stats()),
             what="%d worker rounds" % rounds)
