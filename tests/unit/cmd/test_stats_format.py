# SPDX-License-Identifier: Apache-2.0
"""vio4wd-stats prints virtio-forwarder's flat format: the same lines for
the same StatsResponse, so scripts reading them keep working."""
from __future__ import annotations

from vio4wd_agent.cmd import stats
from vio4wd_agent.control import protocol


def response():  # type: ignore[no-untyped-def]
    out = protocol.StatsResponse(status=protocol.StatsResponse.OK)
    r = out.relay.add(id=3, active=True, socket_id=0)
    r.cpu.vf_to_vm, r.cpu.vm_to_vf = 1, 2
    r.vf.pci_addr_str = "0000:99:00.1"
    r.vhost.vhost_socket_name = "/run/vio/vhu3"
    v = r.vf_to_vm
    v.active, v.internal_state = True, "forwarding"
    v.pkts_rx_from_vf, v.bytes_rx_from_vf = 10, 640
    v.pkts_tx_to_vm, v.bytes_tx_to_vm = 9, 576
    v.pkts_dropped_vm_queue_full, v.bytes_dropped_vm_queue_full = 1, 64
    v.pkts_dropped_vm_not_connected = 0
    v.bytes_dropped_vm_not_connected = 0
    v.pkt_rate_rx_from_vf, v.byte_rate_rx_from_vf = 1.5, 96.0
    v.pkt_rate_tx_to_vm, v.byte_rate_tx_to_vm = 0.0, 0.0
    m = r.vm_to_vf
    m.active, m.internal_state = False, "no VM connected"
    m.pkts_rx_from_vm = m.bytes_rx_from_vm = 0
    m.pkts_tx_to_vf = m.bytes_tx_to_vf = 0
    m.pkts_dropped_vf_queue_full = m.bytes_dropped_vf_queue_full = 0
    m.pkts_dropped_vf_not_connected = 5
    m.bytes_dropped_vf_not_connected = 320
    m.pkt_rate_rx_from_vm = m.byte_rate_rx_from_vm = 0.0
    m.pkt_rate_tx_to_vf = m.byte_rate_tx_to_vf = 0.25
    r2 = out.relay.add(id=7, active=False, socket_id=0)
    r2.vhost.vhost_socket_name = "/run/vio/vhu7"
    r2.reason = "no VF attached"
    r2.vf_to_vm.active, r2.vf_to_vm.internal_state = False, "no VF attached"
    for f in ("pkt_rate_rx_from_vf", "byte_rate_rx_from_vf",
              "pkt_rate_tx_to_vm", "byte_rate_tx_to_vm"):
        setattr(r2.vf_to_vm, f, 0.0)
    r2.vm_to_vf.active, r2.vm_to_vf.internal_state = False, "no VF attached"
    for f in ("pkt_rate_rx_from_vm", "byte_rate_rx_from_vm",
              "pkt_rate_tx_to_vf", "byte_rate_tx_to_vf"):
        setattr(r2.vm_to_vf, f, 0.0)
    return out


# What virtio-forwarder's stats client prints for that response.
EXPECTED = """\
relay_3.active=True
relay_3.cpu.vf_to_vm=1
relay_3.cpu.vm_to_vf=2
relay_3.vf.pci_addr_str=0000:99:00.1
relay_3.vhost.vhost_socket_name=/run/vio/vhu3
relay_3.vf_to_vm.active=True
relay_3.vf_to_vm.internal_state=forwarding
relay_3.vf_to_vm.cpu_1.pkts_rx_from_vf=10
relay_3.vf_to_vm.cpu_1.bytes_rx_from_vf=640
relay_3.vf_to_vm.cpu_1.pkts_tx_to_vm=9
relay_3.vf_to_vm.cpu_1.bytes_tx_to_vm=576
relay_3.vf_to_vm.cpu_1.pkt_rate_rx_from_vf=1.5
relay_3.vf_to_vm.cpu_1.byte_rate_rx_from_vf=96.0
relay_3.vf_to_vm.cpu_1.pkt_rate_tx_to_vm=0.0
relay_3.vf_to_vm.cpu_1.byte_rate_tx_to_vm=0.0
relay_3.vf_to_vm.cpu_1.pkts_dropped_vm_queue_full=1
relay_3.vf_to_vm.cpu_1.bytes_dropped_vm_queue_full=64
relay_3.vf_to_vm.cpu_1.pkts_dropped_vm_not_connected=0
relay_3.vf_to_vm.cpu_1.bytes_dropped_vm_not_connected=0
relay_3.vm_to_vf.active=False
relay_3.vm_to_vf.internal_state=no VM connected
relay_3.vm_to_vf.cpu_2.pkts_rx_from_vm=0
relay_3.vm_to_vf.cpu_2.bytes_rx_from_vm=0
relay_3.vm_to_vf.cpu_2.pkts_tx_to_vf=0
relay_3.vm_to_vf.cpu_2.bytes_tx_to_vf=0
relay_3.vm_to_vf.cpu_2.pkt_rate_rx_from_vm=0.0
relay_3.vm_to_vf.cpu_2.byte_rate_rx_from_vm=0.0
relay_3.vm_to_vf.cpu_2.pkt_rate_tx_to_vf=0.25
relay_3.vm_to_vf.cpu_2.byte_rate_tx_to_vf=0.25
relay_3.vm_to_vf.cpu_2.pkts_dropped_vf_queue_full=0
relay_3.vm_to_vf.cpu_2.bytes_dropped_vf_queue_full=0
relay_3.vm_to_vf.cpu_2.pkts_dropped_vf_not_connected=5
relay_3.vm_to_vf.cpu_2.bytes_dropped_vf_not_connected=320
relay_7.active=False
relay_7.vhost.vhost_socket_name=/run/vio/vhu7
relay_7.vf_to_vm.active=False
relay_7.vf_to_vm.internal_state=no VF attached
relay_7.vf_to_vm.pkt_rate_rx_from_vf=0.0
relay_7.vf_to_vm.byte_rate_rx_from_vf=0.0
relay_7.vf_to_vm.pkt_rate_tx_to_vm=0.0
relay_7.vf_to_vm.byte_rate_tx_to_vm=0.0
relay_7.vm_to_vf.active=False
relay_7.vm_to_vf.internal_state=no VF attached
relay_7.vm_to_vf.pkt_rate_rx_from_vm=0.0
relay_7.vm_to_vf.byte_rate_rx_from_vm=0.0
relay_7.vm_to_vf.pkt_rate_tx_to_vf=0.0
relay_7.vm_to_vf.byte_rate_tx_to_vf=0.0
"""


def test_flat_format_is_virtio_forwarders():
    assert "\n".join(stats.flat_lines(response())) + "\n" == EXPECTED


def test_suppress_zero_hides_integer_zeros_only():
    lines = list(stats.flat_lines(response(), suppress_zero=True))
    assert "relay_3.vm_to_vf.cpu_2.pkts_rx_from_vm=0" not in lines
    assert "relay_3.vf_to_vm.cpu_1.pkt_rate_tx_to_vm=0.0" in lines
    assert "relay_3.vm_to_vf.active=False" in lines
    assert "relay_3.vf_to_vm.cpu_1.pkts_rx_from_vf=10" in lines


def test_json_and_table():
    d = stats.as_dict(response())
    assert d["relay"][0]["vf_to_vm"]["pkts_rx_from_vf"] == "10"
    table = list(stats.table_lines(response()))
    assert table[1].startswith("3") and "forwarding" in table[1]
    assert "why: no VF attached" in table[-1]
