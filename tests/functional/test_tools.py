# SPDX-License-Identifier: Apache-2.0
"""The CLIs and endpoints around a running agent: vio4wd-stats,
vio4wd-core-pinner, vio4wd-monitor-load, Prometheus metrics, and port
control by command files in an IPC directory."""
from __future__ import annotations

import grp
import json
import os
import stat
import re
import subprocess
import sys
import textwrap
import time
import urllib.request

import pytest
import zmq
from prometheus_client.parser import text_string_to_metric_families

from vio4wd_agent.cmd import stats as stats_cmd
from vio4wd_agent.control import client, protocol
from vio4wd_agent.control import stats as stats_server
from vio4wd_agent.demo import rawport
from tests.functional import util
from tests.functional.agentproc import native_agent
from tests.functional.conftest import KERNEL_MAC, VM_MAC


@pytest.fixture
def agent(tmp_path, cpus, hugepage_dir, veth):
    dpdk_if, kernel_if = veth()
    a = native_agent(tmp_path, cpus, hugepage_dir, textwrap.dedent("""\
        [relay]
        static_vfs = net_af_packet70,iface=%s=0
        static_vfs = net_null71=1
        """) % dpdk_if, "tools")
    a.kernel_if = kernel_if
    a.start().wait_ready()
    yield a
    a.stop()


def stats(agent, delay: int = 0):  # type: ignore[no-untyped-def]
    return client.request(agent.ep("stats"), protocol.StatsRequest(
        delay=delay), protocol.StatsResponse, 2000 + delay)


def test_stats_cli_and_metrics_agree_with_the_relay(agent, vm_factory,
                                                    kernel_port):
    vm = vm_factory(str(agent.socket_dir / "virtio-forwarder0.sock"))
    util.wait_for(lambda: stats(agent).relay[0].active, what="connected")
    vm.forward("rxonly")
    port = kernel_port(agent.kernel_if)
    util.send_paced(lambda i: port.send(rawport.frame(VM_MAC, KERNEL_MAC, i)),
                    300, lambda: vm.port_stats().rx_packets, what="the VM")

    flat = agent.tool("vio4wd-stats", "--stats-ep", agent.ep("stats"),
                      "--delay", "100", "--relay", "0")
    assert flat.returncode == 0, flat.stderr
    lines = flat.stdout.splitlines()
    assert "relay_0.active=True" in lines
    pattern = re.compile(r"^relay_0\.[a-z_]+(\.cpu_\d+)?\.?[a-z_]*=.+$")
    assert all(pattern.match(line) for line in lines), lines
    # The same fields, in the same order, as the protocol's answer; the
    # counters (traffic is over) the same values.  Rates are measured
    # over each request's own window, so only their form is compared.
    direct = client.request(agent.ep("stats"), protocol.StatsRequest(
        relay=[0]), protocol.StatsResponse)
    expect = list(stats_cmd.flat_lines(direct))

    def split(text: list[str]) -> tuple[list[str], list[str]]:
        keys = [line.split("=", 1)[0] for line in text]
        return keys, [line for line in text if "_rate_" not in line]
    assert split(lines) == split(expect)
    rates = [float(line.split("=", 1)[1]) for line in lines
             if "_rate_" in line]
    assert rates and all(r >= 0 for r in rates)
    assert any(line.endswith(".pkts_rx_from_vf=300") for line in lines)

    as_json = agent.tool("vio4wd-stats", "--stats-ep", agent.ep("stats"),
                         "--format", "json", "--include-inactive")
    data = json.loads(as_json.stdout)
    assert {r["id"] for r in data["relay"]} == {0, 1}
    table = agent.tool("vio4wd-stats", "--stats-ep", agent.ep("stats"),
                       "--format", "table", "--include-inactive")
    assert table.stdout.splitlines()[0].startswith("relay")

    text = urllib.request.urlopen(agent.metrics_url(),
                                  timeout=util.DEADLINE).read()
    families = {f.name: f for f in
                text_string_to_metric_families(text.decode())}
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for f in families.values() for s in f.samples}

    def metric(name: str, **labels: str) -> float:
        return samples[(name, tuple(sorted(labels.items())))]

    r0 = client.request(agent.ep("stats"), protocol.StatsRequest(relay=[0]),
                        protocol.StatsResponse).relay[0]
    a = r0.vf_to_vm
    assert metric("vio4wd_relay_packets_total", relay="0",
                  direction="vf_to_vm", stage="rx") == a.pkts_rx_from_vf == 300
    assert metric("vio4wd_relay_packets_total", relay="0",
                  direction="vf_to_vm", stage="tx") == a.pkts_tx_to_vm
    assert metric("vio4wd_relay_bytes_total", relay="0",
                  direction="vf_to_vm", stage="tx") == a.bytes_tx_to_vm
    assert metric("vio4wd_relay_dropped_packets_total", relay="0",
                  direction="vf_to_vm", cause="queue_full") == \
        a.pkts_dropped_vm_queue_full
    assert metric("vio4wd_relay_queue_packets_total", relay="0",
                  direction="vf_to_vm", queue="0") == 300
    assert metric("vio4wd_relay_vm_connected", relay="0") == 1
    assert metric("vio4wd_relay_vm_connected", relay="1") == 0
    assert metric("vio4wd_relay_forwarding", relay="1") == 0
    worker = str(r0.cpu.vf_to_vm)
    assert metric("vio4wd_worker_busy_cycles_total", cpu=worker) > 0
    assert metric("vio4wd_worker_directions", cpu=worker) == 4


