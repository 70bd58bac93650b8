# SPDX-License-Identifier: Apache-2.0
"""Restart-safe state: what port control registered comes back after
``kill -9`` and a restart; a damaged journal is set aside and what is
valid is restored."""
from __future__ import annotations

import textwrap

from vio4wd_agent.control import client, protocol
from tests.functional import util
from tests.functional.agentproc import native_agent
from tests.functional.conftest import VM_MAC


def _relays(agent) -> dict[int, object]:  # type: ignore[no-untyped-def]
    answer = client.request(agent.ep("stats"), protocol.StatsRequest(),
                            protocol.StatsResponse)
    return {r.id: r for r in answer.relay}


def test_kill_9_and_restart_restores_relays(tmp_path, cpus, hugepage_dir,
                                            vm_factory):
    agent = native_agent(tmp_path, cpus, hugepage_dir, textwrap.dedent("""\
        [vhost]
        dynamic_sockets = true
        client_mode = true
        [relay]
        device_map = 0000:99:00.1=net_null81
        device_map = 0000:99:00.2=net_null82
        """), "restart")
    agent.start().wait_ready()
    try:
        path1 = str(agent.socket_dir / "vm1.sock")
        path2 = str(agent.socket_dir / "vm2.sock")
        assert agent.ctl("add_sock", "--vhost-path", path1, "--pci-addr",
                         "99:00.1").returncode == 0
        # The VM owns its socket (vhost-user server; it waits for the
        # relay, which keeps trying to connect).
        vm = vm_factory(path1, server=True, mac=VM_MAC)
        assert agent.ctl("add_sock", "--vhost-path", path2, "--pci-addr",
                         "99:00.2").returncode == 0
        pin = agent.tool("vio4wd-core-pinner", "--virtio-cpu=1:%d,%d" % (
            cpus["worker"], cpus["worker"]), "--stats-ep", agent.ep("stats"),
            "--sched-ep", agent.ep("core_sched"))
        assert pin.returncode == 0, pin.stderr
        util.wait_for(lambda: _relays(agent)[0].active,
                      what="relay 0 connected to the VM")
        vm.forward("rxonly")
        util.wait_for(lambda: vm.port_stats().rx_packets > 1000,
                      what="traffic before the crash")

        agent.kill()                                   # kill -9
        util.wait_for(lambda: not vm.link_up(), what="VM saw the relay go")
        before = vm.port_stats().rx_packets

        agent.start().wait_ready()
        relays = _relays(agent)
        assert sorted(relays) == [0, 1]
        assert relays[0].vhost.vhost_socket_name == path1
        assert relays[1].vhost.vhost_socket_name == path2
        # shown as asked for (the device map made it net_null81)
        assert relays[0].vf.pci_addr_str == "0000:99:00.1"
        assert relays[1].cpu.vf_to_vm == cpus["worker"]
        q = agent.ctl("query_pci", "--vhost-path", path2)
        assert q.stdout.strip() == "0000:99:00.2"
        # The relay reconnects to the VM by itself; traffic resumes.
        util.wait_for(lambda: _relays(agent)[0].active,
                      what="relay 0 reconnected")
        util.wait_for(lambda: vm.port_stats().rx_packets > before + 1000,
                      what="traffic after the restart")
        assert "journal: restored 2 of 2 relay(s)" in agent.output()
    finally:
        agent.stop()


def test_damaged_journal(tmp_path, cpus, hugepage_dir):
    agent = native_agent(tmp_path, cpus, hugepage_dir, textwrap.dedent("""\
        [vhost]
        dynamic_sockets = true
        [relay]
        device_map = 0000:99:00.1=net_null83
        device_map = 0000:99:00.2=net_null84
        """), "damaged")
    agent.start().wait_ready()
    p1, p2 = str(agent.socket_dir / "a.sock"), str(agent.socket_dir / "b.sock")
    assert agent.ctl("add_sock", "--vhost-path", p1, "--pci-addr",
                     "99:00.1").returncode == 0
    assert agent.ctl("add_sock", "--vhost-path", p2, "--pci-addr",
                     "99:00.2").returncode == 0
    assert agent.stop() == 0
    journal = agent.base / "state" / "journal"
    lines = journal.read_text().splitlines()
    assert len(lines) == 3                   # version + 2 relays
    # Damage the second relay's line; keep the first intact.
    lines[2] = lines[2][:25] + "\x00garbage"
    journal.write_text("\n".join(lines) + "\n")
    agent.start().wait_ready()
    try:
        relays = _relays(agent)
        assert [r.vhost.vhost_socket_name for r in relays.values()] == [p1]
        out = agent.output()
        assert "journal" in out and "is damaged" in out and \
            "a copy is in" in out
        copies = list((agent.base / "state").glob("journal.damaged-*"))
        assert len(copies) == 1 and "garbage" in copies[0].read_text()
    finally:
        agent.stop()
