# SPDX-License-Identifier: Apache-2.0
"""RPC on Neutron's bus, both ways.

- ``AgentEndpoint``: the agent's own RPC API (topic ``vio4wd-agent``,
  server = host), so that an operator can drive any host's forwarder from a
  controller node (``vio4wd-ctl --host``).  Version history:

  1.0  list_relays, stats, plug, unplug

- ``AgentClient``: its client.
- ``NeutronClient``: the calls every Neutron L2 agent makes to
  neutron-server: ``report_state`` (topic q-reports-plugin) and
  ``update_device_list`` (topic q-plugin).
"""
from __future__ import annotations

import concurrent.futures
import dataclasses
import datetime
import functools
import inspect
import logging
import uuid
from typing import Any, Callable, TypeVar

import oslo_messaging

from vio4wd_agent import manager
from vio4wd_agent.conf.parsing import normalize_pci
from vio4wd_agent.control import port_control
from vio4wd_agent.neutron import constants as c
from vio4wd_agent.relay.engine import RelayEngine
from vio4wd_agent.relay.model import RelaySpec, RelayState

LOG = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])

# neutron_lib.constants.ISO8601_TIME_FORMAT: how report_state's time reads
ISO8601 = "%Y-%m-%dT%H:%M:%S.%f"


class RpcRequestError(ValueError):
    """A request to the agent's RPC API was refused; the message says
    why (sent back to the caller as the remote error's text)."""


def _refusals(func: F) -> F:
    """A refused request: one warning line here, the reason in the
    caller's remote error (and no traceback in the server's log)."""
    signature = inspect.signature(func)

    @functools.wraps(func)
    def wrapper(self: Any, ctxt: Any, **kwargs: Any) -> Any:
        try:
            try:
                signature.bind(self, ctxt, **kwargs)
            except TypeError as exc:
                raise RpcRequestError("%s: %s (arguments: %s)" % (
                    func.__name__, exc, ", ".join(
                        p for p in signature.parameters
                        if p not in ("self", "ctxt")))) from None
            return func(self, ctxt, **kwargs)
        except RpcRequestError as exc:
            LOG.warning("RPC %s refused: %s", func.__name__, exc)
            raise
    return oslo_messaging.expected_exceptions(RpcRequestError)(
        wrapper)  # type: ignore[no-any-return]


