# SPDX-License-Identifier: Apache-2.0
"""Raw Ethernet frames on a kernel interface (AF_PACKET): the kernel side of
a VF stand-in.  Used by the demo, the tests and the benchmarks."""
from __future__ import annotations

import select
import socket
import struct
import time

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

    def receive(self, timeout: float, tag: bytes = b"v4w",
                until: int | None = None) -> list[int]:
        """Sequence numbers of tagged incoming frames seen before
        ``timeout`` passes (or once ``until`` frames are in)."""
        seqs: list[int] = []
        deadline = time.monotonic() + timeout
        while until is None or len(seqs) < until:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            ready, _, _ = select.select([self.sock], [], [], left)
            if not ready:
                break
            data, addr = self.sock.recvfrom(65535)
            if addr[2] == PACKET_OUTGOING:
                continue
            seq = frame_seq(data, tag)
            if seq is not None:
                seqs.append(seq)
        return seqs
