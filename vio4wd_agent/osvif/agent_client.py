# SPDX-License-Identifier: Apache-2.0
"""The plugin's side of port control: one request, one answer, within a
deadline, and a reason in words when there is none."""
from __future__ import annotations

import errno
import os
import sys
from typing import Any

import zmq

from vio4wd_agent.control import protocol


class AgentError(Exception):
    """The agent refused a request, or could not be asked."""


def _zmq() -> Any:
    """pyzmq, cooperative when nova-compute runs under eventlet (a
    blocking receive would stall every green thread of the service)."""
    patcher = sys.modules.get("eventlet.patcher")
    if patcher is not None and patcher.is_monkey_patched("socket"):
        import zmq.green as green
        return green
    return zmq


class AgentClient:
    def __init__(self, endpoint: str, timeout: float) -> None:
        self.endpoint = endpoint
        self.timeout = timeout

    def _check_endpoint(self) -> None:
        """An ipc endpoint that is not there, or not ours to use, fails
        at once (ZeroMQ itself would wait out the timeout)."""
        if not self.endpoint.startswith("ipc://"):
            return
        path = self.endpoint[len("ipc://"):]
        if not os.path.exists(path):
            raise AgentError(
                "the vio4wd agent's port control endpoint %s does not exist "
                "(is vio4wd-agent running, with [control] port_control = "
                "zmq and this zmq_port_control_ep?)" % self.endpoint)
        if not os.access(path, os.W_OK):
            raise AgentError(
                "this user (uid %d) may not use the agent's endpoint %s "
                "(add it to the agent's [control] endpoint_group)"
                % (os.getuid(), self.endpoint))

    def request(self, msg: Any) -> Any:
        """Send a PortControlRequest; the OK answer, or AgentError with
        the agent's reason."""
        self._check_endpoint()
        z = _zmq()
        ms = max(1, int(self.timeout * 1000))
        sock = z.Context.instance().socket(zmq.REQ)
        try:
            sock.setsockopt(zmq.LINGER, 0)
            sock.setsockopt(zmq.SNDTIMEO, ms)
            sock.setsockopt(zmq.RCVTIMEO, ms)
            try:
                sock.connect(self.endpoint)
                sock.send(msg.SerializeToString())
                data = sock.recv()
            except zmq.Again:
                raise AgentError("no answer from the vio4wd agent at %s "
                                 "within %g s" % (self.endpoint,
                                                  self.timeout)) from None
            except zmq.ZMQError as exc:
                raise AgentError("cannot reach the vio4wd agent at %s: %s"
                                 % (self.endpoint, exc)) from None
        finally:
            sock.close(0)
        answer = protocol.PortControlResponse()
        try:
            answer.ParseFromString(data)
        except Exception as exc:
            raise AgentError("unreadable answer from %s: %s"
                             % (self.endpoint, exc)) from None
        if answer.status != answer.OK:
            code = abs(answer.error_code)
            raise AgentError("the agent refused: %s (%s)" % (
                answer.error_code_source or "no reason given",
                errno.errorcode.get(code, str(code))))
        return answer
