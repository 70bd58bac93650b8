# SPDX-License-Identifier: Apache-2.0
from __future__ import annotations

import pytest

from vio4wd_agent.exception import ConfigError
from vio4wd_agent.relay import eal


def test_args_with_hugepages():
    plan = eal.MemoryPlan("/mnt/huge", 256, "x")
    args = eal.build_eal_args(main_lcore=0, worker_cpus=[1, 2],
                              file_prefix="p", memory=plan, log_level=6)
    assert args[:5] == ["vio4wd", "-l", "0,1,2", "--main-lcore", "0"]
    assert ["--file-prefix", "p"] == args[5:7]
    assert "--no-huge" not in args
    i = args.index("--huge-dir")
    assert args[i + 1] == "/mnt/huge" and "--in-memory" in args
    assert "-a" in args  # nothing probed at start
    assert args[args.index("--log-level") + 1] == "7"


def test_args_without_hugepages():
    args = eal.build_eal_args(main_lcore=3, worker_cpus=[1],
                              file_prefix="p",
                              memory=eal.MemoryPlan(None, 300, "x"),
                              log_level=7, extra=["--foo"])
    assert args[2] == "3,1"
    assert args[args.index("-m") + 1] == "300" and "--no-huge" in args
    assert args[-1] == "--foo"


@pytest.fixture
def mounts(monkeypatch, tmp_path):
    proc = tmp_path / "mounts"
    proc.write_text("sysfs /sys sysfs rw 0 0\n"
                    "nodev /mnt/huge hugetlbfs rw,relatime,pagesize=2M 0 0\n")
    sysfs = tmp_path / "hp" / "hugepages-2048kB"
    sysfs.mkdir(parents=True)
    monkeypatch.setattr(eal, "_MOUNTS", str(proc))
    monkeypatch.setattr(eal, "_HUGEPAGES", str(tmp_path / "hp"))
    free = sysfs / "free_hugepages"
    free.write_text("512\n")
    return free


def test_plan_uses_the_mount(mounts):
    plan = eal.plan_memory("/mnt/huge", "opt", needed_mb=200, minimum_mb=70,
                           memory_mb=None)
    assert plan.hugepage_dir == "/mnt/huge" and "1024 MB" in plan.reason
    auto = eal.plan_memory(None, "opt", needed_mb=200, minimum_mb=70,
                           memory_mb=None)
    assert auto.hugepage_dir == "/mnt/huge"


def test_plan_falls_back_without_mount(mounts):
    plan = eal.plan_memory("/elsewhere", "opt", needed_mb=200,
                           minimum_mb=70, memory_mb=None)
    assert plan.hugepage_dir is None and plan.memory_mb == 200
    assert "not a hugetlbfs mount" in plan.reason
    off = eal.plan_memory("", "opt", needed_mb=200, minimum_mb=70,
                          memory_mb=128)
    assert off.hugepage_dir is None and off.memory_mb == 128


def test_plan_refuses_too_few_hugepages(mounts):
    mounts.write_text("10\n")
    with pytest.raises(ConfigError, match="only 20 MB .* at least 70 MB"):
        eal.plan_memory("/mnt/huge", "VIRTIOFWD_HUGETLBFS_MOUNT_POINT",
                        needed_mb=200, minimum_mb=70, memory_mb=None)


def test_memory_sizing():
    assert eal.memory_needed_mb(10, False) < eal.memory_needed_mb(10, True)
    assert eal.memory_needed_mb(0, False) == eal.BASE_MB
    assert eal.dpdk_log_level(0) == 1 and eal.dpdk_log_level(7) == 8
