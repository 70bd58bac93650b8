# SPDX-License-Identifier: Apache-2.0
"""Entry point for oslo-config-generator (namespace ``vio4wd``)."""
from __future__ import annotations

from oslo_config import cfg

from vio4wd_agent import conf


def list_opts() -> list[tuple[cfg.OptGroup, list[cfg.Opt]]]:
    return conf.list_opts()
