# SPDX-License-Identifier: Apache-2.0
"""The agent's end of the libvirt qemu hook (vio4wd-libvirt-hook).

libvirt sends no event before a transient domain's QEMU starts (nor on a
migration's destination), and QEMU will not start without its vhost-user
peer.  libvirt's qemu hook runs earlier: at ``prepare begin`` it is handed
the domain XML and libvirtd waits for it.  The hook passes the XML here,
over a root-only unix socket, and gets the answer once the relays exist.

One request per connection, JSON both ways; the request is read to EOF:

    {"op": "prepare" | "release", "domain": NAME, "xml": DOMAIN XML}
    {"ok": BOOL, "served": [PATH...], "errors": [MSG...],
     "warnings": [MSG...]}

The handler must not call back into libvirt: libvirtd holds the domain
while the hook runs.
"""
from __future__ import annotations

import json
import logging
import os
import socket
import threading
from typing import Any, Callable, Sequence

from vio4wd_agent import service, trusted
from vio4wd_agent.vhostuser import sockets

LOG = logging.getLogger(__name__)

MAX_REQUEST = 8 << 20           # a domain XML is a few kB; 8 MB is junk
READ_TIMEOUT = 10.0
MAX_CLIENTS = 16
OPS = ("prepare", "release")

Handler = Callable[[str, str, str], dict[str, Any]]


class BadRequest(ValueError):
    pass


def parse_request(data: bytes) -> tuple[str, str, str]:
    """(op, domain, xml) from a request, or BadRequest saying what is
    wrong with it."""
    try:
        req = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadRequest("not a JSON request: %s" % exc) from None
    except RecursionError:
        raise BadRequest("JSON nested too deeply") from None
    if not isinstance(req, dict):
        raise BadRequest("request is a JSON %s, not an object"
                         % type(req).__name__)
    op, name, xml = req.get("op"), req.get("domain", ""), req.get("xml")
    if op not in OPS:
        raise BadRequest("unknown op %r (expected %s)"
                         % (op, " or ".join(OPS)))
    if not isinstance(name, str):
        raise BadRequest("domain must be a string, not %s"
                         % type(name).__name__)
    if not isinstance(xml, str) or not xml.strip():
        raise BadRequest("xml must be the domain XML as a string")
    return op, name, xml


class HookListener(service.Service):
    """Accepts hook requests on ``path`` and answers them with
    ``handler(op, domain, xml)``; a bad request gets an error answer and
    the listener carries on."""

    name = "libvirt-hook"
    thread_name = "libvirt-hook"
    stop_timeout = 5.0

    def __init__(self, path: str, handler: Handler) -> None:
        super().__init__()
        self.path = path
        self.handler = handler
        self._sock: socket.socket | None = None
        self._made: os.stat_result | None = None
        self._slots = threading.BoundedSemaphore(MAX_CLIENTS)

    def start(self) -> None:
        trusted.ensure_dir(os.path.dirname(self.path) or ".", mode=0o755,
                           what="hook socket directory")
        # A live listener (another agent) is refused, a stale file of ours
        # removed.
        sockets.clear_stale(self.path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)           # never a moment wider than 0600
        try:
            sock.bind(self.path)
        finally:
            os.umask(old)
        self._made = sockets.secure_bound(self.path, 0o600)
        sock.listen(MAX_CLIENTS)
        sock.settimeout(0.5)
        self._sock = sock
        super().start()
        LOG.info("libvirt hook requests taken on %s", self.path)

    def stop(self, timeout: float | None = None) -> bool:
        stopped = super().stop(timeout)
        if self._sock is not None:
            self._sock.close()
            self._sock = None
            sockets.unlink_if_same(self.path, self._made)
        return stopped

    def run(self) -> None:
        assert self._sock is not None
        while not self.stopping:
            try:
                conn, _ = self._sock.accept()
            except socket.timeout:
                continue
            except OSError as exc:
                LOG.error("libvirt hook socket %s: %s", self.path, exc)
                self.sleep(0.5)
                continue
            if not self._slots.acquire(blocking=False):
                self._reply(conn, answer(
                    errors=["too many hook requests at once"]))
                conn.close()
                continue
            try:
                threading.Thread(target=self._serve, args=(conn,),
                                 name="libvirt-hook-req", daemon=True).start()
            except RuntimeError as exc:     # no thread to be had
                LOG.error("libvirt hook: request not served: %s", exc)
                self._reply(conn, answer(errors=["agent busy: %s" % exc]))
                conn.close()
                self._slots.release()

    def _serve(self, conn: socket.socket) -> None:
        try:
            self._serve_one(conn)
        except Exception:       # the next request is served all the same
            LOG.exception("libvirt hook: request failed")
        finally:
            conn.close()
            self._slots.release()

    def _serve_one(self, conn: socket.socket) -> None:
        conn.settimeout(READ_TIMEOUT)
        try:
            data = _read_all(conn)
            if not data:        # a probe (is anyone listening?)
                return
            op, name, xml = parse_request(data)
        except (BadRequest, OSError) as exc:
            LOG.warning("libvirt hook: bad request: %s", exc)
            self._reply(conn, answer(errors=["bad request: %s" % exc]))
            return
        try:
            reply = self.handler(op, name, xml)
        except Exception as exc:        # never kill the listener
            LOG.exception("libvirt hook: %s %s failed", op, name)
            reply = answer(errors=["%s %s failed: %s" % (op, name, exc)])
        self._reply(conn, reply)

    @staticmethod
    def _reply(conn: socket.socket, reply: dict[str, Any]) -> None:
        try:
            conn.sendall(json.dumps(reply).encode() + b"\n")
        except OSError as exc:
            LOG.debug("libvirt hook: answer not delivered: %s", exc)


def answer(served: Sequence[str] = (), errors: Sequence[str] = (),
           warnings: Sequence[str] = ()) -> dict[str, Any]:
    """An answer to the hook: ok unless something was refused."""
    return {"ok": not errors, "served": list(served),
            "errors": list(errors), "warnings": list(warnings)}


def _read_all(conn: socket.socket) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = conn.recv(65536)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > MAX_REQUEST:
            raise BadRequest("request larger than %d bytes" % MAX_REQUEST)
        chunks.append(chunk)
