# SPDX-License-Identifier: Apache-2.0
"""Port control by files: a directory watched with inotify.

Drop a command file there (write it under a name starting with '.', then
rename it: half-written files are never read).  One command per file:

- JSON with the fields of a port-control request:
  ``{"op": "add", "virtio_id": 3, "pci_addrs": ["0000:05:08.1"]}``
  (``op``: add, remove, add_sock, remove_sock, query_pci; optional
  ``name``/``mode`` for bonds, ``vhost_path``, ``conditional``);
- or virtio-forwarder's ``add_port <netdev>`` / ``del_port <netdev>``: the
  netdev's VF, relayed as the VF's index under its PF.

The agent answers in ``<file>.result`` ("OK", "OK <answer>" or
"ERROR <errno> <message>") and removes the command.  The directory belongs
to the agent (root, the control group, mode 1770: members drop commands,
nobody but root renames or removes another's files); one that someone
else controls is refused.  Commands are read and answers written without
following symbolic links, and an answer never replaces a file the agent
did not write.
"""
from __future__ import annotations

import ctypes
import errno
import json
import logging
import os
import select
import stat
import struct
from typing import Any

from vio4wd_agent.conf.parsing import check_vf, normalize_pci
from vio4wd_agent.control.port_control import BadRequest, PortControl, \
    PortRequest
from vio4wd_agent import service, trusted
from vio4wd_agent.exception import ConfigError
from vio4wd_agent.host import sysfs
from vio4wd_agent.relay.model import MAX_RELAY_ID

LOG = logging.getLogger(__name__)

IN_CLOSE_WRITE = 0x00000008
IN_MOVED_TO = 0x00000080
IN_Q_OVERFLOW = 0x00004000
_EVENT = struct.Struct("iIII")
MAX_COMMAND = 64 * 1024
RESULT = ".result"
_OPS = ("add", "remove", "add_sock", "remove_sock", "query_pci")


def parse_command(text: str) -> PortRequest:
    """A command file's text -> PortRequest; BadRequest says what is
    wrong."""
    stripped = text.strip()
    words = stripped.split()
    if len(words) == 2 and words[0] in ("add_port", "del_port"):
        return _netdev_command(words[0], words[1])
    try:
        data = json.loads(stripped)
    except ValueError as exc:
        raise BadRequest(errno.EINVAL, "neither JSON nor add_port/del_port "
                         "<netdev>: %s" % exc) from None
    except RecursionError:
        raise BadRequest(errno.EINVAL, "JSON nested too deeply") from None
    if not isinstance(data, dict):
        raise BadRequest(errno.EINVAL, "the JSON must be an object")
    unknown = set(data) - {"op", "virtio_id", "pci_addrs", "name", "mode",
                           "vhost_path", "conditional"}
    if unknown:
        raise BadRequest(errno.EINVAL, "unknown fields: %s"
                         % ", ".join(sorted(unknown)))
    op = data.get("op")
    if op not in _OPS:
        raise BadRequest(errno.EINVAL, "op must be one of %s, not %r"
                         % (", ".join(_OPS), op))
    pcis = data.get("pci_addrs", [])
    if isinstance(pcis, str):
        pcis = [pcis]
    if not isinstance(pcis, list) or not all(isinstance(p, str)
                                             for p in pcis):
        raise BadRequest(errno.EINVAL, "pci_addrs must be a list of strings")
    addrs = []
    for p in pcis:
        norm = normalize_pci(p)
        if norm is None:
            raise BadRequest(errno.EINVAL, "%r is not a PCI address" % p)
        addrs.append(norm)

    def typed(key: str, kind: type) -> Any:
        value = data.get(key)
        if value is not None and (not isinstance(value, kind) or
                                  isinstance(value, bool) and kind is int):
            raise BadRequest(errno.EINVAL, "%s must be %s" % (
                key, kind.__name__))
        return value

    virtio_id = typed("virtio_id", int)
    if virtio_id is not None and not 0 <= virtio_id <= MAX_RELAY_ID:
        raise BadRequest(errno.EINVAL, "virtio_id %d out of range (0-%d)"
                         % (virtio_id, MAX_RELAY_ID))
    conditional = typed("conditional", bool)
    return PortRequest(op=op.upper(), virtio_id=virtio_id,
                       pci_addrs=tuple(addrs), name=typed("name", str),
                       mode=typed("mode", int),
                       vhost_path=typed("vhost_path", str),
                       conditional=True if conditional is None
                       else conditional)


def _netdev_command(verb: str, netdev: str) -> PortRequest:
    pci = sysfs.netdev_pci(netdev)
    if pci is None:
        raise BadRequest(errno.ENODEV, "netdev %s is not a PCI function "
                         "(no /sys/class/net/%s/device)" % (netdev, netdev))
    index = sysfs.vf_index(pci)
    if index is None:
        raise BadRequest(errno.ENODEV, "netdev %s (%s) is not an SR-IOV VF"
                         % (netdev, pci))
    check_vf(pci)
    return PortRequest(op="ADD" if verb == "add_port" else "REMOVE",
                       virtio_id=index, pci_addrs=(pci,))


