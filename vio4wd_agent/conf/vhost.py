# SPDX-License-Identifier: Apache-2.0
"""Options of the vhost-user side: sockets and the features offered."""
from __future__ import annotations

from oslo_config import cfg

from vio4wd_agent.relay.model import MAX_QUEUES

GROUP = cfg.OptGroup("vhost", title="vhost-user sockets")

OPTS = [
    cfg.StrOpt("socket_dir", default="/run/vio4wd/vhost",
               help="Directory of the vhost-user sockets (those named from "
                    "socket_pattern go here); created at start if missing "
                    "(root, the socket group, mode 1775). One that someone "
                    "else can write, or under a directory someone else can "
                    "write, is refused (a root-owned sticky directory such "
                    "as /tmp is fine)."),
    cfg.ListOpt("extra_socket_dirs", default=[],
                help="More directories where sockets named by port control, "
                     "libvirt domains or Nova may be (for instance OVN's "
                     "vhost_sock_dir), held to the same rules. A socket "
                     "path anywhere else is refused."),
    cfg.StrOpt("socket_pattern", default="virtio-forwarder%u.sock",
               help="Socket file name; exactly one %u, the relay id."),
    cfg.StrOpt("socket_owner",
               help="User owning the sockets the relay creates (server "
                    "mode). Unset: the agent's user."),
    cfg.StrOpt("socket_group",
               help="Group owning the sockets the relay creates. Unset: "
                    "the agent's group."),
    cfg.StrOpt("socket_mode", default="0660",
               help="Permissions (octal) of the sockets the relay creates."),
    cfg.BoolOpt("client_mode", default=False,
                help="Relays are vhost-user clients: QEMU creates the "
                     "socket and the relay connects, reconnecting forever."),
    cfg.BoolOpt("dynamic_sockets", default=False,
                help="Sockets are registered by port control instead of "
                     "being derived from relay ids."),
    cfg.BoolOpt("jumbo", default=False,
                help="MTU 9000 on the VF (clamped to what it supports)."),
    cfg.BoolOpt("mrgbuf", default=True,
                help="Offer mergeable rx buffers to the guest."),
    cfg.BoolOpt("tso", default=False,
                help="Offer TSO and checksum offloads to the guest, as far "
                     "as the VF can finish them (what it cannot do is not "
                     "offered)."),
    cfg.BoolOpt("link_follows_vf", default=False,
                help="Hold the guest's link down while the VF's link is "
                     "down, by dropping the vhost-user connection (QEMU "
                     "shows the NIC down while disconnected). In server "
                     "mode QEMU must reconnect by itself (libvirt "
                     "<reconnect enabled='yes'/>), or the guest stays "
                     "down."),
    cfg.IntOpt("max_queues", default=MAX_QUEUES, min=1, max=MAX_QUEUES,
               help="Guest queue pairs a relay serves. 1 does not offer "
                    "multiqueue at all."),
    cfg.IntOpt("vf_queues", default=0, min=0, max=MAX_QUEUES,
               help="VF queue pairs per relay, spread by RSS. 0: up to 4 "
                    "where the VF has RSS, else 1."),
]
