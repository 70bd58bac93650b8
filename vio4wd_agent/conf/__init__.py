# SPDX-License-Identifier: Apache-2.0
"""oslo.config option lists by group, registered on demand."""
from __future__ import annotations

from oslo_config import cfg

from vio4wd_agent.conf import agent, dataplane, relay, vhost

_MODULES = (agent, dataplane, vhost, relay)


def register_opts(conf: cfg.ConfigOpts) -> None:
    for mod in _MODULES:
        # A fresh group per ConfigOpts: oslo keeps overrides in the group
        # object, and a shared one would leak them between instances.
        group = cfg.OptGroup(mod.GROUP.name, title=mod.GROUP.title)
        conf.register_group(group)
        conf.register_opts(mod.OPTS, group=group)


def list_opts() -> list[tuple[cfg.OptGroup, list[cfg.Opt]]]:
    return [(mod.GROUP, list(mod.OPTS)) for mod in _MODULES]
