# SPDX-License-Identifier: Apache-2.0
"""Stats and config over ZeroMQ: StatsRequest, ConfigRequest.

Counters are never reset by a reader.  Rates come from two samples: the
request's own pair ``delay`` ms apart (answered when the second is taken,
while other requests are served), or, with no delay, the sampler's last
two one-second samples.  Two clients at once see the same counters and
cannot disturb each other.
"""
from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from typing import Any, Callable

from google.protobuf.message import DecodeError

from vio4wd_agent import service
from vio4wd_agent.conf.parsing import normalize_pci
from vio4wd_agent.control import protocol
from vio4wd_agent.control.server import Reply
from vio4wd_agent.relay.engine import RelayEngine
from vio4wd_agent.relay.model import RelaySpec, RelayState

LOG = logging.getLogger(__name__)

MAX_DELAY_MS = 60000
MAX_RELAYS = 4096
# Requests waiting for their rate window, all clients together; beyond
# this they are refused (ENOMEM) with a message saying so.
MAX_WAITING = 256
# Samples at most this old are shared: however many requests come, the
# data plane is read at most ~100 times a second for them.
SHARE_SAMPLE_S = 0.01

Sample = tuple[float, dict[int, RelayState]]


def sample(engine: RelayEngine) -> Sample:
    return time.monotonic(), {s.relay_id: s for s in engine.relays()}


class SharedSampler:
    """sample() of the engine, reusing one taken in the last few ms while
    no relay was added, changed or removed since (an answer after a port
    control reply never shows the relays from before it)."""

    def __init__(self, engine: RelayEngine,
                 max_age: float = SHARE_SAMPLE_S) -> None:
        self.engine = engine
        self.max_age = max_age
        self.taken = 0                  # samples read from the data plane
        self._lock = threading.Lock()
        self._last: Sample | None = None
        self._changes = -1

    def __call__(self, not_before: float | None = None) -> Sample:
        """A sample taken no earlier than ``not_before`` (default: the
        last ``max_age`` seconds)."""
        with self._lock:
            if not_before is None:
                not_before = time.monotonic() - self.max_age
            changes = self.engine.changes
            if self._last is None or self._last[0] < not_before or \
                    changes != self._changes:
                self._changes = changes
                self._last = sample(self.engine)
                self.taken += 1
            return self._last


class TimerQueue(service.Service):
    """Runs callables at given times on one thread."""

    thread_name = "stats-timers"
    stop_timeout = 5.0

    def __init__(self) -> None:
        super().__init__()
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()

    def wake(self) -> None:
        with self._cond:
            self._cond.notify()

    def call_later(self, delay: float, fn: Callable[[], None]) -> None:
        with self._cond:
            heapq.heappush(self._heap, (time.monotonic() + delay,
                                        next(self._seq), fn))
            self._cond.notify()

    def pending(self) -> int:
        with self._cond:
            return len(self._heap)

    def run(self) -> None:
        while True:
            with self._cond:
                while not self.stopping and (
                        not self._heap or
                        self._heap[0][0] > time.monotonic()):
                    timeout = None if not self._heap else \
                        self._heap[0][0] - time.monotonic()
                    self._cond.wait(timeout)
                if self.stopping:
                    return
                _, _, fn = heapq.heappop(self._heap)
            try:
                fn()
            except Exception:
                LOG.exception("scheduled stats work failed")


class RateSampler:
    """Samples every relay each ``period`` seconds; rates for requests
    without a delay come from its last two samples."""

    def __init__(self, engine: RelayEngine, timers: TimerQueue,
                 period: float = 1.0) -> None:
        self.engine = engine
        self.timers = timers
        self.period = period
        self._lock = threading.Lock()
        self._prev: Sample | None = None
        self._last: Sample | None = None

    def start(self) -> None:
        self._tick()

    def _tick(self) -> None:
        if self.engine.running:
            snap = sample(self.engine)
            with self._lock:
                self._prev, self._last = self._last, snap
        self.timers.call_later(self.period, self._tick)

    def pair(self) -> tuple[Sample, Sample] | None:
        with self._lock:
            if self._prev is None or self._last is None:
                return None
            return self._prev, self._last


Rates = tuple[float, float, float, float, float, float, float, float]
NO_RATES: Rates = (0.0,) * 8


