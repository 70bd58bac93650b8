# SPDX-License-Identifier: Apache-2.0
from __future__ import annotations

import errno
import json
import os

import pytest

from vio4wd_agent.control.port_control import BadRequest
from vio4wd_agent.host import sysfs
from vio4wd_agent.sources import ipcdir


def test_json_command():
    req = ipcdir.parse_command(json.dumps({
        "op": "add_sock", "vhost_path": "/run/x", "pci_addrs": "05:08.1",
        "conditional": False}))
    assert req.op == "ADD_SOCK" and req.pci_addrs == ("0000:05:08.1",)
    assert req.conditional is False and req.vhost_path == "/run/x"


@pytest.mark.parametrize("text,msg", [
    ("[1]", "must be an object"),
    ('{"op": "add", "color": 1}', "unknown fields: color"),
    ('{"op": "add", "virtio_id": "3"}', "virtio_id must be int"),
    ('{"op": "add", "virtio_id": true}', "virtio_id must be int"),
    ('{"op": "add", "pci_addrs": ["zz"]}', "not a PCI address"),
    ('{"op": "add", "virtio_id": -1}', "out of range"),
    ("add_port", "neither JSON"),
    ("[" * 1000, "nested too deeply"),
    ('{"op": "add", "name": ' + "[" * 3000, "nested too deeply"),
])
def test_bad_commands(text, msg):
    with pytest.raises(BadRequest, match=msg):
        ipcdir.parse_command(text)


def _fake_sysfs(root):  # type: ignore[no-untyped-def]
    pf = root / "bus/pci/devices/0000:05:00.0"
    vf = root / "bus/pci/devices/0000:05:08.2"
    pf.mkdir(parents=True)
    vf.mkdir(parents=True)
    os.symlink("../0000:05:08.1", pf / "virtfn0")
    os.symlink("../0000:05:08.2", pf / "virtfn1")
    os.symlink("../0000:05:00.0", vf / "physfn")
    net = root / "class/net"
    net.mkdir(parents=True)
    (net / "ens1f0v1").mkdir()
    os.symlink("../../../bus/pci/devices/0000:05:08.2",
               net / "ens1f0v1" / "device")
    (net / "veth0").mkdir()


def test_sysfs_lookups(tmp_path):
    _fake_sysfs(tmp_path)
    assert sysfs.netdev_pci("ens1f0v1", str(tmp_path)) == "0000:05:08.2"
    assert sysfs.netdev_pci("veth0", str(tmp_path)) is None
    assert sysfs.netdev_pci("../etc", str(tmp_path)) is None
    assert sysfs.vf_index("0000:05:08.2", str(tmp_path)) == 1
    assert sysfs.vf_index("0000:05:00.0", str(tmp_path)) is None


def test_add_port_of_a_vf(tmp_path, monkeypatch):
    _fake_sysfs(tmp_path)
    monkeypatch.setattr(sysfs, "SYS", str(tmp_path))
    monkeypatch.setattr(sysfs.netdev_pci, "__defaults__", (str(tmp_path),))
    monkeypatch.setattr(sysfs.vf_index, "__defaults__", (str(tmp_path),))
    req = ipcdir.parse_command("add_port ens1f0v1\n")
    assert (req.op, req.virtio_id, req.pci_addrs) == ("ADD", 1,
                                                      ("0000:05:08.2",))
    with pytest.raises(BadRequest) as info:
        ipcdir.parse_command("del_port veth0")
    assert info.value.code == errno.ENODEV


from hypothesis import given, settings, strategies as st  # noqa: E402


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.text(max_size=200),
                 st.dictionaries(st.sampled_from(
                     ["op", "virtio_id", "pci_addrs", "name", "mode",
                      "vhost_path", "conditional", "x"]),
                     st.one_of(st.none(), st.booleans(), st.integers(),
                               st.text(max_size=20),
                               st.lists(st.text(max_size=12), max_size=3)),
                     max_size=6).map(json.dumps)))
def test_any_text_is_a_request_or_a_clear_refusal(text):
    try:
        req = ipcdir.parse_command(text)
    except BadRequest as exc:
        assert exc.code and str(exc)
    else:
        assert req.op in ("ADD", "REMOVE", "ADD_SOCK", "REMOVE_SOCK",
                          "QUERY_PCI")


class _FakeControl:
    def __init__(self) -> None:
        self.seen: list = []

    def submit(self, req, done):  # type: ignore[no-untyped-def]
        self.seen.append(req)
        done(0, "", None)


def test_the_watcher_answers_every_file_after_a_bad_one(tmp_path):
    """A file that breaks the JSON parser's recursion, and then good
    ones: all answered, the watcher still running."""
    import time
    control = _FakeControl()
    d = tmp_path / "ipc"
    watcher = ipcdir.IpcDirectory(str(d), control)  # type: ignore[arg-type]
    watcher.start()
    try:
        def drop(name: str, text: str) -> str:
            (d / ("." + name)).write_text(text)
            os.rename(d / ("." + name), d / name)
            result = d / (name + ".result")
            deadline = time.monotonic() + 60
            while not result.exists():
                assert time.monotonic() < deadline, "no answer to " + name
                time.sleep(0.01)
            return result.read_text()
        assert drop("deep", "[" * 60000).startswith(
            "ERROR -22 JSON nested too deeply")
        for i in range(3):
            assert drop("ok%d" % i, json.dumps(
                {"op": "remove", "virtio_id": i,
                 "pci_addrs": ["05:08.1"]})) == "OK\n"
        assert [r.virtio_id for r in control.seen] == [0, 1, 2]
    finally:
        watcher.stop()
