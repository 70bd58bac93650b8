# SPDX-License-Identifier: Apache-2.0
"""The plugin's side of port control: one request, one answer, within a
deadline, and a reason in words when there is none."""
from __future__ import annotations

import errno
import os
from typing import Any

from vio4wd_agent.control import client, protocol
from vio4wd_agent.control.server import ipc_path


class AgentError(Exception):
    """The agent refused a request, or could not be asked."""


class AgentClient:
    def __init__(self, endpoint: str, timeout: float) -> None:
        self.endpoint = endpoint
        self.timeout = timeout

    def _check_endpoint(self) -> None:
        """An ipc endpoint that is not there, or not ours to use, fails
        at once (ZeroMQ itself would wait out the timeout)."""
        path = ipc_path(self.endpoint)
        if path is None:
            return
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
        try:
            answer = client.request(self.endpoint, msg,
                                    protocol.PortControlResponse,
                                    max(1, int(self.timeout * 1000)))
        except client.ClientError as exc:
            raise AgentError(str(exc)) from None
        if answer.status != answer.OK:
            code = abs(answer.error_code)
            raise AgentError("the agent refused: %s (%s)" % (
                answer.error_code_source or "no reason given",
                errno.errorcode.get(code, str(code))))
        return answer
