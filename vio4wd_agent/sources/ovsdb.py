# SPDX-License-Identifier: Apache-2.0
"""OVSDB watcher: Interface rows with ``external_ids:virtio_forwarder=<id>``
(or ``virtio_relay``) relay that interface's VF as relay ``<id>``.

One thread owns the IDL, which monitors only Interface's ``name`` and
``external_ids``.  Whenever the IDL's view is complete (after the initial
dump, after each change, and after a reconnect to a restarted
ovsdb-server) the wanted relays are recomputed from all rows and compared
with what this watcher asked for before: relays that appeared, changed or
went are added or removed, and nothing else is touched, so a resync never
duplicates or drops a relay.

An interface's VF is found through sysfs (/sys/class/net/<name>/device).
A netdev that is not a PCI function (veth, tap) is skipped, unless
``[control] allow_devargs`` lets whoever writes OVSDB choose any netdev:
then it is relayed through DPDK's af_packet driver, with a warning (a slow
path, for tests and demos).  A row whose netdev
is not there yet (the row written before the VF is bound or renamed) is
retried, backing off from 0.5 s to 30 s, until the netdev appears or the
row goes.
"""
from __future__ import annotations

import concurrent.futures
import logging
import threading
import time
from typing import Any, Callable

import ovs.db.idl
import ovs.jsonrpc
import ovs.poller
import ovs.stream

from vio4wd_agent import manager, service
from vio4wd_agent.conf.settings import VhostFlags, resolve_vf
from vio4wd_agent.host import sysfs
from vio4wd_agent.relay.model import MAX_RELAY_ID, RelaySpec
from vio4wd_agent.vhostuser.sockets import SocketPolicy

LOG = logging.getLogger(__name__)

SOURCE = "ovsdb"
KEYS = ("virtio_forwarder", "virtio_relay")
RETRY_FIRST = 0.5       # seconds until a missing netdev is looked for again
RETRY_MAX = 30.0


def wanted(rows: list[tuple[str, dict[str, str]]],
           complaints: set[tuple[str, str]]) -> dict[int, str]:
    """relay id -> interface name, from (name, external_ids) rows.

    Malformed ids and ids claimed by two interfaces are logged (once per
    row and value) and skipped.
    """
    out: dict[int, str] = {}
    for name, ext in sorted(rows):
        key = next((k for k in KEYS if k in ext), None)
        if key is None:
            continue
        value = ext[key]
        try:
            relay_id = int(value.strip(), 10)
            if not 0 <= relay_id <= MAX_RELAY_ID:
                raise ValueError
        except ValueError:
            if (name, value) not in complaints:
                complaints.add((name, value))
                LOG.warning("OVSDB: Interface %s has external_ids:%s=%r, "
                            "not a relay id (0-%d); skipped", name, key,
                            value, MAX_RELAY_ID)
            continue
        if relay_id in out:
            if (name, value) not in complaints:
                complaints.add((name, value))
                LOG.warning("OVSDB: Interface %s and %s both ask for relay "
                            "%d; %s is skipped", out[relay_id], name,
                            relay_id, name)
            continue
        out[relay_id] = name
    return out


