# SPDX-License-Identifier: Apache-2.0
"""The Python side's copy of the data plane's limits is the header's."""
from __future__ import annotations

from vio4wd_agent.relay import model
from vio4wd_agent.relay._dpdk import lib


def test_python_limits_are_the_headers():
    assert model.MAX_QUEUES == lib.V4W_MAX_QUEUES
    assert model.MAX_BOND == lib.V4W_MAX_BOND
