# SPDX-License-Identifier: Apache-2.0
from __future__ import annotations

import os
import socket
import stat

import pytest

from vio4wd_agent import trusted
from vio4wd_agent.exception import ConfigError
from vio4wd_agent.vhostuser import sockets


def test_path_and_directory(tmp_path):
    policy = sockets.SocketPolicy(str(tmp_path / "d"), "vf%u.sock",
                                  os.getuid(), os.getgid(), 0o640)
    policy.ensure_directories()
    st = os.stat(tmp_path / "d")
    assert stat.S_IMODE(st.st_mode) == 0o1775 and st.st_uid == os.getuid()
    assert policy.path_for(12) == str(tmp_path / "d" / "vf12.sock")


def test_an_existing_directory_others_can_write_is_refused(tmp_path):
    d = tmp_path / "shared"
    d.mkdir()
    os.chmod(d, 0o777)
    policy = sockets.SocketPolicy(str(d), "vf%u.sock", 0, 0, 0o660)
    with pytest.raises(trusted.UntrustedPath, match="chmod go-w"):
        policy.ensure_directories()
    os.chmod(d, 0o1777)             # like /tmp: fine
    policy.ensure_directories()


@pytest.mark.parametrize("path,says", [
    ("relative.sock", "not an absolute path"),
    ("/elsewhere/x.sock", "not directly in a socket directory"),
    ("{d}/sub/x.sock", "not directly in a socket directory"),
    ("{d}/../x.sock", "not directly in a socket directory"),
    ("{d}/x\n.sock", "control character"),
    ("{d}/", "not directly in a socket directory"),
    ("/", "names no file"),
    ("{d}/" + "x" * 120, "longer than 107 bytes"),
])
def test_socket_paths_outside_the_socket_directories_are_refused(
        tmp_path, path, says):
    policy = sockets.SocketPolicy(str(tmp_path / "d"), "vf%u.sock", 0, 0,
                                  0o660, extra=(str(tmp_path / "e"),))
    with pytest.raises(sockets.BadSocketPath, match=says):
        policy.place(path.format(d=tmp_path / "d"))


def test_socket_paths_are_canonical(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    os.symlink(real, tmp_path / "alias")    # like /var/run -> /run
    policy = sockets.SocketPolicy(str(tmp_path / "alias"), "vf%u.sock", 0, 0,
                                  0o660, extra=(str(tmp_path / "e"),))
    assert policy.place(str(tmp_path / "alias" / "a.sock")) == \
        str(real / "a.sock")
    assert policy.place(str(real / "sub" / ".." / "b.sock")) == \
        str(real / "b.sock")
    assert policy.place(str(tmp_path / "e" / "c.sock")) == \
        str(tmp_path / "e" / "c.sock")


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

    # A socket of someone else's stays, unless the caller knows it made it.
    theirs = str(tmp_path / "theirs.sock")
    s = socket.socket(socket.AF_UNIX)
    s.bind(theirs)
    s.close()
    os.chown(theirs, 4242, 4242)
    with pytest.raises(sockets.NotOurs, match="uid 4242"):
        sockets.clear_stale(theirs)
    made = os.lstat(theirs)
    sockets.clear_stale(theirs, lambda st: os.path.samestat(st, made))
    assert not os.path.exists(theirs)

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
