# SPDX-License-Identifier: Apache-2.0
"""A RelayEngine in a child process, for tests that need an EAL shaped
differently from the session's (the EAL starts once per process): e.g.
several worker lcores sharing one CPU to test placement and live moves.

The child inherits the test namespace; calls are forwarded over a pipe and
engine errors come back as the same exception classes.
"""
from __future__ import annotations

import multiprocessing
import threading
from typing import Any

from vio4wd_agent import exception


def _serve(conn: Any, eal_args: list[str]) -> None:
    from vio4wd_agent.relay.engine import RelayEngine
    engine = RelayEngine()
    try:
        engine.start(eal_args)
    except exception.EngineError as exc:
        conn.send(("err", type(exc).__name__, exc.errno, str(exc)))
        return
    conn.send(("ok", None))
    while True:
        msg = conn.recv()
        if msg is None:
            break
        name, args, kwargs = msg
        try:
            conn.send(("ok", getattr(engine, name)(*args, **kwargs)))
        except exception.EngineError as exc:
            conn.send(("err", type(exc).__name__, exc.errno, str(exc)))
    engine.shutdown()
    conn.send(("ok", None))


class RemoteEngine:
    def __init__(self, eal_args: list[str]) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        # One call at a time on the pipe (a test may call from a sender
        # thread and its main thread at once).
        self._lock = threading.Lock()
        self._proc = ctx.Process(target=_serve, args=(child, eal_args),
                                 daemon=True)
        self._proc.start()
        self._result(timeout=60)

    def _result(self, timeout: float = 60) -> Any:
        if not self._conn.poll(timeout):
            raise AssertionError("engine host did not answer")
        reply = self._conn.recv()
        if reply[0] == "ok":
            return reply[1]
        cls = getattr(exception, reply[1], exception.EngineError)
        raise cls(reply[2], reply[3])

    def __getattr__(self, name: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                self._conn.send((name, args, kwargs))
                return self._result()
        return call

    def close(self) -> None:
        if self._proc.is_alive():
            self._conn.send(None)
            try:
                self._result(timeout=30)
            finally:
                self._proc.join(10)
                if self._proc.is_alive():
                    self._proc.kill()
