# SPDX-License-Identifier: Apache-2.0
"""The one way to run a thread, and bounded waits."""
from __future__ import annotations

import concurrent.futures
import logging
import threading

import pytest

from vio4wd_agent import exception, service
from tests.functional.util import wait_for


class Flaky(service.Service):
    thread_name = "test-flaky"
    restart_delay = 0.01

    def __init__(self) -> None:
        super().__init__()
        self.runs = 0

    def run(self) -> None:
        self.runs += 1
        if self.runs < 3:
            raise RuntimeError("round %d went wrong" % self.runs)
        while not self.sleep(0.01):
            pass


def test_a_failing_run_is_logged_and_started_again(caplog):
    s = Flaky()
    with caplog.at_level(logging.ERROR):
        s.start()
        wait_for(lambda: s.runs == 3, what="third run")
        assert s.running
        assert s.stop() is True
    assert not s.running
    assert caplog.text.count("test-flaky: failed; starting again") == 2
    assert "round 2 went wrong" in caplog.text


class Stuck(service.Service):
    thread_name = "test-stuck"

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def run(self) -> None:
        self.release.wait(30)        # ignores stopping


def test_a_stuck_thread_is_reported_not_waited_for(caplog):
    s = Stuck()
    s.start()
    with caplog.at_level(logging.WARNING):
        assert s.stop(timeout=0.2) is False
    assert "test-stuck: thread still running" in caplog.text
    s.release.set()


def test_periodic_survives_a_bad_step(caplog):
    steps = []

    class Ticker(service.Periodic):
        thread_name = "test-ticker"
        interval = 0.01

        def step(self) -> None:
            steps.append(1)
            if len(steps) == 2:
                raise ValueError("bad round")

    t = Ticker()
    with caplog.at_level(logging.ERROR):
        t.start()
        wait_for(lambda: len(steps) >= 5, what="rounds after the bad one")
        t.stop()
    assert "test-ticker: round failed" in caplog.text


def test_wake_unblocks_a_stop():
    class Waiter(service.Service):
        thread_name = "test-waiter"

        def __init__(self) -> None:
            super().__init__()
            self.cond = threading.Condition()
            self.waiting = False

        def wake(self) -> None:
            with self.cond:
                self.cond.notify()

        def run(self) -> None:
            with self.cond:
                while not self.stopping:
                    self.waiting = True
                    self.cond.wait(60)

    w = Waiter()
    w.start()
    # Only a thread already waiting shows that wake() reaches it.
    wait_for(lambda: w.waiting, what="the thread waiting")
    assert w.stop(timeout=20) is True


def test_result_has_a_deadline(caplog):
    f: concurrent.futures.Future = concurrent.futures.Future()
    with caplog.at_level(logging.ERROR):
        with pytest.raises(exception.Timeout, match="OVSDB: relay 3: no "
                           "answer within 0 s"):
            service.result(f, "OVSDB: relay 3", timeout=0.05)
    assert "OVSDB: relay 3: no answer within 0 s; going on" in caplog.text
    f.set_result(7)
    assert service.result(f, "x") == 7
    g: concurrent.futures.Future = concurrent.futures.Future()
    g.set_exception(exception.NotFound(2, "relay 9 does not exist"))
    with pytest.raises(exception.NotFound):
        service.result(g, "y")
