# SPDX-License-Identifier: Apache-2.0
"""Stats answers share a sample for a few ms, but never one from before a
relay was added, changed or removed."""
from __future__ import annotations

from vio4wd_agent.control.stats import SharedSampler


class Engine:
    def __init__(self) -> None:
        self.changes = 0
        self.reads = 0
        self.ids: list[int] = []

    def relays(self):  # type: ignore[no-untyped-def]
        self.reads += 1
        return [type("S", (), {"relay_id": i})() for i in self.ids]


def test_shared_within_max_age():
    engine = Engine()
    sampler = SharedSampler(engine, max_age=3600)
    first = sampler()
    assert sampler() is first and engine.reads == 1


def test_not_shared_across_a_change():
    engine = Engine()
    engine.ids = [1]
    sampler = SharedSampler(engine, max_age=3600)
    assert list(sampler()[1]) == [1]
    engine.ids = []
    engine.changes += 1                 # a relay removed
    assert sampler()[1] == {} and engine.reads == 2
    assert sampler.taken == 2


def test_not_before_is_honoured():
    engine = Engine()
    sampler = SharedSampler(engine, max_age=3600)
    t0 = sampler()[0]
    assert sampler(not_before=t0 + 1e-9)[0] >= t0
    assert engine.reads == 2