def test_endpoint_permissions(tmp_path, cpus, hugepage_dir):
    a = native_agent(tmp_path, cpus, hugepage_dir,
                     "[control]\nendpoint_group = kvm\n", "perm")
    a.start().wait_ready()
    try:
        for name in ("port_control", "stats", "core_sched", "config"):
            st = os.stat(a.ep(name)[len("ipc://"):])
            assert stat.S_ISSOCK(st.st_mode)
            assert stat.S_IMODE(st.st_mode) == 0o660, name
            assert st.st_gid == grp.getgrnam("kvm").gr_gid, name
    finally:
        a.stop()
    assert not os.path.exists(a.ep("stats")[len("ipc://"):])


def test_concurrent_stats_clients_do_not_disturb_each_other(agent,
                                                           kernel_port,
                                                           vm_factory):
    """A client measuring rates over a window gets the rate of that whole
    window, however many other clients ask meanwhile (virtio-forwarder
    reset counters on every query, so the others stole its traffic).

    Timing-free: relay 0 has a VM and no traffic but what this test sends
    (the VM does not forward; the relay counts what it takes from the VF
    all the same). One DEALER socket sends a 5 s request and then a plain
    one; the agent reads a peer's requests in order, so once the plain one
    is answered the slow one's first sample is taken. Then 300 frames go to
    relay 0 while other clients ask over and over. The slow answer's
    counter must have moved by exactly what it reports: rate * window, with
    the window at least the 5 s asked for and at most the time its answer
    took to come.
    """
    delay_ms = 5000
    # A VM (not forwarding: what the relay takes it drops as "VM queue
    # full", counted all the same) so that the VF is polled.
    vm_factory(str(agent.socket_dir / "virtio-forwarder0.sock"))
    util.wait_for(lambda: stats(agent).relay[0].active, what="connected")
    base = stats(agent).relay
    before = {r.id: r for r in base}[0].vf_to_vm.pkts_rx_from_vf
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(agent.ep("stats"))
    try:
        t0 = time.monotonic()
        for delay in (delay_ms, 0):
            sock.send_multipart([b"", protocol.StatsRequest(
                relay=[0], delay=delay).SerializeToString()])
        assert sock.poll(util.DEADLINE * 1000), "no answer to the plain one"
        first = protocol.StatsResponse.FromString(sock.recv_multipart()[-1])
        assert first.relay[0].vf_to_vm.pkts_rx_from_vf == before

        port = kernel_port(agent.kernel_if)
        util.send_paced(lambda i: port.send(rawport.frame(
            VM_MAC, KERNEL_MAC, i)), 300,
            lambda: stats(agent).relay[0].vf_to_vm.pkts_rx_from_vf - before)
        quick = []
        while not sock.poll(0):
            quick.append(stats(agent, delay=50))
        slow = protocol.StatsResponse.FromString(sock.recv_multipart()[-1])
        elapsed = time.monotonic() - t0
    finally:
        sock.close(0)
    r = {x.id: x for x in slow.relay}[0].vf_to_vm
    moved = r.pkts_rx_from_vf - before
    # (The frames take milliseconds; a window of seconds sees them.)
    assert 0 < moved <= 300 and r.pkt_rate_rx_from_vf > 0
    window = moved / r.pkt_rate_rx_from_vf
    # (The first sample may be one shared with a request a few ms older.)
    assert delay_ms / 1000 * 0.999 <= window <= \
        elapsed * 1.001 + stats_server.SHARE_SAMPLE_S, (
            window, elapsed, len(quick))
    # Other clients' answers: counters never go back.
    counts = [q.relay[0].vf_to_vm.pkts_rx_from_vf for q in quick]
    assert counts == sorted(counts)


