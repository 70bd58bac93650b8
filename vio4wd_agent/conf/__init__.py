# SPDX-License-Identifier: Apache-2.0
"""oslo.config option lists by group, registered on demand."""
from __future__ import annotations

from oslo_config import cfg

from vio4wd_agent.conf import agent, dataplane, relay, vhost

_MODULES = (agent, dataplane, vhost, relay)


def register_opts(conf: cfg.ConfigOpts) -> None:
    for mod in _MODULES:
        conf.register_group(mod.GROUP)
        conf.register_opts(mod.OPTS, group=mod.GROUP)


def list_opts() -> list[tuple[cfg.OptGroup, list[cfg.Opt]]]:
    return [(mod.GROUP, list(mod.OPTS)) for mod in _MODULES]
