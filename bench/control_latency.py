#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Control-plane latency of a running agent, over its ZeroMQ endpoints.

- ADD_SOCK -> the socket accepts connections, and REMOVE_SOCK -> the
  socket is gone: p50/p99 over 200 operations (a net_null VF each time,
  probed and released by DPDK);
- a StatsRequest answered with 32 relays: p50/p99 over 200 requests.

Usage (root): .venv/bin/python bench/control_latency.py [--ops N]
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import time

from vio4wd_agent.conf.settings import online_cpus
from vio4wd_agent.control import client, protocol
from vio4wd_agent.demo import hugepages
from measure import listening, ms, start_agent  # bench/measure.py

R = protocol.PortControlRequest




def port(op: int, path: str) -> object:
    msg = R(op=op, vhost_path=path, conditional=False)
    msg.pci_addrs.add(domain=0, bus=0x99, slot=0, function=1)
    return msg


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ops", type=int, default=200)
    args = parser.parse_args()
    cpus = online_cpus()
    tmp = tempfile.mkdtemp(prefix="v4wlat-")
    huge = hugepages.Hugepages(os.path.join(tmp, "huge"), 512)
    huge_dir = huge.setup()
    zmq_dir = os.path.join(tmp, "zmq")
    maps = "".join("device_map = 0000:98:%02x.0=net_null%d\n" % (i, i + 1)
                   for i in range(32))
    conf = os.path.join(tmp, "agent.conf")
    with open(conf, "w") as f:
        f.write("[dataplane]\nworker_cpus = %d\nmain_lcore = %d\n"
                "hugepage_dir = %s\nfile_prefix = v4wlat\nlog_level = 3\n"
                "[vhost]\nsocket_dir = %s\ndynamic_sockets = true\n"
                "[relay]\ndevice_map = 0000:99:00.1=net_null0\n%s"
                "[agent]\npid_file =\nstate_dir = %s\n[metrics]\nport = 0\n"
                "[libvirt]\nenabled = false\n"
                "[control]\nzmq_port_control_ep = ipc://%s/pc\n"
                "zmq_stats_ep = ipc://%s/stats\nzmq_core_sched_ep =\n"
                "zmq_config_ep =\n" % (cpus[-1], cpus[0], huge_dir or "",
                                       os.path.join(tmp, "socks"), maps,
                                       os.path.join(tmp, "state"), zmq_dir,
                                       zmq_dir))
    agent = start_agent(conf)
    pc_ep, stats_ep = "ipc://%s/pc" % zmq_dir, "ipc://%s/stats" % zmq_dir
    try:
        deadline = time.monotonic() + 60
        while not os.path.exists(os.path.join(zmq_dir, "pc")):
            if time.monotonic() > deadline or agent.poll() is not None:
                raise SystemExit("agent did not start")
            time.sleep(0.05)
        time.sleep(0.5)
        add, remove = [], []
        path = os.path.join(tmp, "socks", "vhu-bench")
        for _ in range(args.ops):
            t0 = time.perf_counter()
            answer = client.request(pc_ep, port(R.ADD_SOCK, path),
                                    protocol.PortControlResponse)
            assert answer.status == answer.OK, answer
            while not listening(path):
                pass
            add.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            answer = client.request(pc_ep, port(R.REMOVE_SOCK, path),
                                    protocol.PortControlResponse)
            assert answer.status == answer.OK, answer
            while os.path.exists(path):
                pass
            remove.append(time.perf_counter() - t0)
        for i in range(32):
            msg = R(op=R.ADD_SOCK,
                    vhost_path=os.path.join(tmp, "socks", "s%d" % i))
            msg.pci_addrs.add(domain=0, bus=0x98, slot=i, function=0)
            answer = client.request(pc_ep, msg, protocol.PortControlResponse)
            assert answer.status == answer.OK, answer
        lat = []
        for _ in range(args.ops):
            t0 = time.perf_counter()
            answer = client.request(stats_ep, protocol.StatsRequest(),
                                    protocol.StatsResponse)
            lat.append(time.perf_counter() - t0)
            assert len(answer.relay) == 32
        print("ADD_SOCK -> socket listening: p50 %.2f ms, p99 %.2f ms"
              % (ms(add, .5), ms(add, .99)))
        print("REMOVE_SOCK -> socket gone:   p50 %.2f ms, p99 %.2f ms"
              % (ms(remove, .5), ms(remove, .99)))
        print("stats, 32 relays:             p50 %.2f ms, p99 %.2f ms"
              % (ms(lat, .5), ms(lat, .99)))
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(30)
        huge.teardown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
