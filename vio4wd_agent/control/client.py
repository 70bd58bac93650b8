# SPDX-License-Identifier: Apache-2.0
"""A REQ client for the agent's ZeroMQ servers, used by the CLIs and the
os-vif plugin."""
from __future__ import annotations

import sys
from typing import Any

import zmq

DEFAULT_DIR = "ipc:///var/run/virtio-forwarder/"
PORT_CONTROL_EP = DEFAULT_DIR + "port_control"
STATS_EP = DEFAULT_DIR + "stats"
CORE_SCHED_EP = DEFAULT_DIR + "core_sched"
CONFIG_EP = DEFAULT_DIR + "config"


class ClientError(Exception):
    pass


def _zmq() -> Any:
    """pyzmq, cooperative in a process eventlet has patched (nova-compute
    loading the os-vif plugin): a blocking receive would stall every green
    thread of the service."""
    patcher = sys.modules.get("eventlet.patcher")
    if patcher is not None and patcher.is_monkey_patched("socket"):
        import zmq.green as green
        return green
    return zmq


def request(endpoint: str, message: Any, response_cls: Any,
            timeout_ms: int = 2000) -> Any:
    """Send ``message``, return the parsed answer; ClientError says why
    there is none."""
    ctx: zmq.Context = _zmq().Context.instance()
    sock = ctx.socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVTIMEO, timeout_ms)
    sock.setsockopt(zmq.SNDTIMEO, timeout_ms)
    try:
        try:
            sock.connect(endpoint)
        except zmq.ZMQError as exc:
            raise ClientError("bad endpoint %s: %s" % (endpoint,
                                                       exc)) from None
        try:
            sock.send(message.SerializePartialToString())
            data = sock.recv()
        except zmq.Again:
            raise ClientError("no answer from the vio4wd agent at %s within "
                              "%g s (is vio4wd-agent running, with this "
                              "endpoint?)" % (endpoint, timeout_ms / 1000)
                              ) from None
        except zmq.ZMQError as exc:
            raise ClientError("cannot reach the vio4wd agent at %s: %s"
                              % (endpoint, exc)) from None
        answer = response_cls()
        try:
            answer.ParseFromString(data)
        except Exception as exc:
            raise ClientError("unreadable answer from %s: %s"
                              % (endpoint, exc)) from None
        return answer
    finally:
        sock.close(0)
