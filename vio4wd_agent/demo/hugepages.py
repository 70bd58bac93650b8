# SPDX-License-Identifier: Apache-2.0
"""Reserve 2 MB hugepages and mount hugetlbfs for a demo or a test run,
undoing exactly what was done afterwards."""
from __future__ import annotations

import os
import subprocess

NR = "/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages"
FREE = "/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages"


def _read(path: str) -> int:
    with open(path, encoding="ascii") as f:
        return int(f.read())


class Hugepages:
    """``setup()`` returns the mount point, or None with ``reason`` set."""

    def __init__(self, mount_point: str, pages: int) -> None:
        self.mount_point = mount_point
        self.pages = pages
        self.reason = ""
        self._old_nr: int | None = None
        self._mounted = False

    def setup(self) -> str | None:
        try:
            nr, free = _read(NR), _read(FREE)
            if free < self.pages:
                want = nr + self.pages - free
                with open(NR, "w", encoding="ascii") as f:
                    f.write(str(want))
                self._old_nr = nr
                free = _read(FREE)
            if free < self.pages:
                self.reason = ("the kernel gave only %d of %d free 2 MB "
                               "hugepages" % (free, self.pages))
                self.teardown()
                return None
            os.makedirs(self.mount_point, exist_ok=True)
            subprocess.run(["mount", "-t", "hugetlbfs", "-o", "pagesize=2M",
                            "nodev", self.mount_point], check=True,
                           capture_output=True, text=True)
            self._mounted = True
            return self.mount_point
        except (OSError, ValueError, subprocess.CalledProcessError) as exc:
            self.reason = "cannot set up hugepages: %s" % (
                getattr(exc, "stderr", None) or exc)
            self.teardown()
            return None

    def teardown(self) -> None:
        if self._mounted:
            subprocess.run(["umount", self.mount_point], capture_output=True)
            self._mounted = False
            try:
                os.rmdir(self.mount_point)
            except OSError:
                pass
        if self._old_nr is not None:
            try:
                with open(NR, "w", encoding="ascii") as f:
                    f.write(str(self._old_nr))
            except OSError:
                pass
            self._old_nr = None
