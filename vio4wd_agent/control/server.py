# SPDX-License-Identifier: Apache-2.0
"""A ZeroMQ server for virtio-forwarder's REQ clients.

A ROUTER socket (wire-compatible with REQ clients) lets the server take the
next request while an earlier one is still being worked on -- a stats
request that waits for its rate interval, a port change queued behind
others -- so no client holds up the rest.  Handlers answer through a
callback, at once or later from any thread; every request gets exactly one
answer, also when its handler fails.
"""
from __future__ import annotations

import collections
import errno
import logging
import os
import threading
from typing import Callable, Protocol

import zmq

from vio4wd_agent import service, trusted
from vio4wd_agent.vhostuser import sockets

LOG = logging.getLogger(__name__)

Reply = Callable[[bytes], None]
# Requests are small (a bond of 8 is under 200 bytes): a larger one is
# answered with an error.  Beyond HARD_LIMIT ZeroMQ drops the connection
# without reading it, so nobody makes the agent hold huge messages.
MAX_MESSAGE = 64 * 1024
HARD_LIMIT = 4 * 1024 * 1024


class Handler(Protocol):
    name: str

    def handle(self, data: bytes, reply: Reply) -> None: ...

    def error(self, message: str) -> bytes: ...


def ipc_path(endpoint: str) -> str | None:
    return endpoint[len("ipc://"):] if endpoint.startswith("ipc://") else None


def prepare_ipc(endpoint: str, gid: int | None = None) -> None:
    """Make the directory of an ipc:// endpoint (root, ``gid``, 0750: the
    group's members reach the socket, nobody else adds anything there), or
    refuse one someone else controls; clear a stale socket of the agent's.
    A live one -- another agent's -- makes start-up fail: one agent per
    endpoint."""
    path = ipc_path(endpoint)
    if path is None:
        return
    trusted.ensure_dir(os.path.dirname(path) or "/", mode=0o750, gid=gid,
                       what="endpoint directory")
    try:
        sockets.clear_stale(path)
    except sockets.SocketInUse:
        raise OSError(errno.EADDRINUSE, "endpoint %s is in use by another "
                      "process (another agent?)" % endpoint) from None


class ZmqServer(service.Service):
    stop_timeout = 5.0

    def __init__(self, context: zmq.Context, endpoint: str, handler: Handler,
                 *, ipc_gid: int | None = None, ipc_mode: int = 0o660) -> None:
        super().__init__()
        self.thread_name = "zmq-%s" % handler.name
        self.endpoint = endpoint
        self.handler = handler
        self._context = context
        self._ipc_gid = ipc_gid
        self._ipc_mode = ipc_mode
        self._outbox: collections.deque[tuple[list[bytes], bytes]] = \
            collections.deque()
        self._wake_lock = threading.Lock()
        self._wake_addr = "inproc://wake-%s-%d" % (handler.name, id(self))
        self._sock: zmq.Socket | None = None
        self._made: os.stat_result | None = None
        self._wake_in: zmq.Socket | None = None
        self._wake_out: zmq.Socket | None = None

    def start(self) -> None:
        prepare_ipc(self.endpoint, self._ipc_gid)
        sock = self._context.socket(zmq.ROUTER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.MAXMSGSIZE, HARD_LIMIT)
        try:
            sock.bind(self.endpoint)
        except zmq.ZMQError as exc:
            sock.close()
            raise OSError(exc.errno, "cannot bind %s endpoint %s: %s" % (
                self.handler.name, self.endpoint, exc.strerror)) from None
        path = ipc_path(self.endpoint)
        if path is not None:
            self._made = sockets.secure_bound(path, self._ipc_mode,
                                              self._ipc_gid)
        self._sock = sock
        self._wake_in = self._context.socket(zmq.PULL)
        self._wake_in.bind(self._wake_addr)
        self._wake_out = self._context.socket(zmq.PUSH)
        self._wake_out.connect(self._wake_addr)
        super().start()
        LOG.info("%s server listening on %s", self.handler.name,
                 self.endpoint)

    def stop(self, timeout: float | None = None) -> bool:
        stopped = super().stop(timeout)
        for sock in (self._sock, self._wake_in, self._wake_out):
            if sock is not None:
                sock.close(0)
        path = ipc_path(self.endpoint)
        if path is not None:
            sockets.unlink_if_same(path, self._made)
        return stopped

    # ---- replies ----------------------------------------------------------
    def _replier(self, envelope: list[bytes]) -> Reply:
        done = threading.Lock()
        answered: list[bool] = []

        def reply(data: bytes) -> None:
            with done:
                if answered:
                    return          # one answer per request
                answered.append(True)
            self._outbox.append((envelope, data))
            with self._wake_lock:
                if self._wake_out is not None and not self.stopping:
                    try:
                        self._wake_out.send(b"", zmq.NOBLOCK)
                    except zmq.Again:
                        pass    # a wake-up is pending anyway
        return reply

    def _flush(self) -> None:
        assert self._sock is not None
        while self._outbox:
            envelope, data = self._outbox.popleft()
            try:
                self._sock.send_multipart(envelope + [data], zmq.NOBLOCK)
            except zmq.ZMQError as exc:  # the client is gone
                LOG.debug("%s: reply not sent: %s", self.handler.name, exc)

    # ---- the server thread -------------------------------------------------
    def run(self) -> None:
        assert self._sock is not None and self._wake_in is not None
        poller = zmq.Poller()
        poller.register(self._sock, zmq.POLLIN)
        poller.register(self._wake_in, zmq.POLLIN)
        while not self.stopping:
            events = dict(poller.poll(200))
            if self._wake_in in events:
                while True:
                    try:
                        self._wake_in.recv(zmq.NOBLOCK)
                    except zmq.Again:
                        break
            self._flush()
            if self._sock in events:
                self._receive()

    def _receive(self) -> None:
        assert self._sock is not None
        while True:
            try:
                frames = self._sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            # REQ clients: [identity, b"", request]
            try:
                cut = frames.index(b"") + 1
            except ValueError:
                cut = 1
            envelope, body = frames[:cut], frames[cut:]
            reply = self._replier(envelope)
            if len(body) != 1:
                reply(self.handler.error(
                    "expected one message part, got %d" % len(body)))
                continue
            if len(body[0]) > MAX_MESSAGE:
                LOG.warning("%s: refused a request of %d bytes (at most "
                            "%d)", self.handler.name, len(body[0]),
                            MAX_MESSAGE)
                reply(self.handler.error(
                    "request of %d bytes; at most %d" % (len(body[0]),
                                                         MAX_MESSAGE)))
                continue
            try:
                self.handler.handle(body[0], reply)
            except Exception as exc:  # never let a request go unanswered
                LOG.exception("%s: request failed", self.handler.name)
                reply(self.handler.error("internal error: %s" % exc))
