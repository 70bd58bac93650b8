# SPDX-License-Identifier: Apache-2.0
"""Options of the watchers: OVSDB interfaces and libvirt domains."""
from __future__ import annotations

from oslo_config import cfg

OVSDB_GROUP = cfg.OptGroup("ovsdb", title="OVSDB watcher")

OVSDB_OPTS = [
    cfg.StrOpt("connection", default="unix:/var/run/openvswitch/db.sock",
               help="OVSDB server to watch when [control] port_control = "
                    "ovsdb (unix:PATH or tcp:HOST:PORT)."),
]

LIBVIRT_GROUP = cfg.OptGroup("libvirt", title="libvirt watcher")

LIBVIRT_OPTS = [
    cfg.BoolOpt("enabled", default=True,
                help="Watch libvirt domains and make sure the vhost-user "
                     "sockets of their interfaces in the socket directory "
                     "exist before QEMU needs them."),
    cfg.StrOpt("uri", default="qemu:///system",
               help="libvirt connection URI."),
    cfg.FloatOpt("stopped_grace", default=10.0, min=0,
                 help="Seconds a transient domain may stay stopped (a "
                      "restart) before its relays are removed; persistent "
                      "domains keep theirs until undefined."),
    cfg.StrOpt("hook_socket", default="/run/vio4wd/libvirt-hook.sock",
               help="Unix socket (root only) where vio4wd-libvirt-hook, "
                    "libvirt's qemu hook, hands over a domain's XML before "
                    "its QEMU starts: how a transient domain or a live "
                    "migration's destination gets its sockets in time. "
                    "Empty: no hook requests taken."),
]
