# SPDX-License-Identifier: Apache-2.0
"""The agent on Neutron's bus (oslo.messaging), beside everything else.

Four parts, each on its own thread so that none waits for another and none
ever holds up a relay (the manager only queues events for them):

- state reports to neutron-server every ``report_interval``, as its L2
  agents send them; an answer of "revived" (Neutron took the agent for
  dead) or "new" (Neutron lost its record) resyncs the port status;
- port status: ports of relays that forward go up, the others down,
  through the q-plugin RPC Neutron's L2 agents use, retried until
  acknowledged, everything again on start and on a resync;
- notifications (publisher ``vio4wd.<host>``): relay create/delete/error,
  VM connect/disconnect;
- the agent's own RPC server (topic ``vio4wd-agent``, server = host).

A dead broker delays all of that and costs nothing else.
"""
from __future__ import annotations

import concurrent.futures
import importlib.metadata
import logging
import queue
import threading
import time
from typing import Any, Callable

import oslo_messaging
from oslo_config import cfg

from vio4wd_agent import manager, service
from vio4wd_agent.conf.settings import NeutronSettings, Settings
from vio4wd_agent.control.port_control import PortControl
from vio4wd_agent.neutron import constants as c
from vio4wd_agent.neutron import ports, rpc
from vio4wd_agent.relay.engine import RelayEngine
from vio4wd_agent.relay.model import RelaySpec

LOG = logging.getLogger(__name__)

# How long a failing bus call waits before the next try, at most.
MAX_BACKOFF = 30.0
NOTIFY_QUEUE = 1000
# How long stopping waits for calls in flight (a dead broker's retries).
STOP_TIMEOUT = 5.0


def version() -> str:
    try:
        return importlib.metadata.version("vio4wd")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


class _Loop(service.Service):
    """A thread that runs ``step`` until stopped; ``step`` returns the
    seconds to wait before the next round (woken early by ``kick``), or
    None when the loop's work is done.  An exception in a step is logged
    and the loop goes on."""

    def __init__(self, name: str, step: Callable[[], float | None]) -> None:
        super().__init__()
        self.thread_name = name
        self._step = step
        self._kick = threading.Event()

    def wake(self) -> None:
        """The next round now (and, stopping, no more wait)."""
        self._kick.set()

    kick = wake

    def join(self, deadline: float) -> None:
        """Wait for the thread until ``deadline`` (time.monotonic()); a
        log line when it is still there (a bus call waiting for the
        broker)."""
        self.stop(max(0.0, deadline - time.monotonic()))

    def run(self) -> None:
        while not self.stopping:
            try:
                wait = self._step()
            except Exception:
                LOG.exception("%s: unexpected error; going on",
                              self.thread_name)
                wait = 5.0
            if wait is None:
                return
            self._kick.wait(wait)
            self._kick.clear()


