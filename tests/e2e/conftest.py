# SPDX-License-Identifier: Apache-2.0
"""End-to-end fixtures: a guest image (Debian kernel + busybox initramfs,
built once by tools/build-guest.sh and cached), a private libvirtd, and a
network namespace the session runs in."""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from typing import Iterator

import pytest

from vio4wd_agent.conf.settings import online_cpus
from vio4wd_agent.demo import netns
from tests.functional.libvirtd import Libvirtd

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
GUEST_DIR = os.environ.get("VIO4WD_GUEST_DIR", "/var/cache/vio4wd/guest")


def pytest_collection_modifyitems(config, items):  # type: ignore[no-untyped-def]
    if items and os.geteuid() != 0:
        raise pytest.UsageError("the end-to-end tests need root; run them "
                                "through `make test`")


@pytest.fixture(scope="session", autouse=True)
def e2e_netns(guest_image: tuple[str, str]
              ) -> Iterator[netns.NetNamespace]:
    ns = netns.NetNamespace.of_this_process("v4we2e").create()
    ns.enter()
    yield ns
    ns.delete()


@pytest.fixture(scope="session")
def guest_image() -> tuple[str, str]:
    """(vmlinuz, initramfs): readable by QEMU's user, built when missing."""
    # `make test` builds it first; from here it is built from the kernel
    # package tools/install-host.sh fetched (no network needed).
    res = subprocess.run([os.path.join(ROOT, "tools", "build-guest.sh"),
                          GUEST_DIR], capture_output=True, text=True,
                         timeout=600)
    if res.returncode != 0:
        raise RuntimeError("tools/build-guest.sh failed: %s%s"
                           % (res.stdout, res.stderr))
    d = GUEST_DIR
    while d != "/":                 # libvirt-qemu must reach the files
        os.chmod(d, os.stat(d).st_mode | 0o555)
        d = os.path.dirname(d)
        if d in ("/var", "/var/cache", "/tmp"):
            break
    return (os.path.join(GUEST_DIR, "vmlinuz"),
            os.path.join(GUEST_DIR, "initramfs.gz"))


@pytest.fixture(scope="session")
def libvirtd() -> Iterator[Libvirtd]:
    base = tempfile.mkdtemp(prefix="v4we2e-libvirt-")
    daemon = Libvirtd(base).start()
    yield daemon
    daemon.cleanup()
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def cpus() -> dict[str, int]:
    online = online_cpus()
    if len(online) < 2:
        pytest.skip("needs 2 CPUs")
    return {"main": online[0], "worker": online[-1]}
