# SPDX-License-Identifier: Apache-2.0
"""One way to run a thread, and one way to wait for an answer.

Every long-lived thread of the agent is a :class:`Service`: ``start()``
runs ``run()`` on a daemon thread of its own name; whatever ``run()``
raises is logged and, unless the service is stopping, ``run()`` starts
again a moment later (a bad request or a bug in one round never ends a
source); ``stop()`` asks it to stop, wakes it, and waits a bounded time,
saying so when the thread is still there.

Every wait for another thread's answer has a deadline: :func:`result`
waits for a future and, when the deadline passes, logs who waited for
what and raises :class:`~vio4wd_agent.exception.Timeout` (the request
may still be carried out later; the waiter goes on).
"""
from __future__ import annotations

import concurrent.futures
import errno
import logging
import threading
from typing import Any

from vio4wd_agent import exception

LOG = logging.getLogger(__name__)

# How long a source waits for the relay manager to carry out a request:
# far more than any request takes (a VF hot-plug, a bond of eight), so
# that passing it means something is stuck.
DEADLINE = 60.0


def result(future: concurrent.futures.Future, what: str,
           timeout: float = DEADLINE) -> Any:
    """``future``'s result within ``timeout`` s; else a log line naming
    ``what`` was waited for, and Timeout."""
    try:
        return future.result(timeout)
    except concurrent.futures.TimeoutError:
        LOG.error("%s: no answer within %.0f s; going on without it",
                  what, timeout)
        raise exception.Timeout(errno.ETIMEDOUT, "%s: no answer within "
                                "%.0f s" % (what, timeout)) from None


class Service:
    """A named daemon thread running :meth:`run` (see the module)."""

    #: the thread's name (ps, top, log lines)
    thread_name = "service"
    #: how long stop() waits for the thread
    stop_timeout = 10.0
    #: pause before run() starts again after it raised
    restart_delay = 1.0

    def __init__(self) -> None:
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def sleep(self, seconds: float) -> bool:
        """Wait ``seconds``, less when asked to stop; True when stopping."""
        return self._stopping.wait(seconds)

    def start(self) -> None:
        self._stopping.clear()
        self._thread = threading.Thread(target=self._main, daemon=True,
                                        name=self.thread_name)
        self._thread.start()

    def signal_stop(self) -> None:
        """Ask the thread to stop, without waiting for it (several
        services stopping at once)."""
        self._stopping.set()
        try:
            self.wake()
        except Exception:
            LOG.exception("%s: cannot wake the thread to stop it",
                          self.thread_name)

    def stop(self, timeout: float | None = None) -> bool:
        """Stop and wait for the thread; False (and a log line) when it
        did not end in time."""
        self.signal_stop()
        thread, self._thread = self._thread, None
        if thread is None or thread is threading.current_thread():
            return True
        limit = self.stop_timeout if timeout is None else timeout
        thread.join(limit)
        if thread.is_alive():
            LOG.warning("%s: thread still running %.0f s after it was asked "
                        "to stop; leaving it", self.thread_name, limit)
            return False
        return True

    def wake(self) -> None:
        """Unblock run() so that it sees ``stopping`` (override when it
        waits on something else than :meth:`sleep`)."""

    def run(self) -> None:
        raise NotImplementedError

    def _main(self) -> None:
        while not self.stopping:
            try:
                self.run()
                return
            except Exception:
                LOG.exception("%s: failed; starting again in %.0f s",
                              self.thread_name, self.restart_delay)
            if self.sleep(self.restart_delay):
                return


class Periodic(Service):
    """A service that calls :meth:`step` every ``interval`` s; a step that
    raises is logged and the next one comes on time."""

    interval = 1.0

    def step(self) -> Any:
        """One round (what it returns is the caller's business)."""
        raise NotImplementedError

    def run(self) -> None:
        while not self.sleep(self.interval):
            try:
                self.step()
            except Exception:
                LOG.exception("%s: round failed", self.thread_name)
