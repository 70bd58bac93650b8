# SPDX-License-Identifier: Apache-2.0
"""Plain data describing relays: what is asked for and what is observed."""
from __future__ import annotations

import dataclasses
import enum


# Relay ids travel as int32 in ConfigResponse and CoreSchedRequest
# (RelayCPU.relay_number), so no relay has a larger one.
MAX_RELAY_ID = 2**31 - 1
# The data plane's limits, as dpdk_ext/vio4wd.h has them for C (a unit
# test checks that they agree): guest (and VF) queue pairs of a relay,
# members of a bond.
MAX_QUEUES = 32
MAX_BOND = 8


class Direction(enum.IntEnum):
    VF_TO_VM = 0
    VM_TO_VF = 1


# Why a relay does not forward, by the data plane's reason code.
REASONS = {
    0: "forwarding",
    1: "no VF attached",
    2: "VF not started",
    3: "VF link down",
    4: "no VM connected",
    5: "VM connected, guest driver has not enabled a queue yet",
}


@dataclasses.dataclass(frozen=True)
class RelaySpec:
    """A relay as requested: one VF (or none yet) and one vhost-user socket."""

    relay_id: int
    vhost_path: str
    vf: str = ""                    # DPDK devargs, or "" for a socket only
    # The VF as whoever asked named it (a PCI address the device map turned
    # into devargs); "" when it is ``vf`` itself.
    vf_label: str = ""
    client: bool = False            # vhost-user client (VM owns the socket)
    jumbo: bool = False
    mrgbuf: bool = True
    tso: bool = False
    cpus: tuple[int | None, int | None] = (None, None)  # VF->VM, VM->VF
    numa_hint: int | None = None
    max_queues: int = MAX_QUEUES    # guest queue pairs served (1..32)
    vf_queues: int = 0              # VF queue pairs; 0: several with RSS
    # A bond: ``vf`` names it (net_bonding...), these are its 2..8 members
    # (PCI addresses or devargs); mode 0-6, None = 1 (active-backup).
    bond_members: tuple[str, ...] = ()
    bond_mode: int | None = None
    # Hold the guest's link down while the VF's is (see the option help).
    link_follows_vf: bool = False
    # Owner, group and mode of a socket the relay creates (server mode);
    # None leaves what bind() made.
    socket_uid: int | None = None
    socket_gid: int | None = None
    socket_mode: int | None = None
    # The Neutron port the relay serves, when a registration named it (the
    # os-vif plugin), with its MAC and the Nova instance; "" otherwise.
    port_id: str = ""
    mac: str = ""
    instance_uuid: str = ""


@dataclasses.dataclass(frozen=True)
class DirectionStats:
    """Monotonic counters of one direction, plus where it runs now."""

    rx_pkts: int
    rx_bytes: int
    tx_pkts: int
    tx_bytes: int
    drop_full_pkts: int
    drop_full_bytes: int
    drop_noconn_pkts: int
    drop_noconn_bytes: int
    retries: int
    held: int
    cpu: int | None
    # The VF could not send them: an offload it lacks (a guest that kept
    # what an earlier VF offered), or its driver's tx_prepare refused.
    drop_bad_pkts: int = 0
    drop_bad_bytes: int = 0

    @property
    def dropped_pkts(self) -> int:
        return self.drop_full_pkts + self.drop_noconn_pkts + \
            self.drop_bad_pkts


