# SPDX-License-Identifier: Apache-2.0
"""DPDK heap: relays made and removed, again and again, give back every
byte they took (VFs with several queues, bonds, socket-only relays, VFs
attached to a living relay, VMs coming and going), and the memory plan for
N relays holds N relays."""
from __future__ import annotations

import os

import pytest

from vio4wd_agent.relay.model import RelaySpec
from tests.functional import util
from tests.functional.conftest import connected, relay_spec


def _heap(engine) -> int:  # type: ignore[no-untyped-def]
    return engine.memory().alloc_bytes


def _cycles_keep_heap(engine, cycle) -> None:  # type: ignore[no-untyped-def]
    """After a few warm-up cycles (state made once, lazily), 40 more
    leave the heap in use exactly where it was."""
    for _ in range(3):
        cycle()
    before = _heap(engine)
    for _ in range(40):
        cycle()
    assert _heap(engine) == before, _heap(engine) - before


def test_add_remove_cycles_free_all_heap(engine, sockdir):
    kinds = [
        lambda: relay_spec(60, sockdir, "net_null60"),      # 4 RSS queues
        lambda: relay_spec(60, sockdir, "net_null60", vf_queues=8),
        lambda: relay_spec(60, sockdir, ""),                 # socket only
        lambda: RelaySpec(60, sockdir + "/b.sock", vf="net_bonding60",
                          bond_members=("net_null61", "net_null62")),
        lambda: relay_spec(60, sockdir, "net_tap60,iface=v4mem60"),
    ]
    for make in kinds:
        spec = make()

        def cycle() -> None:
            engine.add_relay(spec)
            engine.remove_relay(60)
        _cycles_keep_heap(engine, cycle)


def test_af_packet_cycles_free_all_heap(engine, sockdir, veth):
    dpdk_if, _ = veth()
    spec = relay_spec(63, sockdir, "net_af_packet63,iface=%s" % dpdk_if)

    def cycle() -> None:
        engine.add_relay(spec)
        engine.remove_relay(63)
    _cycles_keep_heap(engine, cycle)


def test_vf_attach_detach_cycles_free_all_heap(engine, sockdir):
    engine.add_relay(relay_spec(61, sockdir, ""))
    vf = relay_spec(61, sockdir, "net_null63")

    def cycle() -> None:
        engine.set_vf(vf)
        engine.clear_vf(61)
    _cycles_keep_heap(engine, cycle)


def test_vm_connect_cycles_free_all_heap(engine, sockdir, vm_factory):
    spec = relay_spec(62, sockdir, "net_null64")
    engine.add_relay(spec)

    def cycle() -> None:
        vm = vm_factory(spec.vhost_path)
        util.wait_for(connected(engine, 62), what="VM connected")
        vm.stop()
        util.wait_for(lambda: not engine.relay(62).vm_connected,
                      what="VM gone")
    cycle()
    before = _heap(engine)
    for _ in range(5):
        cycle()
    # Per connection vhost may keep a few structures until the next one;
    # nothing may grow with the number of connections.
    assert _heap(engine) <= before, _heap(engine) - before


@pytest.mark.parametrize("relays,jumbo", [(32, False), (6, True)])
def test_the_memory_plan_holds_what_it_promises(relays, jumbo, cpus, sockdir,
                                                test_netns):
    """A data plane without hugepages, given exactly what the plan says
    for N relays, holds N relays whose VFs have the most queues a VF gets
    by default (net_null: RSS, 4 pairs), with jumbo frames or not."""
    from vio4wd_agent.relay import eal
    from tests.functional.engine_host import RemoteEngine
    mb = eal.memory_needed_mb(relays, jumbo, 0, lcores=2)
    args = eal.build_eal_args(
        main_lcore=cpus["main"], worker_cpus=[cpus["worker"]],
        file_prefix="v4wplan%d-%d" % (os.getpid(), relays),
        memory=eal.MemoryPlan(None, mb, "test"), log_level=4)
    remote = RemoteEngine(args)
    try:
        for i in range(relays):
            st = remote.add_relay(RelaySpec(
                i, "%s/p%d.sock" % (sockdir, i), vf="net_null%d" % i,
                jumbo=jumbo))
            assert st.vf_queues == 4 and st.vf_ready
        assert remote.resources().relays == relays
    finally:
        remote.close()
