# SPDX-License-Identifier: Apache-2.0
"""Directories and files the agent (root) may act in without anyone else
choosing what it acts on.

A directory is *trusted* when nobody but root (or the agent's own user)
can add, rename or remove entries in it or in any directory on the way to
it: each is owned by root (or the agent) and writable by nobody else --
except a root-owned sticky directory such as /tmp, where others may add
entries but never rename or remove root's.  Symbolic links on the way are
followed only when root owns them.  Inside a trusted directory the agent
still never follows a symbolic link, never replaces or unlinks a file it
did not create, and creates files exclusively (``O_EXCL|O_NOFOLLOW``,
relative to a directory file descriptor), so the same rules are safe in a
sticky directory that others share.
"""
from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import secrets
import stat

from vio4wd_agent.exception import Vio4wdException

MAX_LINKS = 40


class UntrustedPath(Vio4wdException):
    msg_fmt = "%(what)s %(path)s: %(reason)s"


def _owner_ok(st: os.stat_result) -> bool:
    return st.st_uid in (0, os.getuid())


def _dir_ok(st: os.stat_result) -> str | None:
    """Why a directory (stat) is not safe to act in, or None."""
    if not stat.S_ISDIR(st.st_mode):
        return "not a directory"
    if not _owner_ok(st):
        return "owned by uid %d, not root" % st.st_uid
    writable = st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    if writable and not (st.st_mode & stat.S_ISVTX and st.st_uid == 0):
        return ("writable by %s (mode %04o) and not a root-owned sticky "
                "directory" % ("others" if st.st_mode & stat.S_IWOTH else
                               "its group", stat.S_IMODE(st.st_mode)))
    return None


def resolve_dir(path: str, what: str = "directory") -> str:
    """The real path of directory ``path`` (absolute), checking every
    directory on the way and every symbolic link followed; raises
    UntrustedPath naming the first one that someone else controls."""
    if not os.path.isabs(path):
        raise UntrustedPath(what=what, path=path, reason="not absolute")
    pending = [c for c in os.path.normpath(path).split("/") if c]
    real = "/"
    links = 0
    st = os.lstat("/")
    problem = _dir_ok(st)
    if problem:
        raise UntrustedPath(what=what, path="/", reason=problem)
    while pending:
        name = pending.pop(0)
        if name == "..":
            real = os.path.dirname(real)
            continue
        nxt = os.path.join(real, name)
        st = os.lstat(nxt)
        if stat.S_ISLNK(st.st_mode):
            links += 1
            if links > MAX_LINKS or st.st_uid != 0:
                raise UntrustedPath(
                    what=what, path=path, reason="%s is a symbolic link "
                    "%s" % (nxt, "owned by uid %d, not root" % st.st_uid
                            if st.st_uid != 0 else "loop"))
            target = os.readlink(nxt)
            if os.path.isabs(target):
                real = "/"
            pending[:0] = [c for c in target.split("/") if c]
            continue
        problem = _dir_ok(st)
        if problem:
            raise UntrustedPath(
                what=what, path=path, reason="%s is %s; fix: chown root %s "
                "and chmod go-w %s (or chmod +t, for a directory others "
                "share)" % (nxt, problem, nxt, nxt))
        real = nxt
    return real


def ensure_dir(path: str, *, mode: int, gid: int | None = None,
               what: str = "directory") -> str:
    """Create ``path`` (and missing parents, root-owned 0755) if it does
    not exist, the last one root:``gid`` with ``mode``; then check it as
    resolve_dir() does and return its real path.  An existing directory
    keeps its owner and mode: if someone else controls it, it is refused,
    never repaired behind the administrator's back."""
    norm = os.path.normpath(path)
    missing = []
    probe = norm
    while not os.path.lexists(probe):
        missing.append(probe)
        probe = os.path.dirname(probe)
    for d in reversed(missing):
        last = d == norm
        try:
            os.mkdir(d, 0o700)
        except FileExistsError:
            continue            # made meanwhile: checked below like any
        os.chown(d, 0 if os.getuid() == 0 else -1,
                 gid if last and gid is not None else -1)
        os.chmod(d, mode if last else 0o755)
    return resolve_dir(norm, what)


