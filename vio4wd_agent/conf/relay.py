# SPDX-License-Identifier: Apache-2.0
"""Options for relays known at start: static VFs, pins, the device map."""
from __future__ import annotations

from oslo_config import cfg

GROUP = cfg.OptGroup("relay", title="Static relays")

OPTS = [
    cfg.MultiStrOpt("static_vfs", default=[],
                    help="<vf>=<relay id>, repeatable. <vf> is a PCI "
                         "address or DPDK devargs (net_tap0,iface=t0). "
                         "Added at start with the socket from the name "
                         "pattern."),
    cfg.MultiStrOpt("cpu_pins", default=[],
                    help="<relay id>:<cpu>[,<cpu>], repeatable: worker CPU "
                         "of VF->VM and VM->VF (one CPU pins both)."),
    cfg.MultiStrOpt("device_map", default=[],
                    help="<pci address>=<devargs>, repeatable: wherever "
                         "that PCI address is given as a VF, use this DPDK "
                         "device instead (VF stand-ins for tests/demos)."),
]