class _InFlight:
    """A bus call on a thread of its own, waited for with a deadline.

    oslo.messaging retries a connection to a dead broker without end
    inside a call; run that way, a loop still gets to say that no answer
    came, and starts no second call while the first waits.  ``what``
    names the call in the log; ``backoff`` paces tries after failures."""

    def __init__(self, what: str, backoff: "_Backoff") -> None:
        self.what = what
        self.backoff = backoff
        self.waiting_logged = False
        self._future: concurrent.futures.Future | None = None
        self._args: tuple = ()
        self.since = 0.0

    def call(self, fn: Callable[..., Any], args: tuple,
             timeout: float) -> tuple[tuple, Any]:
        """(args, result) of the call made with ``args``, or of an earlier
        one still in flight; concurrent.futures.TimeoutError when it has
        not finished within ``timeout``; the call's own exception."""
        if self._future is None:
            future: concurrent.futures.Future = concurrent.futures.Future()

            def run() -> None:
                try:
                    future.set_result(fn(*args))
                except BaseException as exc:
                    future.set_exception(exc)
            self._future, self._args = future, args
            self.since = time.monotonic()
            threading.Thread(target=run, name="neutron-" + self.what,
                             daemon=True).start()
        future, args = self._future, self._args
        try:
            result = future.result(timeout)
        except concurrent.futures.TimeoutError:
            raise
        except Exception:
            self._future = None
            raise
        self._future = None
        return args, result

    def attempt(self, fn: Callable[..., Any], args: tuple,
                timeout: float) -> tuple[tuple, Any] | float:
        """call(), with what the log owes each outcome: (args, result), or
        the seconds to wait before trying again."""
        try:
            return self.call(fn, args, timeout)
        except concurrent.futures.TimeoutError:
            waiting = True          # logged below, outside the handler
        except Exception as exc:
            wait = self.backoff.failed()
            if self.backoff.failures == 1:
                LOG.warning("%s: neutron-server failed it: %s; trying again "
                            "(every %g s at most)", self.what, exc,
                            MAX_BACKOFF)
            return wait
        if waiting and not self.waiting_logged:
            self.waiting_logged = True
            LOG.warning("%s: no answer from neutron-server for %.0f s (is "
                        "the message broker reachable?); still waiting",
                        self.what, time.monotonic() - self.since)
        return 5.0

    def succeeded(self) -> None:
        if self.backoff.ok() or self.waiting_logged:
            LOG.info("%s: neutron-server answers again", self.what)
        self.waiting_logged = False


class _Backoff:
    def __init__(self, first: float) -> None:
        self.first = first
        self.failures = 0

    def failed(self) -> float:
        self.failures += 1
        return min(MAX_BACKOFF, self.first * 2 ** min(self.failures - 1, 10))

    def ok(self) -> bool:
        """True when this success ends a run of failures."""
        was = self.failures > 0
        self.failures = 0
        return was


