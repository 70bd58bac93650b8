# SPDX-License-Identifier: Apache-2.0
"""Binding to vfio-pci through sysfs, on a sysfs tree made by the test
whose writes act as the kernel's would."""
from __future__ import annotations

import os

import pytest

from vio4wd_agent.host import vfio

PF = "0000:05:00.0"
VFS = {0: "0000:05:10.0", 1: "0000:05:10.2", 2: "0000:05:10.4",
       10: "0000:05:11.4"}


@pytest.fixture
def sysfs(tmp_path):
    root = tmp_path / "sys"
    drivers = root / "bus" / "pci" / "drivers"
    for d in ("ixgbe", "ixgbevf", "vfio-pci"):
        (drivers / d).mkdir(parents=True)
    devices = root / "bus" / "pci" / "devices"
    for pci, drv in [(PF, "ixgbe")] + [(v, "ixgbevf") for v in VFS.values()]:
        (devices / pci).mkdir(parents=True)
        (devices / pci / "driver_override").write_text("(null)\n")
        os.symlink(drivers / drv, devices / pci / "driver")
    for i, pci in VFS.items():
        os.symlink(devices / pci, devices / PF / ("virtfn%d" % i))
    (devices / "0000:06:00.0").mkdir()          # a device with no driver
    (root / "class" / "net" / "ens4").mkdir(parents=True)
    os.symlink(devices / PF, root / "class" / "net" / "ens4" / "device")
    (root / "class" / "net" / "lo").mkdir()
    return str(root)


def kernel(sys_root, broken=()):
    """A write() that does what the kernel does with these files."""
    writes = []

    def write(path, value):
        writes.append((path.replace(sys_root, ""), value))
        dev = os.path.join(sys_root, "bus", "pci", "devices", value)
        if path.endswith("/driver/unbind"):
            os.unlink(os.path.join(dev, "driver"))
        elif path.endswith("/drivers_probe"):
            with open(os.path.join(dev, "driver_override")) as f:
                drv = f.read().strip()
            if value not in broken:
                os.symlink(os.path.join(sys_root, "bus", "pci", "drivers",
                                        drv), os.path.join(dev, "driver"))
        else:
            with open(path, "w") as f:
                f.write(value)
    write.writes = writes
    return write


def test_entries_resolve(sysfs):
    assert vfio.resolve("05:10.2", sysfs) == ["0000:05:10.2"]
    # all VFs of a PF, in VF order (virtfn10 after virtfn2)
    assert vfio.resolve("ens4", sysfs) == [VFS[0], VFS[1], VFS[2], VFS[10]]
    assert vfio.resolve("ens4:2", sysfs) == [VFS[0], VFS[1]]


@pytest.mark.parametrize("entry, says", [
    ("0000:07:00.0", "no PCI device 0000:07:00.0"),
    ("eth9", "no netdev eth9"),
    ("lo", "no netdev lo"),
    ("ens4:5", "has 4 VFs, not 5"),
])
def test_entries_that_stand_for_nothing(sysfs, entry, says):
    with pytest.raises(vfio.BindError, match=says):
        vfio.resolve(entry, sysfs)


@pytest.mark.parametrize("entry", ["", "a/b", "ens4:0", "ens4:x",
                                   "waytoolongnetdevname"])
def test_bad_entries_are_refused_by_configuration(entry):
    with pytest.raises(ValueError):
        vfio.check_entry(entry)


def test_bind_takes_the_device_from_its_driver(sysfs):
    write = kernel(sysfs)
    assert vfio.bind(VFS[1], sysfs, write) == "ixgbevf"
    assert vfio.current_driver(VFS[1], sysfs) == "vfio-pci"
    assert [w[0].rsplit("/", 1)[-1] for w in write.writes] == [
        "driver_override", "unbind", "drivers_probe"]
    # again: nothing to do
    write.writes.clear()
    assert vfio.bind(VFS[1], sysfs, write) == "vfio-pci"
    assert write.writes == []
    # a device with no driver is only probed
    assert vfio.bind("0000:06:00.0", sysfs, write) is None
    assert [w[0].rsplit("/", 1)[-1] for w in write.writes] == [
        "driver_override", "drivers_probe"]


def test_a_failed_bind_says_why(sysfs):
    with pytest.raises(vfio.BindError, match="still bound to no driver"):
        vfio.bind(VFS[2], sysfs, kernel(sysfs, broken=(VFS[2],)))

    def refuse(path, value):
        raise PermissionError(13, "Permission denied")
    with pytest.raises(vfio.BindError,
                       match="driver_override: Permission denied"):
        vfio.bind(VFS[0], sysfs, refuse)


def test_bind_all_binds_what_it_can(sysfs, caplog):
    report = vfio.bind_all(["ens4:2", "eth9", "05:10.4"], sysfs,
                           kernel(sysfs, broken=(VFS[1],)))
    assert report.bound == [VFS[0], VFS[2]]
    assert report.failed == [VFS[1], "eth9"]
    assert "bind_vfio_pci eth9: no netdev eth9" in caplog.text
    assert "%s not bound to vfio-pci" % VFS[1] in caplog.text
