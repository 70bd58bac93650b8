# SPDX-License-Identifier: Apache-2.0
"""A VF's representor netdev on the integration bridge, for OVN.

On a switchdev NIC each VF has a representor netdev on the host; OVN's
controller claims the OVS Interface whose ``external_ids:iface-id`` is
the Neutron port, and Neutron then tells Nova the port is plugged.  The
representor is found from the VF's PCI address through sysfs (os-vif's
own helpers), else by the name Nova gave it (the port profile's
``representor_name``).
"""
from __future__ import annotations

import concurrent.futures
import logging
import socket
from typing import Any, Callable, TypeVar

LOG = logging.getLogger(__name__)
T = TypeVar("T")


class RepresentorError(Exception):
    pass


def find_netdev(vf_pci: str, name: str) -> str:
    """The representor netdev of VF ``vf_pci``, or the netdev ``name``."""
    tried = []
    try:
        from vif_plug_ovs import linux_net
        pf = linux_net.get_ifname_by_pci_address(vf_pci, pf_interface=True)
        vf_num = linux_net.get_vf_num_by_pci_address(vf_pci)
        return linux_net.get_representor_port(pf, vf_num)
    except Exception as exc:     # no switchdev representor: by its name
        tried.append("no switchdev representor of VF %s (%s)" % (vf_pci,
                                                                 exc))
    if name:
        try:
            socket.if_nametoindex(name)
            return name
        except OSError:
            tried.append("no netdev named %s" % name)
    raise RepresentorError("no representor netdev for VF %s: %s"
                           % (vf_pci, "; ".join(tried)))


class Representors:
    """Representor ports on OVS bridges, through ovsdbapp."""

    def __init__(self, connection: str, timeout: float,
                 wait_for_vswitchd: bool) -> None:
        self.connection = connection
        self.timeout = timeout
        self.wait = wait_for_vswitchd
        self._api: Any = None
        self._pool = concurrent.futures.ThreadPoolExecutor(
            1, thread_name_prefix="vio4wd-ovsdb")

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        """``fn`` within the timeout, whatever OVSDB does (connecting to a
        server that never answers included)."""
        future = self._pool.submit(fn)
        try:
            return future.result(self.timeout + 1)
        except concurrent.futures.TimeoutError:
            raise RepresentorError("OVSDB at %s: %s did not finish within "
                                   "%g s" % (self.connection, what,
                                             self.timeout)) from None
        except RepresentorError:
            raise
        except Exception as exc:
            raise RepresentorError("OVSDB at %s: %s failed: %s" % (
                self.connection, what, exc)) from None

    def _ovs(self) -> Any:
        if self._api is None:
            from ovsdbapp.backend.ovs_idl import connection
            from ovsdbapp.schema.open_vswitch import impl_idl
            wait = self.wait

            class NoWait(impl_idl.OvsVsctlTransaction):  # type: ignore[misc]
                def do_post_commit(self, txn: Any) -> None:
                    pass            # no ovs-vswitchd to wait for

            class Api(impl_idl.OvsdbIdl):   # type: ignore[misc]
                def create_transaction(self, check_error: bool = False,
                                       log_errors: bool = True,
                                       **kwargs: Any) -> Any:
                    if wait:
                        return super().create_transaction(
                            check_error, log_errors, **kwargs)
                    return NoWait(self, self.ovsdb_connection,
                                  check_error=check_error,
                                  log_errors=log_errors)

            idl = connection.OvsdbIdl.from_server(self.connection,
                                                  "Open_vSwitch")
            self._api = Api(connection.Connection(idl, self.timeout))
        return self._api

    def plug(self, bridge: str, netdev: str,
             external_ids: dict[str, str]) -> None:
        def run() -> None:
            api = self._ovs()
            if not api.br_exists(bridge).execute(check_error=True):
                raise RepresentorError("bridge %s does not exist" % bridge)
            with api.transaction(check_error=True) as txn:
                txn.add(api.add_port(bridge, netdev, may_exist=True))
                txn.add(api.db_set("Interface", netdev,
                                   ("external_ids", external_ids)))
        self._call("adding %s to %s" % (netdev, bridge), run)

    def unplug(self, iface_id: str) -> list[str]:
        """Remove every port whose Interface is Neutron port
        ``iface_id``'s; returns their names."""
        def run() -> list[str]:
            api = self._ovs()
            rows = api.db_find("Interface",
                               ("external_ids", "=", {"iface-id": iface_id}),
                               columns=["name"]).execute(check_error=True)
            names = [r["name"] for r in rows]
            if names:
                with api.transaction(check_error=True) as txn:
                    for name in names:
                        txn.add(api.del_port(name, if_exists=True))
            return names
        return self._call("removing port %s" % iface_id, run)
