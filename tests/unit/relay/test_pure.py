# SPDX-License-Identifier: Apache-2.0
"""The data plane's pure parts beyond placement (no EAL, no root, no
hugepages): which guest queue a frame goes to, when a held burst is given
up, and how a relay's memory is sized."""
from __future__ import annotations

import struct

from vio4wd_agent.relay._dpdk import ffi, lib

MAC_A, MAC_B = bytes.fromhex("020000000001"), bytes.fromhex("020000000002")


def eth(payload: bytes, ethertype: int, vlans: tuple[int, ...] = ()) -> bytes:
    tags = b"".join(struct.pack("!HH", 0x8100, v) for v in vlans)
    return MAC_A + MAC_B + tags + struct.pack("!H", ethertype) + payload


def ipv4(src: int, dst: int, proto: int = 17, sport: int = 1000,
         dport: int = 2000, frag: int = 0) -> bytes:
    hdr = struct.pack("!BBHHHBBHII", 0x45, 0, 28, 0, frag, 64, proto, 0,
                      src, dst)
    return hdr + struct.pack("!HHHH", sport, dport, 8, 0)


def ipv6(src: int, dst: int, sport: int = 1000, dport: int = 2000) -> bytes:
    hdr = struct.pack("!IHBB", 6 << 28, 8, 17, 64) + \
        src.to_bytes(16, "big") + dst.to_bytes(16, "big")
    return hdr + struct.pack("!HHHH", sport, dport, 8, 0)


def queue(frame: bytes, nq: int = 4) -> int:
    buf = ffi.new("uint8_t[]", frame)
    return lib.v4w_flow_queue(buf, len(frame), nq)


def test_one_flow_one_queue():
    frame = eth(ipv4(0x0a000001, 0x0a000002), 0x0800)
    assert len({queue(frame) for _ in range(10)}) == 1
    assert queue(frame, 1) == 0
    # VLAN tags are skipped: the flow is the same with or without them.
    assert queue(eth(ipv4(0x0a000001, 0x0a000002), 0x0800, (5,))) == \
        queue(frame)
    assert queue(eth(ipv4(0x0a000001, 0x0a000002), 0x0800, (5, 7))) == \
        queue(frame)


def test_flows_spread_over_every_queue():
    for nq in (2, 3, 4, 8, 32):
        got = [queue(eth(ipv4(0x0a000001, 0x0a000002, sport=1024 + i),
                         0x0800), nq) for i in range(64 * nq)]
        assert set(got) == set(range(nq)), nq
        # No queue gets less than half its share.
        assert min(got.count(q) for q in range(nq)) >= 32, nq


def test_ports_count_except_in_fragments():
    a = eth(ipv4(1, 2, sport=1), 0x0800)
    assert {queue(eth(ipv4(1, 2, sport=p), 0x0800), 32)
            for p in range(64)} != {queue(a, 32)}
    # A fragmented datagram (MF set, or an offset): its later fragments
    # carry no ports, so none of them count and all go one way.
    for frag in (0x2000, 0x0010, 0x2010):
        assert len({queue(eth(ipv4(1, 2, sport=p, frag=frag), 0x0800), 32)
                    for p in range(64)}) == 1, hex(frag)


def test_ipv6_and_other_protocols():
    six = eth(ipv6(1, 2), 0x86DD)
    assert queue(six) == queue(eth(ipv6(1, 2), 0x86DD))
    assert {queue(eth(ipv6(1, 2, sport=p), 0x86DD), 32)
            for p in range(64)} != {queue(six, 32)}
    # Non-IP (ARP): by MAC addresses and type, still one flow one queue.
    arp = eth(bytes(28), 0x0806)
    assert queue(arp) == queue(eth(bytes(range(28)), 0x0806))
    # Truncated frames go to the first queue rather than being misread.
    assert queue(b"\x00" * 10) == 0
    assert 0 <= queue(eth(b"\x45", 0x0800)) < 4


def test_held_burst_given_up_only_without_progress():
    last = ffi.new("uint64_t *", 0)
    assert lib.v4w_held_gives_up(last, 100, 0, 50) == 0     # first try
    assert last[0] == 100
    assert lib.v4w_held_gives_up(last, 150, 0, 50) == 0     # 50: not yet
    assert lib.v4w_held_gives_up(last, 149, 3, 50) == 0     # progress
    assert last[0] == 149
    assert lib.v4w_held_gives_up(last, 199, 0, 50) == 0
    assert lib.v4w_held_gives_up(last, 200, 0, 50) == 1     # 51 idle


def test_sizing():
    assert lib.v4w_desc_for(1) == lib.v4w_desc_for(2) == 512
    assert lib.v4w_desc_for(4) == 256
    assert lib.v4w_desc_for(32) == 64          # never fewer than 64
    lcores = 3
    bare = lib.v4w_mbufs_for(0, 1, lcores)
    assert bare >= 4 * lib.V4W_BURST + lcores * 128  # bursts, lcore caches
    # A VF adds every descriptor of both directions of every queue.
    for nq in (1, 2, 4, 32):
        assert lib.v4w_mbufs_for(1, nq, lcores) - \
            lib.v4w_mbufs_for(0, nq, lcores) == 2 * nq * lib.v4w_desc_for(nq)
    # A standard frame fits a default mbuf; a jumbo one gets a larger data
    # room unless the VF scatters it over several.
    std = lib.v4w_room_for(1500, 0)
    assert std >= 1518 and lib.v4w_room_for(9000, 1) == std
    assert lib.v4w_room_for(9000, 0) >= 9018
    assert lib.v4w_room_for(9000, 0) % 1024 == 0
    # The heap one relay may take grows with queues and with jumbo frames.
    assert lib.v4w_relay_heap_bytes(0, 1, 2) < lib.v4w_relay_heap_bytes(
        0, 4, 2) < lib.v4w_relay_heap_bytes(1, 4, 2)
