# SPDX-License-Identifier: Apache-2.0
"""oslo.config option lists by group, registered on demand."""
from __future__ import annotations

from typing import Sequence

from oslo_config import cfg

from vio4wd_agent.conf import (agent, control, dataplane, neutron, relay,
                               scheduler, vhost, watchers)

_GROUPS: list[tuple[cfg.OptGroup, Sequence[cfg.Opt]]] = [
    (agent.GROUP, agent.OPTS), (dataplane.GROUP, dataplane.OPTS),
    (vhost.GROUP, vhost.OPTS), (relay.GROUP, relay.OPTS),
    (control.GROUP, control.OPTS),
    (control.METRICS_GROUP, control.METRICS_OPTS),
    (watchers.OVSDB_GROUP, watchers.OVSDB_OPTS),
    (watchers.LIBVIRT_GROUP, watchers.LIBVIRT_OPTS),
    (scheduler.GROUP, scheduler.OPTS), (neutron.GROUP, neutron.OPTS)]


def register_opts(conf: cfg.ConfigOpts) -> None:
    from vio4wd_agent.neutron import register_messaging_opts
    conf.register_opts(neutron.DEFAULT_OPTS)
    # oslo.messaging's (transport_url and its groups): the bus to Neutron
    register_messaging_opts(conf)
    for group, opts in _GROUPS:
        # A fresh group per ConfigOpts: oslo keeps overrides in the group
        # object, and a shared one would leak them between instances.
        fresh = cfg.OptGroup(group.name, title=group.title)
        conf.register_group(fresh)
        conf.register_opts(opts, group=fresh)


def list_opts() -> list[tuple[cfg.OptGroup, list[cfg.Opt]]]:
    return [(cfg.OptGroup("DEFAULT"), list(neutron.DEFAULT_OPTS))] + \
        [(group, list(opts)) for group, opts in _GROUPS]
