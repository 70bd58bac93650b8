# SPDX-License-Identifier: Apache-2.0
"""What Neutron should hear about the relays (pure logic, no bus).

- Port status: a relay registered for a Neutron port is *up* once it
  forwards as far as the host can tell: its VF attached and its VM
  connected on the socket.  That is QEMU on the vhost-user socket, not
  the guest driver having made the device ready: Nova starts the guest
  paused and resumes it only after Neutron's ``network-vif-plugged``,
  which this very status triggers.  *Down* otherwise, and once more when
  the relay is gone.  ``PortStatus`` remembers what Neutron acknowledged and hands
  out only the differences, until they are acknowledged in turn.
- VM connect/disconnect events, from successive looks at the relays.
"""
from __future__ import annotations

import dataclasses
import threading
from typing import Iterable

from vio4wd_agent.relay.model import RelaySpec, RelayState


def is_up(state: RelayState | None) -> bool:
    return bool(state is not None and state.vf_ready and
                (state.vm_connected or state.vm_on_socket))


def desired(specs: dict[int, RelaySpec],
            states: Iterable[RelayState]) -> dict[str, bool]:
    """Port id -> up, for every relay that serves a port."""
    by_id = {s.relay_id: s for s in states}
    return {spec.port_id: is_up(by_id.get(relay_id))
            for relay_id, spec in specs.items() if spec.port_id}


class PortStatus:
    """What Neutron was told of each port, and what it must be told next.

    ``told`` maps a port to the status Neutron acknowledged (True up,
    False down) or None (unknown: not yet told, or a resync asked for it
    to be told again).  Thread-safe: the status loop uses it, and a state
    report that finds the agent revived asks for a resync."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._told: dict[str, bool | None] = {}

    def pending(self, want: dict[str, bool]) -> tuple[list[str], list[str]]:
        """(ports to report up, ports to report down)."""
        with self._lock:
            up = sorted(p for p, s in want.items()
                        if s and self._told.get(p) is not True)
            down = sorted(p for p, s in want.items()
                          if not s and self._told.get(p) is not False)
            # A relay gone: its port is down (once, then forgotten).
            for port, told in list(self._told.items()):
                if port in want:
                    continue
                if told is False:
                    del self._told[port]
                else:
                    down.append(port)
            return up, sorted(down)

    def acknowledged(self, up: Iterable[str], down: Iterable[str]) -> None:
        with self._lock:
            for port in up:
                self._told[port] = True
            for port in down:
                self._told[port] = False

    def resync(self) -> None:
        """Tell Neutron everything again (it restarted, or took this
        agent for dead)."""
        with self._lock:
            for port in self._told:
                self._told[port] = None

    def told(self) -> dict[str, bool | None]:
        with self._lock:
            return dict(self._told)


@dataclasses.dataclass(frozen=True)
class VmEvent:
    connected: bool         # True: VM connected; False: disconnected
    spec: RelaySpec


class VmWatch:
    """VM connect/disconnect events from successive looks at the relays
    (a reconnect between two looks shows as both)."""

    def __init__(self) -> None:
        self._seen: dict[int, tuple[bool, int]] = {}

    def events(self, specs: dict[int, RelaySpec],
               states: Iterable[RelayState]) -> list[VmEvent]:
        out: list[VmEvent] = []
        seen: dict[int, tuple[bool, int]] = {}
        for state in states:
            spec = specs.get(state.relay_id)
            if spec is None:
                continue
            now = (state.vm_connected, state.vm_connects)
            seen[state.relay_id] = now
            was_connected, connects = self._seen.get(state.relay_id,
                                                     (False, 0))
            if state.vm_connects > connects and was_connected:
                # connected before, and (re)connected since
                out.append(VmEvent(False, spec))
                if state.vm_connected:
                    out.append(VmEvent(True, spec))
            elif state.vm_connected and not was_connected:
                out.append(VmEvent(True, spec))
            elif was_connected and not state.vm_connected:
                out.append(VmEvent(False, spec))
        self._seen = seen
        return out