def test_core_pinner_and_load_monitor(agent, cpus, vm_factory):
    # Relay 1 (net_null: frames as fast as it polls) with a VM keeps its
    # worker busy, retrying bursts the VM does not take: the VM does not
    # forward, so it leaves the CPU it shares with the agent alone.
    vm_factory(str(agent.socket_dir / "virtio-forwarder1.sock"))
    util.wait_for(lambda: {r.id: r for r in stats(agent).relay}[1].active,
                  what="VM on relay 1")
    ep = ("--stats-ep", agent.ep("stats"), "--sched-ep",
          agent.ep("core_sched"))
    shown = agent.tool("vio4wd-core-pinner", "--print-core-map", *ep)
    assert shown.returncode == 0, shown.stderr
    assert "== %02d ==" % cpus["worker"] in shown.stdout
    ok = agent.tool("vio4wd-core-pinner", "--virtio-cpu=1:%d,%d" % (
        cpus["worker"], cpus["worker"]), *ep)
    assert ok.returncode == 0 and "Setting relay 1" in ok.stdout
    bad = agent.tool("vio4wd-core-pinner", "--virtio-cpu=1:%d" % cpus["main"],
                     *ep)
    assert bad.returncode == 1
    assert "not one of the worker CPUs" in bad.stderr
    junk = agent.tool("vio4wd-core-pinner", "--virtio-cpu=one:two", *ep)
    assert junk.returncode == 1 and "is not N:C1[,C2]" in junk.stderr
    config = client.request(agent.ep("config"), protocol.ConfigRequest(),
                            protocol.ConfigResponse)
    assert {c.relay_number for c in config.relay_cpu_map} == {0, 1}

    load = agent.tool("vio4wd-monitor-load", "--stats-ep", agent.ep("stats"),
                      "--count", "2", "--interval", "0.3")
    assert load.returncode == 0, load.stderr
    bars = [line for line in load.stdout.splitlines()
            if line.startswith("CPU")]
    assert len(bars) == 2 and "[#" in bars[-1]    # relay 1 keeps it busy


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([os.path.join(os.path.dirname(sys.executable),
                                        args[0]), *args[1:]],
                          capture_output=True, text=True, timeout=30)


def test_clis_say_what_is_wrong(tmp_path):
    nobody = "ipc://%s/none" % tmp_path
    for cmd in (("vio4wd-stats", "--stats-ep", nobody),
                ("vio4wd-ctl", "add", "--virtio-id", "1", "--pci-addr",
                 "01:00.0", "--zmq-ep", nobody, "--timeout", "300"),
                ("vio4wd-monitor-load", "--stats-ep", nobody, "--count", "1"),
                ("vio4wd-core-pinner", "--print-core-map", "--sched-ep",
                 nobody)):
        out = _cli(*cmd)
        assert out.returncode == 1, (cmd, out.stderr)
        assert "no answer from" in out.stderr, out.stderr
    for args in (("add", "--virtio-id", "x"), ("frobnicate",),
                 ("add", "--mode", "9"), ("add", "--pci-addr", "nope")):
        out = _cli("vio4wd-ctl", *args, "--zmq-ep", nobody, "--timeout",
                   "300")
        assert out.returncode == 1 and ("error:" in out.stderr or
                                        "not a PCI address" in out.stderr)


def test_ipc_directory_port_control(tmp_path, cpus, hugepage_dir, veth):
    ipc = tmp_path / "ipc" / "ipc"
    a = native_agent(tmp_path, cpus, hugepage_dir, textwrap.dedent("""\
        [control]
        port_control = ipc
        ipc_dir = %s
        [relay]
        device_map = 0000:99:00.1=net_null72
        """) % ipc, "ipc")
    a.start().wait_ready()
    try:
        def command(name: str, text: str) -> str:
            tmp = ipc / (".%s" % name)
            tmp.write_text(text)
            os.rename(tmp, ipc / name)
            result = ipc / (name + ".result")
            util.wait_for(result.exists, what="answer to %s" % name)
            assert not (ipc / name).exists()
            return result.read_text().strip()

        assert command("add5", json.dumps({
            "op": "add", "virtio_id": 5,
            "pci_addrs": ["0000:99:00.1"]})) == "OK"
        assert [r.id for r in stats(a).relay] == [5]
        path = str(a.socket_dir / "virtio-forwarder5.sock")
        assert command("q", json.dumps({"op": "query_pci",
                                        "vhost_path": path})) == \
            "OK 0000:99:00.1"
        assert command("dup", json.dumps({
            "op": "add", "virtio_id": 5, "pci_addrs": ["99:00.1"],
            "conditional": False})).startswith("ERROR -17 ADD: relay 5")
        assert command("junk", "{not json").startswith("ERROR -22")
        assert command("badop", json.dumps({"op": "explode"})).startswith(
            "ERROR -22 op must be one of")
        dpdk_if, _ = veth()
        assert "is not a PCI function" in command(
            "legacy", "add_port %s\n" % dpdk_if)
        assert command("rm", json.dumps({
            "op": "remove", "virtio_id": 5,
            "pci_addrs": ["0000:99:00.1"]})) == "OK"
        assert stats(a).relay == []
        assert a.proc.poll() is None
    finally:
        a.stop()

    # A directory anyone may write to is refused, with a clear message,
    # sticky or not.
    for mode, says in ((0o777, "writable by others (mode 0777)"),
                       (0o1777, "anyone may write it")):
        os.chmod(ipc, mode)
        a.start()
        assert a.proc.wait(60) != 0
        assert says in a.output() and str(ipc) in a.output(), a.output()
