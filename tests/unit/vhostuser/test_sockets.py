# SPDX-License-Identifier: Apache-2.0
from __future__ import annotations

import os
import socket

import pytest

from vio4wd_agent.exception import ConfigError
from vio4wd_agent.vhostuser import sockets


def test_path_and_directory(tmp_path):
    policy = sockets.SocketPolicy(str(tmp_path / "d"), "vf%u.sock",
                                  os.getuid(), os.getgid(), 0o640)
    policy.ensure_directory()
    assert os.path.isdir(tmp_path / "d")
    assert policy.path_for(12) == str(tmp_path / "d" / "vf12.sock")


def test_stale_socket_removed_live_one_kept(tmp_path):
    stale = str(tmp_path / "stale.sock")
    s = socket.socket(socket.AF_UNIX)
    s.bind(stale)
    s.close()  # bound, never listening: what a crash leaves
    sockets.clear_stale(stale)
    assert not os.path.exists(stale)

    live = str(tmp_path / "live.sock")
    server = socket.socket(socket.AF_UNIX)
    server.bind(live)
    server.listen(1)
    with pytest.raises(sockets.SocketInUse):
        sockets.clear_stale(live)
    assert os.path.exists(live)
    server.close()

    plain = tmp_path / "file"
    plain.write_text("x")
    with pytest.raises(sockets.NotASocket):
        sockets.clear_stale(str(plain))
    sockets.clear_stale(str(tmp_path / "absent"))


def test_owner_resolution():
    assert sockets.resolve_user(None, "o") == os.getuid()
    assert sockets.resolve_user("root", "o") == 0
    assert sockets.resolve_user("4242", "o") == 4242
    with pytest.raises(ConfigError, match="VIRTIOFWD_SOCKET_OWNER"):
        sockets.resolve_user("no-such-user-x", "VIRTIOFWD_SOCKET_OWNER")
    with pytest.raises(ConfigError, match="no such group"):
        sockets.resolve_group("no-such-group-x", "g")
    assert sockets.parse_mode("0660", "m") == 0o660
    with pytest.raises(ConfigError):
        sockets.parse_mode("rw", "m")
