# SPDX-License-Identifier: Apache-2.0
"""Options of the DPDK data plane (EAL, CPUs, memory)."""
from __future__ import annotations

from oslo_config import cfg

GROUP = cfg.OptGroup("dataplane", title="DPDK data plane")

OPTS = [
    cfg.StrOpt("worker_cpus",
               help="CPUs that run relay workers: a list with ranges "
                    "(1,2 or 2-5) or a hex mask (0x6). Unset: every online "
                    "CPU except the main lcore."),
    cfg.IntOpt("main_lcore", default=0, min=0,
               help="CPU of the DPDK main lcore; the agent's control "
                    "threads run there. Must not be a worker CPU."),
    cfg.StrOpt("hugepage_dir",
               help="hugetlbfs mount for DPDK memory. Unset: the first "
                    "hugetlbfs mount found. With none, or when the mount "
                    "is missing, the data plane runs with --no-huge (fine "
                    "for vdevs; real VFs then need an IOMMU)."),
    cfg.IntOpt("memory_mb", min=64,
               help="Memory for the data plane in MB. Unset: sized from "
                    "expected_relays."),
    cfg.IntOpt("expected_relays", default=32, min=1,
               help="How many relays to size memory for."),
    cfg.StrOpt("file_prefix", default="vio4wd",
               help="DPDK --file-prefix; distinct per agent on one host."),
    cfg.IntOpt("log_level", default=6, min=0, max=7,
               help="Syslog-style threshold (0-7) for DPDK's own logs."),
    cfg.ListOpt("bind_vfio_pci", default=[],
                help="Devices to bind to vfio-pci at start (and on a "
                     "reload): PCI addresses (0000:01:02.3 or 01:02.3), PF "
                     "netdevs (all their VFs) or netdev:count (the first "
                     "count VFs). A device that cannot be bound is logged; "
                     "the others are still bound."),
    cfg.StrOpt("vfio_vf_token",
               help="VF token (a UUID) shared by the PF and VF drivers "
                    "of vfio-pci, passed to DPDK as --vfio-vf-token; needed "
                    "when the PF is also bound to vfio-pci (e.g. rte_flow "
                    "offload with OVS-DPDK). Unset: not passed."),
    cfg.ListOpt("extra_eal_args", default=[],
                help="Extra EAL arguments, appended verbatim."),
]
