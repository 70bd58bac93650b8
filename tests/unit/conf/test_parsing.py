# SPDX-License-Identifier: Apache-2.0
from __future__ import annotations

import pytest

from vio4wd_agent.conf import parsing


@pytest.mark.parametrize("text,cpus", [
    ("1", [1]), ("1,2", [1, 2]), ("2-4,1", [1, 2, 3, 4]), (" 3 , 1 ", [1, 3]),
    ("0x6", [1, 2]), ("0X1", [0]), ("0xf0", [4, 5, 6, 7]),
])
def test_cpu_list(text, cpus):
    assert parsing.parse_cpu_list(text) == cpus


@pytest.mark.parametrize("text", ["", "x", "1,,2", "3-1", "-1", "0x0", "0xg",
                                  "1.5"])
def test_cpu_list_bad(text):
    with pytest.raises(ValueError):
        parsing.parse_cpu_list(text)


@pytest.mark.parametrize("text,norm", [
    ("0000:05:08.1", "0000:05:08.1"), ("05:08.1", "0000:05:08.1"),
    ("0000:AF:0a.7", "0000:af:0a.7"), ("1:2:3.4", "0001:02:03.4"),
])
def test_pci(text, norm):
    assert parsing.normalize_pci(text) == norm


@pytest.mark.parametrize("text", ["05:08.8", "05:08", "zz:00.0", "net_tap0"])
def test_not_pci(text):
    assert parsing.normalize_pci(text) is None


def test_static_vf_forms():
    assert parsing.parse_static_vf("05:08.1=3") == ("0000:05:08.1", 3)
    assert parsing.parse_static_vf("net_tap0,iface=x=3") == (
        "net_tap0,iface=x", 3)
    assert parsing.parse_static_vf("net_null0=0") == ("net_null0", 0)


@pytest.mark.parametrize("text", ["0000:05:08.1", "=3", "0000:05:08.1=-1",
                                  "0000:05:08.1=x", "bad devargs!=1",
                                  "net_tap0,iface=x y=1", "0000:05:08.1=4294967296"])
def test_static_vf_bad(text):
    with pytest.raises(ValueError):
        parsing.parse_static_vf(text)


def test_cpu_pin():
    assert parsing.parse_cpu_pin("3:1,2") == parsing.CpuPin(3, 1, 2)
    assert parsing.parse_cpu_pin("3:1") == parsing.CpuPin(3, 1, 1)
    for bad in ("3", "3:", "3:a", "3:1,2,3", "x:1", "3:-1"):
        with pytest.raises(ValueError):
            parsing.parse_cpu_pin(bad)


def test_device_map_entry():
    assert parsing.parse_device_map_entry("99:00.1=net_null0,size=64") == (
        "0000:99:00.1", "net_null0,size=64")
    for bad in ("net_null0=net_null1", "0000:99:00.1", "0000:99:00.1=!!"):
        with pytest.raises(ValueError):
            parsing.parse_device_map_entry(bad)


def test_socket_pattern():
    assert parsing.check_socket_pattern("vf%u.sock") == "vf%u.sock"
    assert parsing.socket_name("vf%u.sock", 7) == "vf7.sock"
    assert parsing.socket_name("100%%-%u.sock", 7) == "100%-7.sock"
    for bad in ("vf.sock", "vf%u%u", "vf%s%u", "dir/vf%u", "%d"):
        with pytest.raises(ValueError):
            parsing.check_socket_pattern(bad)


def test_bool():
    assert parsing.parse_bool("y") and parsing.parse_bool("TRUE")
    assert not parsing.parse_bool("") and not parsing.parse_bool("off")
    with pytest.raises(ValueError):
        parsing.parse_bool("maybe")