class OvsdbWatcher(service.Service):
    name = "ovsdb"
    thread_name = "ovsdb-watcher"
    stop_timeout = 5.0

    def __init__(self, remote: str, mgr: manager.RelayManager,
                 flags: VhostFlags, policy: SocketPolicy,
                 device_map: dict[str, str],
                 vf_of: Callable[[str], str | None] = sysfs.netdev_pci,
                 allow_devargs: bool = False) -> None:
        super().__init__()
        self.remote = remote
        self.allow_devargs = allow_devargs
        self.manager = mgr
        self.flags = flags
        self.policy = policy
        self.device_map = device_map
        self.vf_of = vf_of
        self.applied: dict[int, str] = {}       # relay id -> interface
        self._complaints: set[tuple[str, str]] = set()
        # relay id -> (interface, retry delay, when to look again): rows
        # whose netdev is not here yet
        self.waiting: dict[int, tuple[str, float, float]] = {}
        self.synced = threading.Event()         # tests wait on it

    # ---- IDL ----------------------------------------------------------------
    def _schema(self) -> Any:
        """The Open_vSwitch schema, from the server itself."""
        err, stream = ovs.stream.Stream.open_block(
            ovs.stream.Stream.open(self.remote))
        if err:
            raise OSError(err, "cannot connect to %s" % self.remote)
        rpc = ovs.jsonrpc.Connection(stream)
        try:
            err, reply = rpc.transact_block(ovs.jsonrpc.Message.create_request(
                "get_schema", ["Open_vSwitch"]))
            if err or reply.error:
                raise OSError(err or 0, "get_schema: %s" % (
                    reply.error if reply else err))
            return reply.result
        finally:
            rpc.close()

    def run(self) -> None:
        helper = None
        waited = False
        while helper is None and not self.stopping:
            try:
                schema = self._schema()
                helper = ovs.db.idl.SchemaHelper(schema_json=schema)
                helper.register_columns("Interface",
                                        ["name", "external_ids"])
            except (OSError, ValueError, KeyError) as exc:
                if not waited:
                    LOG.warning("OVSDB %s not reachable yet (%s); retrying",
                                self.remote, exc)
                    waited = True
                self.sleep(1.0)
        if helper is None:
            return
        idl = ovs.db.idl.Idl(self.remote, helper)
        seen = -1
        try:
            while not self.stopping:
                try:
                    self._round(idl, seen)
                    seen = idl.change_seqno
                except Exception:   # a bad round must not end the watch
                    LOG.exception("OVSDB: watching %s failed; going on",
                                  self.remote)
                    self.sleep(1.0)
        finally:
            idl.close()

    def _round(self, idl: Any, seen: int) -> None:
        idl.run()
        if idl.state == idl.IDL_S_MONITORING and (
                idl.change_seqno != seen or self._retry_due() == 0):
            self.reconcile(self._rows(idl))
            self.synced.set()
        poller = ovs.poller.Poller()
        idl.wait(poller)
        due = self._retry_due()
        poller.timer_wait(500 if due is None else
                          max(10, min(500, int(due * 1000))))
        poller.block()

    def _retry_due(self) -> float | None:
        """Seconds until a waiting row is looked at again (0: now)."""
        if not self.waiting:
            return None
        return max(0.0, min(w[2] for w in self.waiting.values()) -
                   time.monotonic())

    @staticmethod
    def _rows(idl: Any) -> list[tuple[str, dict[str, str]]]:
        return [(row.name, dict(row.external_ids))
                for row in idl.tables["Interface"].rows.values()]

    # ---- wanted state -> manager ---------------------------------------------
    def spec(self, relay_id: int, ifname: str) -> RelaySpec:
        pci = self.vf_of(ifname)
        if pci is not None:
            vf, label = resolve_vf(pci, self.device_map), pci
        else:
            LOG.warning("OVSDB: Interface %s is not a PCI function; relaying "
                        "it through DPDK af_packet (a slow path, for tests "
                        "and demos)", ifname)
            vf, label = "net_af_packet_ovs%d,iface=%s" % (relay_id,
                                                         ifname), ifname
        return self.flags.spec(relay_id, self.policy.path_for(relay_id), vf,
                               vf_label=label)

    def reconcile(self, rows: list[tuple[str, dict[str, str]]]) -> None:
        want = wanted(rows, self._complaints)
        for relay_id in [i for i, w in self.waiting.items()
                         if want.get(i) != w[0]]:
            LOG.info("OVSDB: relay %d (Interface %s) no longer wanted; no "
                     "longer waiting for its netdev", relay_id,
                     self.waiting.pop(relay_id)[0])
        gone = [i for i, name in self.applied.items() if want.get(i) != name]
        new = [(i, name) for i, name in sorted(want.items())
               if self.applied.get(i) != name]
        for relay_id in gone:
            LOG.info("OVSDB: relay %d (Interface %s) no longer wanted",
                     relay_id, self.applied[relay_id])
            self._wait(self.manager.submit(manager.RemoveRelay(
                relay_id, source=SOURCE, conditional=True)), relay_id)
            del self.applied[relay_id]
        now = time.monotonic()
        for relay_id, ifname in new:
            if not sysfs.netdev_exists(ifname) and self.vf_of(ifname) is None:
                waiting = self.waiting.get(relay_id)
                if waiting is None:
                    LOG.warning("OVSDB: Interface %s (relay %d) has no "
                                "netdev here yet; retrying until it appears "
                                "or the row goes", ifname, relay_id)
                    self.waiting[relay_id] = (ifname, RETRY_FIRST,
                                              now + RETRY_FIRST)
                elif now >= waiting[2]:
                    delay = min(waiting[1] * 2, RETRY_MAX)
                    self.waiting[relay_id] = (ifname, delay, now + delay)
                continue
            if self.waiting.pop(relay_id, None) is not None:
                LOG.info("OVSDB: Interface %s (relay %d): its netdev is "
                         "here now", ifname, relay_id)
            if self.vf_of(ifname) is None and not self.allow_devargs:
                if (ifname, "not a VF") not in self._complaints:
                    self._complaints.add((ifname, "not a VF"))
                    LOG.warning("OVSDB: Interface %s (relay %d) is not a PCI "
                                "function; skipped (relaying any other "
                                "netdev, through af_packet, needs [control] "
                                "allow_devargs)", ifname, relay_id)
                continue
            spec = self.spec(relay_id, ifname)
            if self._wait(self.manager.submit(manager.AddRelay(
                    spec, SOURCE, conditional=True)), relay_id):
                self.applied[relay_id] = ifname

    @staticmethod
    def _wait(future: concurrent.futures.Future, relay_id: int) -> bool:
        try:
            service.result(future, "OVSDB: relay %d" % relay_id)
            return True
        except Exception as exc:
            LOG.error("OVSDB: relay %d: %s", relay_id, exc)
            return False
