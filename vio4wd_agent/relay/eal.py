# SPDX-License-Identifier: Apache-2.0
"""The EAL command line the agent hands to the data plane, and the memory
plan behind it (hugepages when a usable hugetlbfs mount exists, else
--no-huge)."""
from __future__ import annotations

import dataclasses
import logging
import os

from vio4wd_agent.exception import ConfigError

LOG = logging.getLogger(__name__)

# What the EAL, ethdev and vhost need besides the relays; each relay's
# share is the data plane's own bound (v4w_relay_heap_bytes: its pool for
# the VF's rings, the MTU and every lcore's cache, and what DPDK keeps per
# port and device), so the plan holds what it promises.
BASE_MB = 64

_MOUNTS = "/proc/mounts"
_HUGEPAGES = "/sys/kernel/mm/hugepages"


@dataclasses.dataclass(frozen=True)
class MemoryPlan:
    hugepage_dir: str | None     # None: --no-huge
    memory_mb: int
    reason: str                  # why, for the start-up log


def memory_needed_mb(relays: int, jumbo: bool, vf_queues: int = 0,
                     lcores: int = 2) -> int:
    """MB for ``relays`` relays with VFs of ``vf_queues`` queue pairs (0:
    as many as a VF with RSS gets), on a data plane of ``lcores`` lcores
    (the main one and the workers)."""
    from vio4wd_agent.relay.engine import relay_heap_bytes
    per_relay = relay_heap_bytes(jumbo, vf_queues, lcores)
    return BASE_MB + -(-relays * per_relay // (1 << 20))


def hugetlbfs_mounts() -> dict[str, int]:
    """Mount point -> page size in kB, for every hugetlbfs mount."""
    mounts: dict[str, int] = {}
    try:
        with open(_MOUNTS, encoding="utf-8") as f:
            lines = f.readlines()
    except OSError:
        return mounts
    default_kb = _default_page_kb()
    for line in lines:
        fields = line.split()
        if len(fields) < 4 or fields[2] != "hugetlbfs":
            continue
        size_kb = default_kb
        for opt in fields[3].split(","):
            if opt.startswith("pagesize="):
                size_kb = _parse_size_kb(opt[len("pagesize="):]) or size_kb
        mounts[fields[1].replace("\\040", " ")] = size_kb
    return mounts


def _default_page_kb() -> int:
    try:
        with open("/proc/meminfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("Hugepagesize:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 2048


def _parse_size_kb(text: str) -> int | None:
    units = {"K": 1, "M": 1024, "G": 1024 * 1024}
    text = text.strip().upper().rstrip("B")
    try:
        if text and text[-1] in units:
            return int(text[:-1]) * units[text[-1]]
        return int(text) // 1024
    except ValueError:
        return None


def free_hugepages_mb(page_kb: int) -> int:
    path = os.path.join(_HUGEPAGES, "hugepages-%dkB" % page_kb,
                        "free_hugepages")
    try:
        with open(path, encoding="utf-8") as f:
            return int(f.read()) * page_kb // 1024
    except (OSError, ValueError):
        return 0


def plan_memory(hugepage_dir: str | None, option: str, *, needed_mb: int,
                minimum_mb: int, memory_mb: int | None) -> MemoryPlan:
    """Pick hugepages or --no-huge.

    A missing mount falls back to --no-huge; a mount whose free pages
    cannot hold even ``minimum_mb`` is a start-up error, since DPDK would
    fail later in a less readable way.
    """
    mounts = hugetlbfs_mounts()
    size = memory_mb or needed_mb
    if hugepage_dir == "":
        return MemoryPlan(None, size, "hugepages disabled by configuration")
    if hugepage_dir is None:
        if not mounts:
            return MemoryPlan(None, size, "no hugetlbfs mount found")
        hugepage_dir = sorted(mounts)[0]
    elif os.path.realpath(hugepage_dir) not in {
            os.path.realpath(m) for m in mounts}:
        return MemoryPlan(None, size, "%s is not a hugetlbfs mount"
                          % hugepage_dir)
    page_kb = mounts.get(hugepage_dir) or next(
        kb for m, kb in mounts.items()
        if os.path.realpath(m) == os.path.realpath(hugepage_dir))
    free = free_hugepages_mb(page_kb)
    if free < minimum_mb:
        raise ConfigError(
            name=option, value=hugepage_dir,
            reason="only %d MB of %d kB hugepages are free, the data plane "
                   "needs at least %d MB (%d MB for all expected relays); "
                   "reserve more in /sys/kernel/mm/hugepages/hugepages-%dkB/"
                   "nr_hugepages" % (free, page_kb, minimum_mb, needed_mb,
                                     page_kb))
    if free < needed_mb:
        LOG.warning("%d MB of hugepages free on %s; expected relays need "
                    "about %d MB", free, hugepage_dir, needed_mb)
    return MemoryPlan(hugepage_dir, size,
                      "%d MB of %d kB hugepages free" % (free, page_kb))


def dpdk_log_level(syslog_level: int) -> int:
    """Syslog 0 (emerg) .. 7 (debug) -> DPDK 1 (emerg) .. 8 (debug)."""
    return max(0, min(7, syslog_level)) + 1


def build_eal_args(*, main_lcore: int, worker_cpus: list[int],
                   file_prefix: str, memory: MemoryPlan, log_level: int,
                   extra: list[str] | None = None,
                   vfio_vf_token: str | None = None) -> list[str]:
    lcores = [main_lcore] + [c for c in worker_cpus if c != main_lcore]
    level = dpdk_log_level(log_level)
    args = ["vio4wd",
            "-l", ",".join(str(c) for c in lcores),
            "--main-lcore", str(main_lcore),
            "--file-prefix", file_prefix,
            # Probe nothing at start; every VF is hot-plugged by a relay.
            "-a", "0000:00:00.0",
            "--log-level", str(level),
            # vhost narrates every message at INFO; keep it for debug.
            "--log-level", "lib.vhost.*:%d" % min(level, 6)]
    # No telemetry socket: the agent has its own stats and metrics, and
    # needs nothing of DPDK's in the run directory.
    args.append("--no-telemetry")
    if memory.hugepage_dir is None:
        # Nothing shared with other processes (as --in-memory does on
        # hugepages, which --no-huge does not take).
        args += ["--no-huge", "-m", str(memory.memory_mb), "--no-shconf"]
    else:
        # Nothing left in hugetlbfs after a crash.
        args += ["--huge-dir", memory.hugepage_dir, "--in-memory"]
    if vfio_vf_token:
        args += ["--vfio-vf-token=%s" % vfio_vf_token]
    return args + list(extra or [])