class QuietRefusals(logging.Filter):
    """oslo.messaging logs a call to an unknown method or version with a
    traceback, as if the agent had failed: one warning line instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, (oslo_messaging.NoSuchMethod,
                            oslo_messaging.UnsupportedVersion)):
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.msg, record.args = "RPC request refused: %s", (exc,)
            record.exc_info = record.exc_text = None
        return True


def admin_context() -> dict[str, Any]:
    """A request context as neutron-server deserializes it (an admin one,
    like Neutron's own agents send)."""
    return {"is_admin": True, "roles": ["admin"], "user_id": None,
            "project_id": None, "request_id": "req-" + str(uuid.uuid4())}


def relay_dict(spec: RelaySpec, state: RelayState | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "relay_id": spec.relay_id, "socket": spec.vhost_path,
        "vf": spec.vf_label or spec.vf, "port_id": spec.port_id,
        "mac": spec.mac, "instance_uuid": spec.instance_uuid,
        "vhost_client": spec.client}
    if state is not None:
        out.update(vf_ready=state.vf_ready, vm_connected=state.vm_connected,
                   forwarding=state.forwarding, reason=state.reason,
                   numa_node=state.numa_node)
    return out


class AgentEndpoint:
    """The agent's RPC API.  Every error goes back to the caller as a
    remote error naming what was wrong; the server keeps serving."""

    target = oslo_messaging.Target(version=c.RPC_API_VERSION)

    def __init__(self, mgr: manager.RelayManager, engine: RelayEngine,
                 control: port_control.PortControl,
                 timeout: float = 30.0) -> None:
        self._manager = mgr
        self._engine = engine
        self._control = control
        self._timeout = timeout

    def _states(self) -> dict[int, RelayState]:
        return {s.relay_id: s for s in self._engine.relays()}

    @_refusals
    def list_relays(self, ctxt: Any) -> list[dict[str, Any]]:
        states = self._states()
        return [relay_dict(spec, states.get(i))
                for i, spec in sorted(self._manager.specs().items())]

    @_refusals
    def stats(self, ctxt: Any, relay_id: int | None = None
              ) -> list[dict[str, Any]]:
        if relay_id is not None and (not isinstance(relay_id, int) or
                                     isinstance(relay_id, bool)):
            raise RpcRequestError("relay_id %r is not a number" % (relay_id,))
        specs = self._manager.specs()
        out = []
        for state in self._engine.relays():
            if relay_id is not None and state.relay_id != relay_id:
                continue
            item = dataclasses.asdict(state)
            spec = specs.get(state.relay_id)
            if spec is not None:
                item.update(port_id=spec.port_id, vf=spec.vf_label or spec.vf)
            out.append(item)
        if relay_id is not None and not out:
            raise RpcRequestError("relay %d does not exist" % relay_id)
        return out

    @_refusals
    def plug(self, ctxt: Any, port_id: str, vf: str, socket: str,
             vhost_client: bool = False, mac: str | None = None,
             instance_uuid: str | None = None) -> dict[str, Any]:
        """Register ``socket`` for Neutron port ``port_id`` with VF ``vf``
        (a PCI address), as the os-vif plugin does."""
        if not isinstance(vhost_client, bool):
            raise RpcRequestError("vhost_client %r is not true or false"
                                  % (vhost_client,))
        for name, value in (("port_id", port_id), ("vf", vf),
                            ("socket", socket), ("mac", mac),
                            ("instance_uuid", instance_uuid)):
            if value is not None and not isinstance(value, str):
                raise RpcRequestError("%s %r is not a string" % (name, value))
        pci = normalize_pci(vf or "")
        if pci is None:
            raise RpcRequestError("vf %r is not a PCI address "
                                  "(0000:05:08.1)" % (vf,))
        try:
            req = port_control.PortRequest(
                op="ADD_SOCK", pci_addrs=(pci,), vhost_path=socket,
                port_id=port_control.check_uuid(port_id, "port_id"),
                mac=port_control.check_mac(mac),
                instance_uuid=port_control.check_uuid(instance_uuid,
                                                 "instance_uuid"),
                vhost_client=vhost_client, conditional=True)
        except port_control.BadRequest as exc:
            raise RpcRequestError(str(exc)) from None
        self._apply(req)
        spec = self._manager.submit(
            manager.Query(None, port_id=req.port_id)).result(self._timeout)
        return relay_dict(spec, self._states().get(spec.relay_id))

    @_refusals
    def unplug(self, ctxt: Any, port_id: str) -> dict[str, Any]:
        """Withdraw the registration of Neutron port ``port_id``."""
        if not isinstance(port_id, str):
            raise RpcRequestError("port_id %r is not a string" % (port_id,))
        try:
            port = port_control.check_uuid(port_id, "port_id")
        except port_control.BadRequest as exc:
            raise RpcRequestError(str(exc)) from None
        self._apply(port_control.PortRequest(op="REMOVE_SOCK", port_id=port,
                                             conditional=True))
        return {"port_id": port}

    def _apply(self, req: port_control.PortRequest) -> None:
        done: concurrent.futures.Future = concurrent.futures.Future()
        self._control.submit(
            req, lambda code, message, query: done.set_result(
                (code, message)))
        try:
            code, message = done.result(self._timeout)
        except concurrent.futures.TimeoutError:
            raise RpcRequestError("%s (port %s): no result within %g s" % (
                req.op, req.port_id, self._timeout)) from None
        if code:
            raise RpcRequestError(message)


class AgentClient:
    """Calls a host's agent over the bus (``vio4wd-ctl --host``)."""

    def __init__(self, transport: Any, host: str,
                 timeout: float = 30.0, version: str = c.RPC_API_VERSION
                 ) -> None:
        target = oslo_messaging.Target(topic=c.AGENT_TOPIC, server=host,
                                       version=version)
        self._client = oslo_messaging.get_rpc_client(
            transport, target, timeout=timeout, retry=1)

    def call(self, method: str, **kwargs: Any) -> Any:
        return self._client.call(admin_context(), method, **kwargs)


class NeutronClient:
    """What an L2 agent calls on neutron-server."""

    def __init__(self, transport: Any, host: str, timeout: float) -> None:
        self.host = host
        self.agent_id = "vio4wd-%s" % host
        # retry=1: a dead broker fails the call now; the caller's loop
        # tries again, so the bus never holds anything else up.
        self._reports = oslo_messaging.get_rpc_client(
            transport, oslo_messaging.Target(exchange=c.NEUTRON_EXCHANGE,
                                             topic=c.REPORTS_TOPIC,
                                             version="1.0"),
            timeout=timeout, retry=1)
        self._plugin = oslo_messaging.get_rpc_client(
            transport, oslo_messaging.Target(exchange=c.NEUTRON_EXCHANGE,
                                             topic=c.PLUGIN_TOPIC,
                                             version="1.5"),
            timeout=timeout, retry=1)

    def report_state(self, state: dict[str, Any]) -> str | None:
        """Neutron's answer: 'new', 'alive' or 'revived' (None: a report
        it dropped as older than its own start)."""
        state = dict(state, uuid=str(uuid.uuid4()))
        now = datetime.datetime.now(datetime.timezone.utc).replace(
            tzinfo=None)
        return self._reports.call(admin_context(), "report_state",
                                  agent_state={"agent_state": state},
                                  time=now.strftime(ISO8601))

    def update_device_list(self, up: list[str], down: list[str]
                           ) -> tuple[list[str], list[str]]:
        """(ports acknowledged up, ports acknowledged down)."""
        ret = self._plugin.call(admin_context(), "update_device_list",
                                devices_up=up, devices_down=down,
                                agent_id=self.agent_id, host=self.host)
        failed_up = set(ret.get("failed_devices_up") or ())
        failed_down = set(ret.get("failed_devices_down") or ())
        return ([p for p in up if p not in failed_up],
                [p for p in down if p not in failed_down])