class NeutronPresence:
    name = "neutron"

    def __init__(self, conf: cfg.ConfigOpts, settings: Settings,
                 mgr: manager.RelayManager, engine: RelayEngine,
                 control: PortControl) -> None:
        assert settings.neutron is not None
        self.conf = conf
        self.settings = settings
        self.n: NeutronSettings = settings.neutron
        self.manager = mgr
        self.engine = engine
        self.control = control
        self.port_status = ports.PortStatus()
        self._vm_watch = ports.VmWatch()
        self._events: queue.Queue[tuple[str, str, dict[str, Any]]] = \
            queue.Queue(NOTIFY_QUEUE)
        self._dropped = 0
        self._first_report = True
        self._serve_backoff = _Backoff(1.0)
        self._report_call = _InFlight(
            "state report", _Backoff(self.n.report_interval / 4))
        self._status_call = _InFlight(
            "port status", _Backoff(self.n.status_interval))
        self._transport: Any = None
        self._notify_transport: Any = None
        self._neutron: rpc.NeutronClient | None = None
        self._notifier: Any = None
        self._server: Any = None
        self._server_started = False
        self._ports_loop = _Loop("neutron-ports", self._status)
        self._notify_loop = _Loop("neutron-notify", self._notify)
        self._loops: list[_Loop] = []
        self.last_status: str | None = None     # Neutron's last answer

    # ---- lifecycle ------------------------------------------------------
    def start(self) -> None:
        conf, n = self.conf, self.n
        # Notifications go out unless the operator says otherwise
        # ([oslo_messaging_notifications] driver = noop).
        conf.set_default("driver", ["messagingv2"],
                         group="oslo_messaging_notifications")
        self._transport = oslo_messaging.get_rpc_transport(conf)
        self._notify_transport = oslo_messaging.get_notification_transport(
            conf)
        self._neutron = rpc.NeutronClient(self._transport, n.host,
                                          n.rpc_timeout)
        # Sent one at a time from the queue; oslo.messaging gives up on
        # one it cannot deliver (the broker down) and logs it with its
        # payload.
        self._notifier = oslo_messaging.Notifier(
            self._notify_transport, publisher_id="vio4wd.%s" % n.host)
        self.manager.add_listener(self._relay_event)
        logging.getLogger("oslo_messaging.rpc.server").addFilter(
            rpc.QuietRefusals())
        self._server = oslo_messaging.get_rpc_server(
            self._transport,
            oslo_messaging.Target(topic=c.AGENT_TOPIC, server=n.host),
            [rpc.AgentEndpoint(self.manager, self.engine, self.control,
                               timeout=n.rpc_timeout)],
            executor="threading")
        self._loops = [_Loop("neutron-state", self._report),
                       self._ports_loop, self._notify_loop,
                       _Loop("neutron-rpc", self._serve)]
        for loop in self._loops:
            loop.start()
        LOG.info("on Neutron's bus as host %s: state reports every %g s, "
                 "RPC topic %s, notifications as vio4wd.%s", n.host,
                 n.report_interval, c.AGENT_TOPIC, n.host)

    def stop(self) -> None:
        # All at once: each may be waiting for a dead broker.
        for loop in self._loops:
            loop.signal_stop()
        deadline = time.monotonic() + STOP_TIMEOUT
        for loop in self._loops:
            loop.join(deadline)
        self._loops = []
        if self._server is not None and self._server_started:
            try:
                self._server.stop()
                self._server.wait()
            except Exception:   # never started (broker down), or gone
                LOG.debug("RPC server stop", exc_info=True)
            self._server = None
        # A transport still connecting to a dead broker may not let go:
        # cleaned up on a thread of its own, not waited for long.
        transports = [t for t in (self._transport, self._notify_transport)
                      if t is not None]
        self._transport = self._notify_transport = None

        def cleanup() -> None:
            for transport in transports:
                try:
                    transport.cleanup()
                except Exception:
                    LOG.debug("transport cleanup", exc_info=True)
        thread = threading.Thread(target=cleanup, name="neutron-cleanup",
                                  daemon=True)
        thread.start()
        thread.join(STOP_TIMEOUT)
        if thread.is_alive():
            LOG.warning("the bus connection did not close in %g s; left "
                        "behind", STOP_TIMEOUT)

    # ---- the agent's RPC server -----------------------------------------
    def _serve(self) -> float | None:
        """Start the RPC server (it needs the broker): done once it is."""
        try:
            self._server.start()
        except Exception as exc:
            wait = self._serve_backoff.failed()
            LOG.warning("RPC server (topic %s) not started yet: %s; again "
                        "in %g s", c.AGENT_TOPIC, exc, wait)
            return wait
        self._server_started = True
        LOG.info("serving RPC on topic %s, server %s", c.AGENT_TOPIC,
                 self.n.host)
        return None

    # ---- state reports --------------------------------------------------
    def configurations(self) -> dict[str, Any]:
        s = self.settings
        specs = self.manager.specs()
        vfs = sorted({spec.vf_label or spec.vf for spec in specs.values()
                      if spec.vf})
        return {
            c.CONF_SOCKET_DIR: s.sockets.directory,
            "extra_socket_dirs": list(s.sockets.extra),
            c.CONF_VHOSTUSER_MODE: self.n.vhostuser_mode,
            "vhostuser_modes": ["client", "server"],
            c.CONF_PHYSNETS: list(self.n.physical_networks),
            "worker_cpus": list(s.worker_cpus),
            "relays": len(specs),
            "max_relays": self.engine.limits().max_relays,
            "vfs_in_use": vfs,
            "version": version(),
        }

    def state(self) -> dict[str, Any]:
        out: dict[str, Any] = {"binary": c.BINARY, "host": self.n.host,
               "topic": c.AGENT_TOPIC, "agent_type": c.AGENT_TYPE,
               "configurations": self.configurations()}
        if self._first_report:
            out["start_flag"] = True
        return out

    def _report(self) -> float:
        assert self._neutron is not None
        done = self._report_call.attempt(self._neutron.report_state,
                                         (self.state(),), self.n.rpc_timeout)
        if not isinstance(done, tuple):
            return min(done, self.n.report_interval)
        self._report_call.succeeded()
        _, status = done
        first, self._first_report = self._first_report, False
        self.last_status = status
        # "revived": Neutron took the agent for dead; "new" after the
        # first report: Neutron lost its record.  Either way it may have
        # missed port changes: tell it everything again.  (On start the
        # port status loop sends everything anyway.)
        if status == "revived" or (status == "new" and not first):
            LOG.info("neutron-server answered %r: resyncing port status",
                     status)
            self.port_status.resync()
            self._ports_loop.kick()
        return self.n.report_interval

    # ---- port status and VM events --------------------------------------
    def _status(self) -> float:
        assert self._neutron is not None
        specs = self.manager.specs()
        states = self.engine.relays()
        for event in self._vm_watch.events(specs, states):
            self._queue_event(c.EVENT_VM_CONNECT if event.connected
                              else c.EVENT_VM_DISCONNECT, "info", event.spec)
        up, down = self.port_status.pending(ports.desired(specs, states))
        if not up and not down:
            return self.n.status_interval
        done = self._status_call.attempt(self._neutron.update_device_list,
                                         (up, down), self.n.rpc_timeout)
        if not isinstance(done, tuple):
            return done
        self._status_call.succeeded()
        (up, down), (done_up, done_down) = done
        self.port_status.acknowledged(done_up, done_down)
        for port in up:
            if port in done_up:
                LOG.info("port %s: reported up to Neutron", port)
        for port in down:
            if port in done_down:
                LOG.info("port %s: reported down to Neutron", port)
        if len(done_up) < len(up) or len(done_down) < len(down):
            LOG.warning("neutron-server failed ports %s; trying again",
                        ", ".join(sorted((set(up) - set(done_up)) |
                                         (set(down) - set(done_down)))))
            return self._status_call.backoff.failed()
        return self.n.status_interval

    # ---- notifications --------------------------------------------------
    def _relay_event(self, event: str, spec: RelaySpec, reason: str) -> None:
        """The manager's listener: queue only."""
        kind = {manager.RELAY_CREATED: c.EVENT_RELAY_CREATE,
                manager.RELAY_DELETED: c.EVENT_RELAY_DELETE,
                manager.RELAY_FAILED: c.EVENT_RELAY_ERROR}.get(event)
        if kind is not None:
            self._queue_event(kind, "error" if event == manager.RELAY_FAILED
                              else "info", spec, reason)
        if event == manager.RELAY_DELETED:
            self._ports_loop.kick()

    def _queue_event(self, event_type: str, priority: str, spec: RelaySpec,
                     reason: str = "") -> None:
        payload = {"host": self.n.host, "relay_id": spec.relay_id,
                   "port_id": spec.port_id or None,
                   "vf": spec.vf_label or spec.vf or None,
                   "socket": spec.vhost_path, "mac": spec.mac or None,
                   "instance_uuid": spec.instance_uuid or None,
                   "vhost_client": spec.client}
        if reason:
            payload["reason"] = reason
        try:
            self._events.put_nowait((event_type, priority, payload))
        except queue.Full:
            self._dropped += 1
            if self._dropped in (1, 10, 100) or self._dropped % 1000 == 0:
                LOG.warning("notification queue full (the bus is slow or "
                            "down): %d event(s) dropped so far",
                            self._dropped)
            return
        self._notify_loop.kick()

    def _notify(self) -> float:
        """One queued event out.  The notifier never raises: what it cannot
        deliver (the broker down) it logs, with the payload, and drops."""
        try:
            event_type, priority, payload = self._events.get_nowait()
        except queue.Empty:
            return 3600.0
        getattr(self._notifier, priority)(rpc.admin_context(), event_type,
                                          payload)
        return 0.0
