# SPDX-License-Identifier: Apache-2.0
"""Prometheus metrics over HTTP, read from the data plane at scrape time.

Counters are the relay's own monotonic counters (never reset); per relay,
direction and guest queue, drops by cause, worker busy and idle cycles,
and connected/ready gauges.
"""
from __future__ import annotations

import logging
from typing import Any, Iterator

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from vio4wd_agent.relay.engine import RelayEngine
from vio4wd_agent.relay.model import Direction

LOG = logging.getLogger(__name__)

_DIRS = {Direction.VF_TO_VM: "vf_to_vm", Direction.VM_TO_VF: "vm_to_vf"}


class RelayCollector:
    def __init__(self, engine: RelayEngine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[Any]:
        if not self.engine.running:
            return
        relays = self.engine.relays()
        pkts = CounterMetricFamily(
            "vio4wd_relay_packets", "Packets a relay direction received "
            "(stage=rx) and passed on (stage=tx).",
            labels=["relay", "direction", "stage"])
        byts = CounterMetricFamily(
            "vio4wd_relay_bytes", "Bytes a relay direction received and "
            "passed on.", labels=["relay", "direction", "stage"])
        drops = CounterMetricFamily(
            "vio4wd_relay_dropped_packets", "Packets dropped, by cause: the "
            "far side's queue stayed full, or it was not connected.",
            labels=["relay", "direction", "cause"])
        drop_bytes = CounterMetricFamily(
            "vio4wd_relay_dropped_bytes", "Bytes dropped, by cause.",
            labels=["relay", "direction", "cause"])
        qpkts = CounterMetricFamily(
            "vio4wd_relay_queue_packets", "Packets per guest queue: put on "
            "its rx queue (vf_to_vm), taken off its tx queue (vm_to_vf).",
            labels=["relay", "direction", "queue"])
        qdrops = CounterMetricFamily(
            "vio4wd_relay_queue_dropped_packets", "Queue-full drops per "
            "guest queue.", labels=["relay", "direction", "queue"])
        missed = CounterMetricFamily(
            "vio4wd_relay_vf_rx_missed_packets", "Packets the VF dropped "
            "because its rx ring was full.", labels=["relay"])
        gauges = {
            "vm_connected": GaugeMetricFamily(
                "vio4wd_relay_vm_connected", "1 when a VM is connected.",
                labels=["relay"]),
            "vf_ready": GaugeMetricFamily(
                "vio4wd_relay_vf_ready", "1 when the VF port is started.",
                labels=["relay"]),
            "vf_link_up": GaugeMetricFamily(
                "vio4wd_relay_vf_link_up", "1 when the VF's link is up.",
                labels=["relay"]),
            "forwarding": GaugeMetricFamily(
                "vio4wd_relay_forwarding", "1 when the relay forwards.",
                labels=["relay"]),
        }
        for st in relays:
            rid = str(st.relay_id)
            for direction, name in _DIRS.items():
                d = st.direction(direction)
                pkts.add_metric([rid, name, "rx"], d.rx_pkts)
                pkts.add_metric([rid, name, "tx"], d.tx_pkts)
                byts.add_metric([rid, name, "rx"], d.rx_bytes)
                byts.add_metric([rid, name, "tx"], d.tx_bytes)
                drops.add_metric([rid, name, "queue_full"], d.drop_full_pkts)
                drops.add_metric([rid, name, "not_connected"],
                                 d.drop_noconn_pkts)
                drop_bytes.add_metric([rid, name, "queue_full"],
                                      d.drop_full_bytes)
                drop_bytes.add_metric([rid, name, "not_connected"],
                                      d.drop_noconn_bytes)
                drops.add_metric([rid, name, "vf_refused"], d.drop_bad_pkts)
                drop_bytes.add_metric([rid, name, "vf_refused"],
                                      d.drop_bad_bytes)
                try:
                    queues = self.engine.queue_stats(st.relay_id, direction)
                except Exception:   # removed meanwhile
                    queues = []
                for q in queues:
                    if q.pkts or q.drops:
                        qpkts.add_metric([rid, name, str(q.queue)], q.pkts)
                        qdrops.add_metric([rid, name, str(q.queue)], q.drops)
            missed.add_metric([rid], st.vf_rx_missed)
            gauges["vm_connected"].add_metric([rid], int(st.vm_connected))
            gauges["vf_ready"].add_metric([rid], int(st.vf_ready))
            gauges["vf_link_up"].add_metric([rid], int(st.vf_link_up))
            gauges["forwarding"].add_metric([rid], int(st.forwarding))
        yield from (pkts, byts, drops, drop_bytes, qpkts, qdrops, missed)
        yield from gauges.values()

        busy = CounterMetricFamily(
            "vio4wd_worker_busy_cycles", "TSC cycles a worker spent in "
            "rounds that moved packets.", labels=["cpu"])
        idle = CounterMetricFamily(
            "vio4wd_worker_idle_cycles", "TSC cycles a worker spent idle "
            "(empty rounds and naps).", labels=["cpu"])
        naps = CounterMetricFamily(
            "vio4wd_worker_naps", "Times a worker slept for lack of work.",
            labels=["cpu"])
        dirs = GaugeMetricFamily(
            "vio4wd_worker_directions", "Relay directions a worker polls.",
            labels=["cpu"])
        hz = GaugeMetricFamily("vio4wd_worker_tsc_hz",
                               "TSC frequency (cycles per second).")
        tsc = 0
        for w in self.engine.worker_stats():
            cpu = str(w.cpu)
            busy.add_metric([cpu], w.busy_cycles)
            idle.add_metric([cpu], w.idle_cycles)
            naps.add_metric([cpu], w.naps)
            dirs.add_metric([cpu], w.directions)
            tsc = w.tsc_hz
        hz.add_metric([], tsc)
        yield from (busy, idle, naps, dirs, hz)
        mem = self.engine.memory()
        yield GaugeMetricFamily("vio4wd_hugepage_bytes_in_use",
                                "DPDK heap memory in use.",
                                value=mem.alloc_bytes)
        yield GaugeMetricFamily("vio4wd_relays", "Relays configured.",
                                value=len(relays))


class BalancerCollector:
    """The core scheduler's own counters (anything with ``rounds`` and
    ``moves``)."""

    def __init__(self, balancer: Any) -> None:
        self.balancer = balancer

    def collect(self) -> Iterator[Any]:
        yield CounterMetricFamily(
            "vio4wd_core_scheduler_rounds", "Load samples the core "
            "scheduler took.", value=self.balancer.rounds)
        yield CounterMetricFamily(
            "vio4wd_core_scheduler_moves", "Relay directions the core "
            "scheduler moved to another worker.", value=self.balancer.moves)


class MetricsServer:
    def __init__(self, engine: RelayEngine, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.registry = CollectorRegistry()
        self.registry.register(RelayCollector(engine))  # type: ignore[arg-type]
        self._server: Any = None

    def add(self, collector: Any) -> None:
        self.registry.register(collector)

    def start(self) -> None:
        result = start_http_server(self.port, addr=self.host,
                                   registry=self.registry)
        self._server = result[0] if isinstance(result, tuple) else None
        if self._server is not None:
            self.port = self._server.server_address[1]
        LOG.info("metrics on http://%s:%d/metrics", self.host, self.port)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
