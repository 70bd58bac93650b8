# SPDX-License-Identifier: Apache-2.0
"""What the relay offers the guest, where its memory sits, and where its
directions run."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from tests.functional import util
from tests.functional.conftest import connected, relay_spec


def _vm_tx_offloads(vm) -> str:
    return vm.cmd("show port 0 tx_offload capabilities")


@pytest.mark.parametrize("vf,tso,expect_tso,expect_csum", [
    ("net_null20", False, False, False),   # nothing offered without TSO
    ("net_null20", True, False, False),    # net_null cannot finish it
    ("", True, True, True),                # no VF yet: as configured
])
def test_offloads_offered_to_the_guest(engine, sockdir, vm_factory, vf, tso,
                                       expect_tso, expect_csum):
    spec = relay_spec(20, sockdir, vf, tso=tso)
    engine.add_relay(spec)
    vm = vm_factory(spec.vhost_path)
    util.wait_for(connected(engine, 20), what="VM connected")
    caps = _vm_tx_offloads(vm)
    assert ("TCP_TSO" in caps) == expect_tso, caps
    assert ("TCP_CKSUM" in caps) == expect_csum, caps


def test_socket_only_relay_counts_vm_traffic_as_vf_not_ready(
        engine, sockdir, vm_factory):
    spec = relay_spec(21, sockdir, "")
    state = engine.add_relay(spec)
    assert state.vf_port is None and not state.vf_ready
    vm = vm_factory(spec.vhost_path)
    util.wait_for(connected(engine, 21), what="VM connected")
    vm.forward("txonly", "set txpkts 64")
    util.wait_for(lambda: engine.relay(21).vm_to_vf.drop_noconn_pkts > 1000,
                  what="VM traffic dropped as VF not ready")
    vm.cmd("stop")
    out = util.wait_stable(lambda: engine.relay(21).vm_to_vf)
    assert out.tx_pkts == 0
    assert out.rx_pkts == out.drop_noconn_pkts == vm.port_stats().tx_packets


def test_mempool_moves_to_a_numa_node_under_traffic(engine, sockdir,
                                                    vm_factory):
    """The move a VM connecting on another node triggers, forced here (one
    node on this machine): the pool is rebuilt, the VF restarted on it,
    traffic goes on and the counters still add up."""
    spec = relay_spec(22, sockdir, "net_null22")
    engine.add_relay(spec)
    vm = vm_factory(spec.vhost_path)
    util.wait_for(connected(engine, 22), what="VM connected")
    st = engine.relay(22)
    assert st.vm_numa_node == st.numa_node == 0 and st.pool_moves == 0
    vm.forward("txonly", "set txpkts 64")
    util.wait_for(lambda: engine.relay(22).vm_to_vf.tx_pkts > 10000,
                  what="traffic")
    for moves in range(1, 6):
        engine.set_numa_node(22, 0)
        st = engine.relay(22)
        assert st.pool_moves == moves and st.vf_ready and st.vm_connected
        before = st.vm_to_vf.tx_pkts
        util.wait_for(lambda: engine.relay(22).vm_to_vf.tx_pkts > before,
                      what="traffic after move %d" % moves)
    assert engine.resources().mempools == 1
    vm.cmd("stop")
    d = util.wait_stable(lambda: engine.relay(22).vm_to_vf)
    assert d.rx_pkts == vm.port_stats().tx_packets
    assert d.rx_pkts == d.tx_pkts + d.dropped_pkts and d.held == 0


PLACEMENT = textwrap.dedent("""
    import json, sys
    from vio4wd_agent import exception
    from vio4wd_agent.relay.engine import RelayEngine
    from vio4wd_agent.relay.model import RelaySpec
    sockdir, huge = sys.argv[1], sys.argv[2]
    mem = ["--huge-dir", huge, "--in-memory"] if huge else \\
        ["--no-huge", "-m", "256"]
    e = RelayEngine()
    # Three worker lcores (1-3), all on the last CPU: placement is about
    # lcores, not about speed.
    e.start(["t", "--lcores", "0@0,1@%(cpu)s,2@%(cpu)s,3@%(cpu)s",
             "--main-lcore", "0", "--file-prefix", "v4wplace%(pid)s",
             "-a", "0000:00:00.0", "--log-level", "3"] + mem)
    out = {"workers": e.workers(), "placed": [], "errors": []}
    specs = [RelaySpec(i, "%%s/p%%d.sock" %% (sockdir, i), vf="")
             for i in range(4)]
    for s in specs[:3]:
        st = e.add_relay(s)
        out["placed"].append([st.vf_to_vm.cpu, st.vm_to_vf.cpu])
    st = e.add_relay(RelaySpec(3, specs[3].vhost_path, cpus=(3, 3)))
    out["placed"].append([st.vf_to_vm.cpu, st.vm_to_vf.cpu])
    for cpus in ((0, 1), (4, None)):
        try:
            e.add_relay(RelaySpec(9, sockdir + "/p9.sock", cpus=cpus))
        except exception.InvalidArgument as exc:
            out["errors"].append(str(exc))
    e.remove_relay(0)
    st = e.add_relay(specs[0])
    out["refill"] = [st.vf_to_vm.cpu, st.vm_to_vf.cpu]
    e.shutdown()
    print(json.dumps(out))
""")


def test_unpinned_directions_go_to_the_least_loaded_worker(
        sockdir, hugepage_dir, cpus):
    code = PLACEMENT % {"cpu": cpus["worker"], "pid": os.getpid()}
    proc = subprocess.run([sys.executable, "-c", code, sockdir,
                           hugepage_dir or ""], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.splitlines()[-1])
    assert out["workers"] == [1, 2, 3]
    # Six directions over three workers: two each, in turn.
    assert out["placed"][:3] == [[1, 2], [3, 1], [2, 3]]
    assert out["placed"][3] == [3, 3]              # explicit pins
    assert "CPU 0 for VF->VM is not one of the worker" in out["errors"][0]
    assert "CPU 4 for VF->VM is not one of the worker" in out["errors"][1]
    # Relay 0 left lcores 1 and 2 with one direction fewer: refilled there.
    assert sorted(out["refill"]) == [1, 2]
