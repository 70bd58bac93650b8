# SPDX-License-Identifier: Apache-2.0
"""As many relays as this DPDK build has ethernet ports: all added, all
carry traffic both ways, all removed, nothing leaked."""
from __future__ import annotations

import pytest

from vio4wd_agent import exception
from tests.functional import util
from tests.functional.conftest import relay_spec


def test_relays_up_to_the_port_limit(engine, sockdir, vm_factory):
    limit = engine.limits().max_ethports
    assert limit >= 2
    specs = [relay_spec(i, sockdir, "net_null%d" % i) for i in range(limit)]
    for spec in specs:
        engine.add_relay(spec)
    assert engine.relay_ids() == list(range(limit))
    res = engine.resources()
    assert (res.relays, res.ports, res.mempools) == (limit, limit, limit)

    # One more VF does not fit: a clear error, the others untouched.
    with pytest.raises(exception.EngineError, match="net_null%d" % limit):
        engine.add_relay(relay_spec(limit, sockdir, "net_null%d" % limit))
    assert engine.resources().ports == limit

    # One testpmd with a virtio-user port per relay is the VM of them all.
    vm = vm_factory([s.vhost_path for s in specs], mbufs=65536,
                    extra=["--rxd=128", "--txd=128"])
    util.wait_for(lambda: all(s.vm_connected for s in engine.relays()),
                  timeout=30, what="every relay connected")
    vm.forward("rxonly")
    util.wait_for(lambda: all(s.vf_to_vm.tx_pkts > 0
                              for s in engine.relays()),
                  timeout=20, what="VF->VM packets on every relay")
    vm.forward("txonly", "set txpkts 64")
    util.wait_for(lambda: all(s.vm_to_vf.tx_pkts > 0
                              for s in engine.relays()),
                  timeout=20, what="VM->VF packets on every relay")
    vm.cmd("stop")
    for port in range(limit):
        assert vm.port_stats(port).rx_packets > 0, port

    for spec in specs:
        engine.remove_relay(spec.relay_id)
    res = engine.resources()
    assert (res.relays, res.ports, res.mempools) == (0, 0, 0)
    # The ports can be had again at once.
    engine.add_relay(specs[0])
    engine.add_relay(specs[-1])
    assert engine.resources().ports == 2