@dataclasses.dataclass(frozen=True)
class RelayState:
    relay_id: int
    vhost_path: str
    vf_name: str
    vf_port: int | None
    vf_ready: bool
    vm_connected: bool
    client: bool
    numa_node: int
    vm_numa_node: int | None
    mtu: int
    pool_moves: int
    vm_connects: int
    vf_to_vm: DirectionStats
    vm_to_vf: DirectionStats
    vf_rx_missed: int = 0      # the VF's ring overflowed before we read it
    vf_rx_errors: int = 0
    vf_tx_errors: int = 0
    vm_rxq_mask: int = 0       # guest queue pairs enabled (rx / tx side)
    vm_txq_mask: int = 0
    max_queues: int = MAX_QUEUES
    vf_queues: int = 0
    bond_members: int = 0
    bond_mode: int | None = None
    active_member: int | None = None   # index of the member sending now
    vf_link_up: bool = False
    numa_hint: int | None = None   # node named before the VM came
    reason: str = ""           # REASONS: why it is (not) forwarding
    # A vhost-user peer (QEMU) is on the socket, its guest driver ready
    # or not (vm_connected: the device is ready).
    vm_on_socket: bool = False
    # The socket is withdrawn while the VF's link is down (link_follows_vf).
    socket_down: bool = False
    members_out: int = 0       # bond members out for a down link (bits)

    def placement(self) -> tuple[int | None, int | None, int, bool, int]:
        """What the data plane's watch thread changes on its own (see
        DataPlaneEvent): the directions' CPUs, the pool's node, the socket
        withdrawn or not, the bond members out.  (Which member a bond
        sends on is the bond driver's own state, read live.)"""
        return (self.vf_to_vm.cpu, self.vm_to_vf.cpu, self.numa_node,
                self.socket_down, self.members_out)

    @property
    def forwarding(self) -> bool:
        return self.reason == REASONS[0]

    @property
    def vm_queues(self) -> int:
        """Guest queue pairs with an enabled rx ring."""
        return bin(self.vm_rxq_mask).count("1")

    def direction(self, d: Direction) -> DirectionStats:
        return self.vf_to_vm if d is Direction.VF_TO_VM else self.vm_to_vf


@dataclasses.dataclass(frozen=True)
class QueueStats:
    """Queue ``queue`` of one direction.  VF->VM: put on the guest's rx
    queue (pkts, bytes, drops) and received on the VF's rx queue
    (vf_pkts); VM->VF: taken off the guest's tx queue, and sent on the VF's
    tx queue."""

    queue: int
    pkts: int
    bytes: int
    drops: int
    vf_pkts: int = 0


@dataclasses.dataclass(frozen=True)
class WorkerStats:
    """Load of one worker CPU; cycle counters are monotonic."""

    cpu: int
    directions: int
    busy_cycles: int
    idle_cycles: int
    rounds: int
    naps: int
    tsc_hz: int


@dataclasses.dataclass(frozen=True)
class Limits:
    max_ethports: int
    max_relays: int
    max_lcores: int
    burst: int


@dataclasses.dataclass(frozen=True)
class Memory:
    heap_bytes: int      # DPDK heap reserved
    alloc_bytes: int     # of which in use


@dataclasses.dataclass(frozen=True)
class Resources:
    relays: int
    ports: int
    mempools: int
    workers: int


class EventKind(enum.Enum):
    """What the data plane did to a relay on its own (the engine maps the
    header's V4W_EV_* numbers to these); the value says it in a log."""
    MEMBER_OUT = "bond member out (link down): member %d"
    MEMBER_IN = "bond member back in (link up): member %d"
    SOCKET_DOWN = "socket withdrawn (VF link down)"
    SOCKET_UP = "socket offered again (VF link up)"
    VF_RESTARTED = "VF restarted"
    POOL_MOVED = "mempool followed the VM's NUMA node: pool on node %d"
    LOST = "events lost"


@dataclasses.dataclass(frozen=True)
class DataPlaneEvent:
    """A change the data plane made by itself (RelayEngine.events): the
    relay's directions went off their workers and back, so its CPUs, and
    what ``kind`` says, may differ from before."""
    relay_id: int | None       # None with EventKind.LOST: every relay
    kind: EventKind
    arg: int = 0               # member index, NUMA node

    def describe(self) -> str:
        text = self.kind.value
        return text % self.arg if "%d" in text else text