def open_dir(path: str) -> int:
    """A descriptor of a trusted directory, to create files relative to."""
    return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC |
                   os.O_NOFOLLOW)


_RENAME_NOREPLACE = 1
_libc = ctypes.CDLL(None, use_errno=True)


def rename_noreplace(dir_fd: int, old: str, new: str) -> None:
    """Rename within a directory, failing (FileExistsError) rather than
    replacing an entry that is there."""
    if _libc.renameat2(dir_fd, old.encode(), dir_fd, new.encode(),
                       _RENAME_NOREPLACE) != 0:
        err = ctypes.get_errno()
        raise OSError(err, "%s -> %s: %s" % (old, new, os.strerror(err)))


def write_file(dir_path: str, name: str, data: bytes, *, mode: int = 0o600,
               gid: int | None = None, replace: bool = True,
               sync: bool = False) -> None:
    """Write ``name`` in trusted directory ``dir_path`` atomically: a
    temporary file of our own, made exclusively, renamed into place.
    ``replace`` False: an existing ``name`` (someone else's, in a shared
    directory) is left alone and FileExistsError raised."""
    if "/" in name or name in ("", ".", ".."):
        raise ValueError("bad file name %r" % name)
    dfd = open_dir(dir_path)
    tmp = ""
    try:
        for _ in range(8):
            tmp = ".%s.%s.tmp" % (name[:64], secrets.token_hex(8))
            try:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL |
                             os.O_NOFOLLOW | os.O_CLOEXEC, mode,
                             dir_fd=dfd)
                break
            except FileExistsError:
                continue
        else:
            raise OSError(errno.EEXIST, "no free temporary name")
        try:
            if gid is not None:
                os.fchown(fd, -1, gid)
            os.fchmod(fd, mode)
            os.write(fd, data)
            if sync:
                os.fsync(fd)
        finally:
            os.close(fd)
        try:
            if replace:
                os.rename(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
            else:
                rename_noreplace(dfd, tmp, name)
        except OSError:
            os.unlink(tmp, dir_fd=dfd)
            raise
        if sync:
            os.fsync(dfd)
    finally:
        os.close(dfd)


def read_file(dir_path: str, name: str, limit: int) -> bytes:
    """A regular file of ``dir_path``, never through a symbolic link nor
    from a FIFO; at most ``limit`` bytes (OSError E2BIG beyond)."""
    dfd = open_dir(dir_path)
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK |
                     os.O_CLOEXEC, dir_fd=dfd)
    finally:
        os.close(dfd)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        if st.st_size > limit:
            raise OSError(errno.E2BIG, "over %d bytes" % limit)
        return os.read(fd, limit + 1)[:limit]
    finally:
        os.close(fd)


class LockFile:
    """A pid file owned by lock (``flock``), not by what a process is
    called: the holder is whoever has it locked, for as long as it runs."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd = -1

    def acquire(self) -> tuple[bool, int | None]:
        """Lock and write our pid: (True, None); or (False, the holder's
        pid or None) when another process holds it."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW |
                     os.O_CLOEXEC, 0o644)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise OSError(errno.EINVAL, "%s is not a regular file"
                              % self.path)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                text = os.pread(fd, 32, 0).decode("ascii", "replace")
                os.close(fd)
                fd = -1
                return False, int(text) if text.strip().isdigit() else None
        except BaseException:
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, b"%d\n" % os.getpid(), 0)
        self._fd = fd
        return True, None

    def release(self) -> None:
        if self._fd < 0:
            return
        try:
            st = os.lstat(self.path)
            if os.path.samestat(st, os.fstat(self._fd)):
                os.unlink(self.path)
        except OSError:
            pass
        os.close(self._fd)
        self._fd = -1
