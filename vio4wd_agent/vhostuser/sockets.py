# SPDX-License-Identifier: Apache-2.0
"""vhost-user socket files: where they live, who owns them, stale ones."""
from __future__ import annotations

import dataclasses
import errno
import grp
import logging
import os
import pwd
import socket
import stat
from typing import Callable

from vio4wd_agent.conf import parsing
from vio4wd_agent.exception import ConfigError, Vio4wdException

LOG = logging.getLogger(__name__)


class SocketInUse(Vio4wdException):
    msg_fmt = "socket %(path)s is in use by another process"


class NotASocket(Vio4wdException):
    msg_fmt = "%(path)s exists and is not a socket; refusing to replace it"


class BadSocketPath(Vio4wdException):
    msg_fmt = "cannot use socket path %(path)r: %(reason)s"


@dataclasses.dataclass(frozen=True)
class SocketPolicy:
    """Where relay sockets go and what they look like on disk."""

    directory: str
    pattern: str
    uid: int
    gid: int
    mode: int

    def path_for(self, relay_id: int) -> str:
        return os.path.join(self.directory,
                            parsing.socket_name(self.pattern, relay_id))

    def ensure_directory(self) -> None:
        """Create the socket directory (like virtio-forwarder's pre-start)."""
        if not os.path.isdir(self.directory):
            os.makedirs(self.directory, mode=0o755, exist_ok=True)
            os.chown(self.directory, self.uid, self.gid)
            LOG.info("created socket directory %s", self.directory)


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


def clear_stale(path: str) -> None:
    """Remove a socket file nobody listens on (left by a crash).

    A live listener or a non-socket file is never touched: the caller gets
    an error naming the path instead.
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
