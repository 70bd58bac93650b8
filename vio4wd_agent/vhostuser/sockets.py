# SPDX-License-Identifier: Apache-2.0
"""vhost-user socket files: where they live, who owns them, stale ones."""
from __future__ import annotations

import dataclasses
import functools
import errno
import grp
import logging
import os
import pwd
import socket
import stat
from typing import Callable

from vio4wd_agent import trusted
from vio4wd_agent.conf import parsing
from vio4wd_agent.exception import ConfigError, Vio4wdException

LOG = logging.getLogger(__name__)


class SocketInUse(Vio4wdException):
    msg_fmt = "socket %(path)s is in use by another process"


class NotASocket(Vio4wdException):
    msg_fmt = "%(path)s exists and is not a socket; refusing to replace it"


class BadSocketPath(Vio4wdException):
    msg_fmt = "cannot use socket path %(path)r: %(reason)s"


class OutsideSocketDirectories(BadSocketPath):
    """A well-formed path elsewhere: another switch's socket, say."""


# The longest unix socket path (sun_path, with its NUL).
SUN_PATH_MAX = 107


@dataclasses.dataclass(frozen=True)
class SocketPolicy:
    """Where relay sockets go and what they look like on disk.

    Sockets live directly in one of the socket directories: ``directory``
    (where sockets named from ``pattern`` go) or one of ``extra`` (another
    switch's vhost socket directory, say Nova's or OVN's).  Every path any
    source names goes through place(): it is accepted only inside one of
    them, without following a symbolic link, and used in its canonical
    spelling from then on.
    """

    directory: str
    pattern: str
    uid: int
    gid: int
    mode: int
    extra: tuple[str, ...] = ()

    def path_for(self, relay_id: int) -> str:
        return os.path.join(self.directory,
                            parsing.socket_name(self.pattern, relay_id))

    @property
    def directories(self) -> tuple[str, ...]:
        return (self.directory,) + tuple(d for d in self.extra
                                         if d != self.directory)

    @functools.cached_property
    def _canonical(self) -> dict[str, str]:
        """Spelling of a socket directory -> its real path (a root-owned
        link on the way, like /var/run, gives two spellings); resolved
        once, not at every request."""
        out = {}
        for d in self.directories:
            real = os.path.realpath(d)
            out[os.path.normpath(d)] = real
            out[real] = real
        return out

    def place(self, path: str) -> str:
        """``path`` as the socket it names in a socket directory, or
        BadSocketPath saying why not."""
        if not isinstance(path, str) or not path:
            raise BadSocketPath(path=path, reason="empty")
        if any(ord(c) < 0x20 or ord(c) == 0x7F for c in path):
            raise BadSocketPath(path=path, reason="contains a control "
                                "character")
        if not path.startswith("/"):
            raise BadSocketPath(path=path, reason="not an absolute path")
        norm = os.path.normpath(path)
        name = os.path.basename(norm)
        if name in ("", ".", ".."):
            raise BadSocketPath(path=path, reason="names no file")
        real_dir = self._canonical.get(os.path.dirname(norm))
        if real_dir is None:
            raise OutsideSocketDirectories(
                path=path, reason="not directly in a socket directory (%s)"
                % ", ".join(self.directories))
        out = os.path.join(real_dir, name)
        if len(out.encode("utf-8")) > SUN_PATH_MAX:
            raise BadSocketPath(path=path, reason="longer than %d bytes"
                                % SUN_PATH_MAX)
        return out

    def in_main_directory(self, placed: str) -> bool:
        """A path place() returned is in ``directory`` (where sockets are
        named from ``pattern``), not in an extra one."""
        return os.path.dirname(placed) == \
            self._canonical[os.path.normpath(self.directory)]

    def ensure_directories(self) -> None:
        """Create the socket directories that are missing (root, the
        socket group, sticky 1775: QEMU in that group may create its own
        sockets, nobody renames another's), and refuse any that someone
        else controls (trusted.UntrustedPath says which, and the fix)."""
        for d in self.directories:
            existed = os.path.isdir(d)
            trusted.ensure_dir(d, mode=0o1775, gid=self.gid,
                               what="socket directory")
            if not existed:
                LOG.info("created socket directory %s", d)


def _resolve(name: str | None, option: str, current: int,
             lookup: Callable[[str], int], what: str) -> int:
    if not name:
        return current
    try:
        return lookup(name)
    except KeyError:
        if name.isdigit():
            return int(name)
        raise ConfigError(name=option, value=name,
                          reason="no such %s" % what) from None


def resolve_user(name: str | None, option: str) -> int:
    """User name or uid; unset means the agent's own user."""
    return _resolve(name, option, os.getuid(),
                    lambda n: pwd.getpwnam(n).pw_uid, "user")


def resolve_group(name: str | None, option: str) -> int:
    """Group name or gid; unset means the agent's own group."""
    return _resolve(name, option, os.getgid(),
                    lambda n: grp.getgrnam(n).gr_gid, "group")


def parse_mode(text: str, option: str) -> int:
    try:
        mode = int(text, 8)
    except ValueError:
        raise ConfigError(name=option, value=text,
                          reason="not an octal mode") from None
    if not 0 <= mode <= 0o777:
        raise ConfigError(name=option, value=text,
                          reason="not a permission mode")
    return mode


class NotOurs(Vio4wdException):
    msg_fmt = ("%(path)s is there and belongs to uid %(uid)d, not the "
               "agent; refusing to replace it")


def clear_stale(path: str,
                made: Callable[[os.stat_result], bool] | None = None) -> None:
    """Remove a socket file of the agent's that nobody listens on (left by
    a crash), so the path can be bound again.

    A live listener, a file that is not a socket, or a socket the agent did
    not make (someone else's) is never touched: the caller gets an error
    naming the path instead.  The agent's own are those it owns, and those
    ``made`` recognises (sockets it made and gave to their owner).
    """
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    except (OSError, ValueError) as exc:
        raise BadSocketPath(path=path, reason=getattr(
            exc, "strerror", None) or str(exc)) from None
    if not stat.S_ISSOCK(st.st_mode):
        raise NotASocket(path=path)
    if st.st_uid != os.getuid() and not (made is not None and made(st)):
        raise NotOurs(path=path, uid=st.st_uid)
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.settimeout(0.5)
        probe.connect(path)
    except OSError as exc:
        if exc.errno not in (errno.ECONNREFUSED, errno.ENOENT):
            raise SocketInUse(path=path) from exc
        LOG.info("removing stale vhost-user socket %s", path)
        os.unlink(path)
        return
    finally:
        probe.close()
    raise SocketInUse(path=path)


def secure_bound(path: str, mode: int,
                 gid: int | None = None) -> os.stat_result:
    """Give a socket the process just bound (in a directory nobody else
    writes) its mode and group, never through a link; returns its stat, by
    which unlink_if_same() knows it later."""
    st = os.lstat(path)
    os.chmod(path, mode, follow_symlinks=False)
    if gid is not None:
        os.chown(path, -1, gid, follow_symlinks=False)
    return st


def unlink_if_same(path: str, made: os.stat_result | None) -> None:
    """Remove ``path`` if it is still the socket ``made`` describes (not a
    file someone put there since)."""
    if made is None:
        return
    try:
        if os.path.samestat(os.lstat(path), made):
            os.unlink(path)
    except OSError:
        pass