def rates(before: RelayState | None, after: RelayState | None,
          dt: float) -> Rates:
    """Per-second rates between two samples of one relay: VF->VM rx/tx
    packets/bytes, then VM->VF."""
    if before is None or after is None or dt <= 0:
        return NO_RATES
    out = []
    for d in ("vf_to_vm", "vm_to_vf"):
        x, y = getattr(before, d), getattr(after, d)
        for f in ("rx_pkts", "rx_bytes", "tx_pkts", "tx_bytes"):
            out.append(max(0.0, (getattr(y, f) - getattr(x, f)) / dt))
    return tuple(out)  # type: ignore[return-value]


def relay_state(st: RelayState, r: Rates) -> object:
    """One RelayState message: counters of ``st``, rates ``r``."""
    msg = protocol.RelayState()
    msg.id = st.relay_id
    msg.active = st.forwarding
    msg.ident = "%s <-> %s" % (st.vf_name or "no VF", st.vhost_path)
    if st.vf_to_vm.cpu is not None:
        msg.cpu.vf_to_vm = st.vf_to_vm.cpu
    if st.vm_to_vf.cpu is not None:
        msg.cpu.vm_to_vf = st.vm_to_vf.cpu
    msg.vhost.vhost_socket_name = st.vhost_path
    if st.vf_name:
        msg.vf.pci_addr_str = st.vf_name
    msg.socket_id = max(st.numa_node, 0)
    msg.reason = st.reason
    msg.vf_rx_missed = st.vf_rx_missed
    msg.vm_queues = st.vm_queues
    msg.vf_queues = st.vf_queues
    if st.numa_hint is not None:
        msg.numa_hint = st.numa_hint
    for name, src, dst, rate in (("vf_to_vm", "vf", "vm", r[:4]),
                                 ("vm_to_vf", "vm", "vf", r[4:])):
        d, out = getattr(st, name), getattr(msg, name)
        out.active = st.forwarding
        out.internal_state = st.reason
        values = {
            "pkts_rx_from_" + src: d.rx_pkts,
            "bytes_rx_from_" + src: d.rx_bytes,
            "pkts_tx_to_" + dst: d.tx_pkts,
            "bytes_tx_to_" + dst: d.tx_bytes,
            "pkts_dropped_%s_queue_full" % dst: d.drop_full_pkts,
            "bytes_dropped_%s_queue_full" % dst: d.drop_full_bytes,
            "pkts_dropped_%s_not_connected" % dst: d.drop_noconn_pkts,
            "bytes_dropped_%s_not_connected" % dst: d.drop_noconn_bytes,
            "pkt_rate_rx_from_" + src: rate[0],
            "byte_rate_rx_from_" + src: rate[1],
            "pkt_rate_tx_to_" + dst: rate[2],
            "byte_rate_tx_to_" + dst: rate[3],
        }
        if name == "vm_to_vf":
            values["pkts_dropped_vf_refused"] = d.drop_bad_pkts
            values["bytes_dropped_vf_refused"] = d.drop_bad_bytes
        for field, value in values.items():
            setattr(out, field, value)
    return msg


