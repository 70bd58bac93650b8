# SPDX-License-Identifier: Apache-2.0
"""The agent's hook socket: real unix sockets, a fake handler."""
from __future__ import annotations

import json
import os
import socket
import stat

import pytest

from vio4wd_agent.cmd.libvirt_hook import ask_agent
from vio4wd_agent.vhostuser.sockets import SocketInUse
from vio4wd_agent.virt import hooklistener
from vio4wd_agent.virt.hooklistener import HookListener


@pytest.fixture
def listener(tmp_path):
    calls = []

    def handler(op, name, xml):
        calls.append((op, name, xml))
        if name == "boom":
            raise RuntimeError("handler broke")
        return {"ok": True, "served": ["/s/" + name], "errors": [],
                "warnings": []}
    lst = HookListener(str(tmp_path / "run" / "hook.sock"), handler)
    lst.start()
    lst.calls = calls
    yield lst
    lst.stop()


def raw(path: str, data: bytes) -> dict:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(path)
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
    out = b""
    while chunk := s.recv(4096):
        out += chunk
    s.close()
    return json.loads(out)


def test_a_request_is_answered_by_the_handler(listener):
    answer = ask_agent(listener.path, {"op": "prepare", "domain": "vm1",
                                       "xml": "<domain/>"}, 5)
    assert answer == {"ok": True, "served": ["/s/vm1"], "errors": [],
                      "warnings": []}
    assert listener.calls == [("prepare", "vm1", "<domain/>")]
    assert stat.S_IMODE(os.stat(listener.path).st_mode) == 0o600


@pytest.mark.parametrize("data, says", [
    (b"\xff\xfe", "not a JSON request"),
    (b"{\"op\": ", "not a JSON request"),
    (b"[1, 2]", "JSON list, not an object"),
    (b'{"op": "start", "xml": "<domain/>"}', "unknown op 'start'"),
    (b'{"op": "prepare"}', "xml must be the domain XML"),
    (b'{"op": "prepare", "xml": 7}', "xml must be the domain XML"),
    (b'{"op": "prepare", "domain": 1, "xml": "<d/>"}',
     "domain must be a string"),
    (b"[" * 100000, "nested too deeply"),
    (b'{"op": "prepare", "xml": ' + b"[" * 5000 + b"]" * 5000 + b"}",
     "nested too deeply"),
])
def test_bad_requests_get_an_error_and_the_listener_carries_on(
        listener, data, says):
    answer = raw(listener.path, data)
    assert not answer["ok"] and says in answer["errors"][0]
    assert listener.calls == []
    assert ask_agent(listener.path, {"op": "release", "domain": "vm2",
                                     "xml": "<d/>"}, 5)["ok"]


def test_an_oversized_request_is_refused(listener, monkeypatch):
    monkeypatch.setattr(hooklistener, "MAX_REQUEST", 1000)
    answer = raw(listener.path, b"x" * 5000)
    assert "larger than 1000 bytes" in answer["errors"][0]


def test_a_failing_handler_is_an_error_answer(listener):
    answer = ask_agent(listener.path, {"op": "prepare", "domain": "boom",
                                       "xml": "<d/>"}, 5)
    assert not answer["ok"] and "handler broke" in answer["errors"][0]
    assert ask_agent(listener.path, {"op": "prepare", "domain": "vm3",
                                     "xml": "<d/>"}, 5)["ok"]


def test_a_second_listener_does_not_steal_the_socket(listener):
    with pytest.raises(SocketInUse, match="in use by another process"):
        HookListener(listener.path, lambda *a: {}).start()
    assert ask_agent(listener.path, {"op": "prepare", "domain": "vm4",
                                     "xml": "<d/>"}, 5)["ok"]
    assert [c[1] for c in listener.calls] == ["vm4"]   # the probe is silent


def test_stop_removes_the_socket(tmp_path):
    lst = HookListener(str(tmp_path / "h.sock"), lambda *a: {})
    lst.start()
    lst.stop()
    assert not os.path.exists(tmp_path / "h.sock")
