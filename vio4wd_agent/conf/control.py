# SPDX-License-Identifier: Apache-2.0
"""Options of port control, the ZeroMQ servers and the metrics endpoint."""
from __future__ import annotations

from oslo_config import cfg

GROUP = cfg.OptGroup("control", title="Port control, stats and tools")

ZMQ_DIR = "ipc:///var/run/virtio-forwarder/"

OPTS = [
    cfg.StrOpt("port_control", default="zmq",
               choices=[("zmq", "ZeroMQ requests on zmq_port_control_ep"),
                        ("ipc", "command files dropped in ipc_dir"),
                        ("ovsdb", "OVSDB Interface rows"),
                        ("none", "only static VFs")],
               help="Where port changes come from. The sources are "
                    "mutually exclusive."),
    cfg.StrOpt("zmq_port_control_ep", default=ZMQ_DIR + "port_control",
               help="ZeroMQ endpoint for port control requests."),
    cfg.StrOpt("zmq_stats_ep", default=ZMQ_DIR + "stats",
               help="ZeroMQ endpoint for stats requests; empty disables."),
    cfg.StrOpt("zmq_core_sched_ep", default=ZMQ_DIR + "core_sched",
               help="ZeroMQ endpoint for core scheduling requests; empty "
                    "disables."),
    cfg.StrOpt("zmq_config_ep", default=ZMQ_DIR + "config",
               help="ZeroMQ endpoint for config requests; empty disables."),
    cfg.StrOpt("endpoint_group",
               help="Group owning the ipc:// endpoint sockets (mode 0660) "
                    "and the IPC directory. Unset: the agent's group."),
    cfg.BoolOpt("allow_devargs", default=False,
                help="Let OVSDB rows and libvirt domain metadata name a VF "
                     "by DPDK devargs (net_af_packet on any netdev, "
                     "net_pcap writing any file...) rather than by PCI "
                     "address or device-map entry. Whoever may write OVSDB "
                     "or define domains then chooses what the root agent "
                     "attaches: for tests and demos only."),
    cfg.StrOpt("ipc_dir", default="/run/vio4wd/port-control",
               help="Directory watched for port control command files "
                    "(port_control = ipc). Refused when another user owns "
                    "it or anyone may write it."),
]

METRICS_GROUP = cfg.OptGroup("metrics", title="Prometheus metrics")

METRICS_OPTS = [
    cfg.BoolOpt("enabled", default=True,
                help="Serve Prometheus metrics over HTTP."),
    cfg.StrOpt("host", default="127.0.0.1",
               help="Address the metrics endpoint listens on."),
    cfg.PortOpt("port", default=9475,
                help="Port of the metrics endpoint (0: any free port)."),
]
