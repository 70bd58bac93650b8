#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Watcher latency of a running agent: how long from a change in OVSDB or
libvirt to the relay being there.

- OVSDB: ``ovs-vsctl --no-wait set Interface ... external_ids:
  virtio_forwarder=1`` -> relay 1 listed with its VF (af_packet on a veth
  in a namespace of the benchmark), and removing the key -> relay gone;
  timed from just before ovs-vsctl is spawned (so the spawn counts);
- libvirt: ``defineXML`` of a domain with a vhost-user interface in the
  agent's socket directory -> the socket accepts connections, and
  ``undefine`` -> the socket is gone; timed from just before the call,
  so libvirtd's own work counts (its one-off QEMU capability probe is
  done by a warm-up define first);
- the qemu hook: the installed ``qemu.d/vio4wd`` script run as libvirtd
  runs it at ``prepare`` for a transient domain -> it returns (the socket
  is then listening); this is what a ``virsh create`` waits for.  Its
  ``release`` then drops the relay (stopped_grace 0 here).

The OVSDB times include ovs-vsctl's spawn (~8 ms here) and DPDK's
af_packet probe of the veth stand-in (~50 ms to add, ~35 ms to remove on
this kernel: PACKET_RX_RING and munmap wait for RCU); a PCI VF has
neither.

A private ovsdb-server and a private libvirtd (as the functional tests
use) are started and stopped by this script.  p50/p99 over --events
events each.  Goal: p99 < 100 ms.

Usage (root): .venv/bin/python bench/watch_latency.py [--events N]
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from typing import Callable

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from vio4wd_agent.conf.settings import online_cpus  # noqa: E402
from vio4wd_agent.control import client, protocol  # noqa: E402
from vio4wd_agent.demo import netns  # noqa: E402
from tests.functional.domains import Nic, domain_xml  # noqa: E402
from tests.functional.libvirtd import Libvirtd  # noqa: E402
from tests.functional.ovsdb_server import OvsdbServer  # noqa: E402
from measure import listening, ms, start_agent  # noqa: E402  (bench/)





def until(done: Callable[[], bool], timeout: float = 60) -> None:
    """Poll ``done`` every 0.5 ms; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise SystemExit("timed out: see the agent log")
        time.sleep(0.0005)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=100)
    parser.add_argument("--only", choices=("ovsdb", "libvirt"))
    args = parser.parse_args()
    cpus = online_cpus()
    tmp = tempfile.mkdtemp(prefix="v4wwatch-")
    os.chmod(tmp, 0o755)
    ns = netns.NetNamespace.of_this_process("v4wwatch").create()
    ns.enter()
    ns.add_veth("v4wwa", "v4wwb")
    ovs = OvsdbServer(_dir(tmp, "ovsdb")).create().start()
    lv = Libvirtd(os.path.join(tmp, "libvirt")).start()
    socks, zmq_dir = os.path.join(tmp, "socks"), os.path.join(tmp, "zmq")
    conf = os.path.join(tmp, "agent.conf")
    with open(conf, "w") as f:
        f.write("[dataplane]\nworker_cpus = %d\nmain_lcore = %d\n"
                "file_prefix = v4wwatch\nlog_level = 3\nexpected_relays = 4\n"
                "[vhost]\nsocket_dir = %s\n"
                "[agent]\npid_file =\nstate_dir =\n[metrics]\nenabled = "
                "false\n[control]\nport_control = ovsdb\n"
                # the VF stand-in is a veth: af_packet devargs
                "allow_devargs = true\n"
                "zmq_stats_ep = ipc://%s/stats\nzmq_core_sched_ep =\n"
                "zmq_config_ep =\n[ovsdb]\nconnection = %s\n"
                "[libvirt]\nuri = %s\nhook_socket = %s\nstopped_grace = 0\n" % (
                    cpus[-1], cpus[0], socks, zmq_dir, ovs.remote, lv.uri,
                    lv.hook_socket))
    log = open(os.path.join(tmp, "agent.log"), "w")
    agent = start_agent(conf, output=log)
    stats_ep = "ipc://%s/stats" % zmq_dir

    def relay_ids() -> dict[int, str]:
        answer = client.request(stats_ep, protocol.StatsRequest(),
                                protocol.StatsResponse)
        return {r.id: r.vf.pci_addr_str for r in answer.relay}

    try:
        deadline = time.monotonic() + 60
        while not os.path.exists(os.path.join(zmq_dir, "stats")):
            if time.monotonic() > deadline or agent.poll() is not None:
                raise SystemExit("agent did not start; see %s" % log.name)
            time.sleep(0.05)
        time.sleep(1)
        ovs.vsctl("--no-wait", "add-br", "br0")
        ovs.vsctl("--no-wait", "add-port", "br0", "v4wwa")
        o_add, o_del = [], []
        for _ in range(0 if args.only == "libvirt" else args.events):
            t0 = time.perf_counter()
            ovs.vsctl("--no-wait", "set", "Interface", "v4wwa",
                      "external_ids:virtio_forwarder=1")
            until(lambda: 1 in relay_ids())
            o_add.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            ovs.vsctl("--no-wait", "remove", "Interface", "v4wwa",
                      "external_ids", "virtio_forwarder")
            until(lambda: 1 not in relay_ids())
            o_del.append(time.perf_counter() - t0)

        conn = lv.conn()
        sock = os.path.join(socks, "virtio-forwarder2.sock")
        xml = domain_xml("watch-bench", [Nic(sock)])
        l_add, l_del = [], []
        # libvirtd probes QEMU's capabilities at its first define (~4 s,
        # then cached): a warm-up define, not counted.
        if args.only != "ovsdb":
            conn.defineXML(domain_xml("warm-up", [])).undefine()
        for _ in range(0 if args.only == "ovsdb" else args.events):
            t0 = time.perf_counter()
            dom = conn.defineXML(xml)
            until(lambda: listening(sock))
            l_add.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            dom.undefine()
            until(lambda: not os.path.exists(sock))
            l_del.append(time.perf_counter() - t0)
        conn.close()
        hook = os.path.join(lv.base, "etc", "hooks", "qemu.d", "vio4wd")
        sock = os.path.join(socks, "virtio-forwarder3.sock")
        xml = domain_xml("hook-bench", [Nic(sock)])
        h_add = []
        for _ in range(0 if args.only == "ovsdb" else args.events):
            t0 = time.perf_counter()
            subprocess.run([hook, "hook-bench", "prepare", "begin", "-"],
                           input=xml, text=True, check=True)
            h_add.append(time.perf_counter() - t0)
            if not listening(sock):
                raise SystemExit("the hook returned before the socket")
            subprocess.run([hook, "hook-bench", "release", "end", "-"],
                           input=xml, text=True, check=True)
            until(lambda: not os.path.exists(sock))
        n = args.events
        for label, values in (
                ("OVSDB key set -> relay with VF", o_add),
                ("OVSDB key removed -> relay gone", o_del),
                ("libvirt DEFINED -> socket listening", l_add),
                ("libvirt UNDEFINED -> socket gone", l_del),
                ("qemu hook prepare -> returned", h_add)):
            if not values:
                continue
            print("%-37s p50 %6.2f ms  p99 %6.2f ms  (n=%d)"
                  % (label + ":", ms(values, .5), ms(values, .99), n))
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(30)
        lv.cleanup()
        ovs.stop()
        ns.delete()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


def _dir(base: str, name: str):  # type: ignore[no-untyped-def]
    import pathlib
    path = pathlib.Path(base) / name
    path.mkdir()
    return path


if __name__ == "__main__":
    sys.exit(main())
