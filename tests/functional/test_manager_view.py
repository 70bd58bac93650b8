# SPDX-License-Identifier: Apache-2.0
"""One source of truth: what the data plane changes on its own (its watch
thread takes a bond member out and back, withdraws a socket while the
VF's link is down), it reports; the manager applies it, so its view of a
relay matches the data plane's after each of those actions."""
from __future__ import annotations

import logging
import os

import pytest

from vio4wd_agent.manager import RelayManager
from vio4wd_agent.relay.model import RelaySpec
from vio4wd_agent.vhostuser.sockets import SocketPolicy
from tests.functional import util


@pytest.fixture
def managed(engine, sockdir):
    mgr = RelayManager(engine, SocketPolicy(sockdir, "vf%u.sock", 0, 0,
                                            0o600))
    mgr.start()
    yield mgr
    for relay_id in engine.relay_ids():
        mgr.remove(relay_id, source="test", timeout=60)
    mgr.stop()


def agree(mgr: RelayManager, engine, relay_id: int, **want):
    """The manager's view and the data plane agree on the relay's
    placement, and the data plane shows ``want``."""
    def check() -> bool:
        view, truth = mgr.view(relay_id), engine.relay(relay_id)
        return view is not None and \
            view.placement() == truth.placement() and \
            all(getattr(truth, k) == v for k, v in want.items())
    return check


def test_bond_member_out_and_back(managed, engine, sockdir, test_netns,
                                  caplog):
    ifs = ["v4mv70", "v4mv71"]
    spec = RelaySpec(70, sockdir + "/mv70.sock", vf="net_bonding70",
                     bond_members=tuple("net_tap%d,iface=%s" % (70 + i, n)
                                        for i, n in enumerate(ifs)))
    managed.add(spec, source="test", timeout=60)
    util.wait_for(agree(managed, engine, 70, members_out=0),
                  what="views agree after the add")
    with caplog.at_level(logging.INFO, "vio4wd_agent.manager"):
        test_netns.link_set(ifs[0], "down")
        util.wait_for(agree(managed, engine, 70, members_out=1),
                      what="member 0 out, in both views")
        test_netns.link_set(ifs[0], "up")
        util.wait_for(agree(managed, engine, 70, members_out=0),
                      what="member 0 back, in both views")
        util.wait_for(lambda: "relay 70: data plane: bond member back in"
                      in caplog.text, what="the manager's log line")
    assert "relay 70: data plane: bond member out (link down): member 0" \
        in caplog.text


def test_socket_withdrawn_with_the_vf_link(managed, engine, sockdir,
                                           test_netns):
    spec = RelaySpec(72, sockdir + "/mv72.sock", vf="net_tap72,iface=v4mv72",
                     link_follows_vf=True)
    managed.add(spec, source="test", timeout=60)
    util.wait_for(agree(managed, engine, 72, socket_down=False),
                  what="views agree after the add")
    test_netns.link_set("v4mv72", "down")
    util.wait_for(agree(managed, engine, 72, socket_down=True),
                  what="socket down, in both views")
    assert not os.path.exists(spec.vhost_path)
    test_netns.link_set("v4mv72", "up")
    util.wait_for(agree(managed, engine, 72, socket_down=False),
                  what="socket back, in both views")
    util.wait_for(lambda: os.path.exists(spec.vhost_path),
                  what="the socket file again")