class IpcDirectory(service.Service):
    name = "ipc"
    thread_name = "ipc-port-control"
    stop_timeout = 5.0

    def __init__(self, path: str, control: PortControl,
                 gid: int | None = None) -> None:
        super().__init__()
        self.path = path
        self.control = control
        self.gid = gid
        self._fd = -1

    def check(self) -> None:
        """Create the directory, or refuse one that someone else controls
        (trusted.UntrustedPath says which and how to fix it)."""
        self.path = trusted.ensure_dir(self.path, mode=0o1770, gid=self.gid,
                                       what="IPC port control directory")
        st = os.stat(self.path)
        if st.st_mode & stat.S_IWOTH:
            raise ConfigError(name="IPC port control directory",
                              value=self.path, reason="anyone may write it "
                              "(mode %o); refusing commands from it"
                              % stat.S_IMODE(st.st_mode))

    def start(self) -> None:
        self.check()
        libc = ctypes.CDLL(None, use_errno=True)
        fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        if libc.inotify_add_watch(fd, self.path.encode(),
                                  IN_CLOSE_WRITE | IN_MOVED_TO) < 0:
            err = ctypes.get_errno()
            os.close(fd)
            raise OSError(err, "inotify_add_watch %s" % self.path)
        self._fd = fd
        super().start()
        LOG.info("IPC port control: watching %s", self.path)

    def stop(self, timeout: float | None = None) -> bool:
        stopped = super().stop(timeout)
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        return stopped

    def run(self) -> None:
        """The watch loop: no command, however bad, ends it."""
        self._scan()    # commands dropped while we were not watching
        while not self.stopping:
            try:
                self._watch_once()
            except Exception:
                LOG.exception("IPC port control: watching %s failed; "
                              "going on", self.path)
                self.sleep(0.5)

    def _watch_once(self) -> None:
        ready, _, _ = select.select([self._fd], [], [], 0.5)
        if not ready:
            return
        try:
            data = os.read(self._fd, 64 * 1024)
        except BlockingIOError:
            return
        names, overflow = [], False
        off = 0
        while off + _EVENT.size <= len(data):
            _, mask, _, length = _EVENT.unpack_from(data, off)
            raw = data[off + _EVENT.size:off + _EVENT.size + length]
            off += _EVENT.size + length
            if mask & IN_Q_OVERFLOW:
                overflow = True
            elif raw:
                names.append(raw.rstrip(b"\0").decode("utf-8",
                                                      "replace"))
        if overflow:
            self._scan()
        for name in names:
            self._handle(name)

    def _scan(self) -> None:
        for name in sorted(os.listdir(self.path)):
            self._handle(name)

    def _handle(self, name: str) -> None:
        try:
            self._handle_one(name)
        except Exception as exc:     # one command never stops the others
            LOG.exception("IPC command %r failed", name)
            self._answer(name, errno.EIO, "internal error: %s" % exc, None)

    def _handle_one(self, name: str) -> None:
        if name.startswith(".") or name.endswith(RESULT) or "/" in name:
            return
        refused: BadRequest | None = None
        try:
            try:
                data = trusted.read_file(self.path, name, MAX_COMMAND)
            except FileNotFoundError:
                raise
            except OSError as exc:
                raise BadRequest(exc.errno or errno.EINVAL, exc.strerror or
                                 str(exc)) from None
            request = parse_command(data.decode("utf-8"))
        except FileNotFoundError:
            return
        except UnicodeDecodeError:
            refused = BadRequest(errno.EINVAL, "not UTF-8 text")
        except BadRequest as exc:
            refused = exc
        if refused is not None:
            LOG.warning("IPC command %s refused: %s", name, refused)
            self._answer(name, refused.code, str(refused), None)
            return
        self.control.submit(request, lambda code, msg, query: self._answer(
            name, code, msg, query))

    def _answer(self, name: str, code: int, message: str,
                query: str | None) -> None:
        if code:
            text = "ERROR %d %s\n" % (-abs(code), message)
        else:
            text = "OK%s\n" % (" " + query if query else "")
        try:
            # The command file was handed to the agent: it goes, before the
            # answer shows that the command is done.
            dfd = trusted.open_dir(self.path)
            try:
                os.unlink(name, dir_fd=dfd)
            except FileNotFoundError:
                pass
            finally:
                os.close(dfd)
            self._write_result(name + RESULT, text.encode("utf-8"))
        except OSError as exc:
            LOG.error("IPC command %s: cannot answer: %s", name, exc)

    def _write_result(self, result: str, data: bytes) -> None:
        """A result replaces only an earlier result of the agent's own."""
        for _ in range(2):
            try:
                trusted.write_file(self.path, result, data, mode=0o640,
                                   gid=self.gid, replace=False)
                return
            except FileExistsError:
                dfd = trusted.open_dir(self.path)
                try:
                    st = os.lstat(result, dir_fd=dfd)
                    if not (stat.S_ISREG(st.st_mode) and
                            st.st_uid == os.getuid()):
                        raise OSError(errno.EEXIST, "%s is there and is not "
                                      "the agent's" % result) from None
                    os.unlink(result, dir_fd=dfd)
                finally:
                    os.close(dfd)
        raise OSError(errno.EEXIST, "%s keeps coming back" % result)
