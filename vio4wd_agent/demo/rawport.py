# SPDX-License-Identifier: Apache-2.0
"""Raw Ethernet frames on a kernel interface (AF_PACKET): the kernel side of
a VF stand-in.  Used by the demo, the tests and the benchmarks."""
from __future__ import annotations

import select
import socket
import struct
import time
from typing import Callable, TypeVar

T = TypeVar("T")

ETH_P_ALL = 0x0003
# A locally administered EtherType-free experimental protocol (IEEE 802).
ETH_P_EXPERIMENT = 0x88B5
PACKET_OUTGOING = 4


def mac_bytes(mac: str) -> bytes:
    return bytes(int(x, 16) for x in mac.split(":"))


def frame(dst: str, src: str, seq: int, size: int = 64,
          tag: bytes = b"v4w") -> bytes:
    """An Ethernet frame (without FCS) carrying ``tag`` and ``seq``."""
    head = mac_bytes(dst) + mac_bytes(src) + struct.pack(
        "!H", ETH_P_EXPERIMENT) + tag + struct.pack("!Q", seq)
    return head + bytes(max(0, size - 4 - len(head)))


def _ip_checksum(header: bytes) -> int:
    total = sum(struct.unpack("!10H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def udp_frame(dst: str, src: str, flow: int, seq: int, size: int = 64,
              tag: bytes = b"v4wf") -> bytes:
    """An IPv4/UDP frame of flow ``flow`` (its source port) carrying
    ``tag``, the flow and ``seq``: what RSS and flow hashing spread."""
    payload = tag + struct.pack("!IQ", flow, seq)
    payload += bytes(max(0, size - 14 - 20 - 8 - len(payload)))
    udp = struct.pack("!HHHH", 10000 + flow, 20000, 8 + len(payload), 0)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp) + len(payload),
                     0, 0, 64, 17, 0, bytes([10, 0, 0, 1]),
                     bytes([10, 0, 0, 2]))
    ip = ip[:10] + struct.pack("!H", _ip_checksum(ip)) + ip[12:]
    return (mac_bytes(dst) + mac_bytes(src) + struct.pack("!H", 0x0800) +
            ip + udp + payload)


def udp_flow_seq(data: bytes, tag: bytes = b"v4wf") -> tuple[int, int] | None:
    off = 14 + 20 + 8
    if len(data) < off + len(tag) + 12 or data[12:14] != b"\x08\x00" or \
            data[off:off + len(tag)] != tag:
        return None
    flow, seq = struct.unpack("!IQ", data[off + len(tag):off + len(tag) + 12])
    return flow, seq


def frame_seq(data: bytes, tag: bytes = b"v4w") -> int | None:
    if len(data) < 14 + len(tag) + 8 or data[12:14] != struct.pack(
            "!H", ETH_P_EXPERIMENT) or data[14:14 + len(tag)] != tag:
        return None
    return struct.unpack("!Q", data[14 + len(tag):22 + len(tag)])[0]


class RawPort:
    """An AF_PACKET socket bound to one interface of the current netns."""

    def __init__(self, ifname: str) -> None:
        self.ifname = ifname
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW,
                                  socket.htons(ETH_P_ALL))
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
        self.sock.bind((ifname, 0))

    def close(self) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.send(data)

    def send_frames(self, dst: str, src: str, count: int, size: int = 64,
                    first_seq: int = 0, tag: bytes = b"v4w",
                    batch: int = 32, gap: float = 0.001) -> None:
        """Send ``count`` numbered frames, ``batch`` at a time with ``gap``
        seconds between batches, so a receiver sharing our CPU keeps up."""
        for i in range(count):
            self.sock.send(frame(dst, src, first_seq + i, size, tag))
            if gap and (i + 1) % batch == 0:
                time.sleep(gap)

    def _incoming(self, timeout: float, until: int | None,
                  parse: Callable[[bytes], T | None]) -> list[T]:
        """parse() of each incoming frame it accepts, in arrival order,
        until ``timeout`` passes or ``until`` were accepted."""
        got: list[T] = []
        deadline = time.monotonic() + timeout
        while until is None or len(got) < until:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            ready, _, _ = select.select([self.sock], [], [], left)
            if not ready:
                break
            data, addr = self.sock.recvfrom(65535)
            if addr[2] == PACKET_OUTGOING:
                continue
            value = parse(data)
            if value is not None:
                got.append(value)
        return got

    def receive_flows(self, timeout: float,
                      until: int) -> list[tuple[int, int]]:
        """(flow, seq) of incoming udp_frame()s, in arrival order."""
        return self._incoming(timeout, until, udp_flow_seq)

    def receive(self, timeout: float, tag: bytes = b"v4w",
                until: int | None = None) -> list[int]:
        """Sequence numbers of tagged incoming frames seen before
        ``timeout`` passes (or once ``until`` frames are in)."""
        return self._incoming(timeout, until, lambda d: frame_seq(d, tag))