class StatsHandler:
    name = "stats"

    def __init__(self, engine: RelayEngine, timers: TimerQueue,
                 sampler: RateSampler,
                 specs: Callable[[], dict[int, RelaySpec]] | None = None
                 ) -> None:
        self.engine = engine
        self.timers = timers
        self.sampler = sampler
        # What each relay was asked to be (the Neutron port it serves).
        self.specs = specs or (lambda: {})
        self.sample = SharedSampler(engine)
        self._waiting = 0
        self._waiting_lock = threading.Lock()

    def error(self, message: str, status: int | None = None) -> bytes:
        out = protocol.StatsResponse()
        out.status = out.EBADR if status is None else status
        out.error = message
        return out.SerializeToString()

    def handle(self, data: bytes, reply: Reply) -> None:
        req = protocol.StatsRequest()
        try:
            req.MergeFromString(data)
        except (DecodeError, RuntimeError, ValueError) as exc:
            reply(self.error("malformed request: %s" % exc))
            return
        ids = list(req.relay)
        if len(ids) > MAX_RELAYS:
            reply(self.error("%d relays asked for, at most %d" % (
                len(ids), MAX_RELAYS), protocol.StatsResponse.E2BIG))
            return
        if req.delay > MAX_DELAY_MS:
            reply(self.error("delay %d ms is over %d ms" % (
                req.delay, MAX_DELAY_MS)))
            return
        if req.delay > 0:
            with self._waiting_lock:
                full = self._waiting >= MAX_WAITING
                if not full:
                    self._waiting += 1
            if full:
                LOG.warning("stats: refused a request with delay %d ms: %d "
                            "are waiting already", req.delay, MAX_WAITING)
                reply(self.error(
                    "%d requests with a delay are waiting already (at most "
                    "%d); ask again later, or with delay 0" % (
                        MAX_WAITING, MAX_WAITING),
                    protocol.StatsResponse.ENOMEM))
                return
        scheduled = False
        try:
            scheduled = self._handle(req, reply)
        finally:
            if req.delay > 0 and not scheduled:
                self._done_waiting()

    def _done_waiting(self) -> None:
        with self._waiting_lock:
            self._waiting -= 1

    def _handle(self, req: Any, reply: Reply) -> bool:
        """Answer ``req``; True when the answer is scheduled for later."""
        ids = list(req.relay)
        first = self.sample()
        unknown = sorted(set(ids) - set(first[1]))
        if unknown:
            reply(self.error("no relay %s" % ", ".join(map(str, unknown))))
            return False
        want = set(ids) if ids else None
        include_inactive = req.include_inactive

        def answer(now: Sample, rate_pair: tuple[Sample, Sample] | None
                   ) -> None:
            out = protocol.StatsResponse()
            out.status = out.OK
            specs = self.specs()
            for relay_id in sorted(now[1]):
                st = now[1][relay_id]
                if want is not None and relay_id not in want:
                    continue
                if not include_inactive and not st.forwarding:
                    continue
                r = NO_RATES
                if rate_pair is not None:
                    x, y = rate_pair
                    r = rates(x[1].get(relay_id), y[1].get(relay_id),
                              y[0] - x[0])
                msg: Any = relay_state(st, r)
                spec = specs.get(relay_id)
                if spec is not None and st.vf_name and \
                        normalize_pci(spec.vf_label) is not None:
                    # The VF by the PCI address it was asked for (which
                    # the device map turned into devargs).
                    msg.vf.pci_addr_str = spec.vf_label
                if spec is not None and spec.port_id:
                    msg.port_id = spec.port_id
                    msg.mac = spec.mac
                    msg.instance_uuid = spec.instance_uuid
                out.relay.append(msg)
            for w in self.engine.worker_stats():
                load = out.worker.add()
                load.cpu, load.directions = w.cpu, w.directions
                load.busy_cycles, load.idle_cycles = (w.busy_cycles,
                                                      w.idle_cycles)
                load.tsc_hz = w.tsc_hz
            reply(out.SerializeToString())

        if req.delay == 0:
            # Counters of now, rates of the sampler's last interval.
            answer(first, self.sampler.pair())
            return False

        end = time.monotonic() + req.delay / 1000.0

        def second() -> None:
            try:
                # Never a sample from before the window's end.
                now = self.sample(not_before=end)
                answer(now, (first, now))
            finally:
                self._done_waiting()
        self.timers.call_later(req.delay / 1000.0, second)
        return True


class ConfigHandler:
    """ConfigRequest: which CPUs each relay's directions run on."""

    name = "config"

    def __init__(self, engine: RelayEngine) -> None:
        self.engine = engine

    def error(self, message: str) -> bytes:
        out = protocol.ConfigResponse()
        out.status = out.EBADR
        return out.SerializeToString()

    def handle(self, data: bytes, reply: Reply) -> None:
        req = protocol.ConfigRequest()
        try:
            req.MergeFromString(data)
        except (DecodeError, RuntimeError, ValueError) as exc:
            reply(self.error(str(exc)))
            return
        out = protocol.ConfigResponse()
        out.status = out.OK
        for st in self.engine.relays():
            cpu = out.relay_cpu_map.add()
            cpu.relay_number = st.relay_id
            cpu.vf2virtio_cpu = -1 if st.vf_to_vm.cpu is None \
                else st.vf_to_vm.cpu
            cpu.virtio2vf_cpu = -1 if st.vm_to_vf.cpu is None \
                else st.vm_to_vf.cpu
        reply(out.SerializeToString())
