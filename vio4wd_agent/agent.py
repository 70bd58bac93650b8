# SPDX-License-Identifier: Apache-2.0
"""The agent: data plane, manager and relay sources wired together."""
from __future__ import annotations

import logging

from vio4wd_agent import exception
from vio4wd_agent.conf.settings import Settings
from vio4wd_agent.manager import RelayManager
from vio4wd_agent.relay.engine import RelayEngine

LOG = logging.getLogger(__name__)


class Agent:
    def __init__(self, settings: Settings,
                 engine: RelayEngine | None = None) -> None:
        self.settings = settings
        self.engine = engine or RelayEngine()
        self.manager = RelayManager(self.engine, settings.sockets,
                                    settings.pins)

    def start(self) -> None:
        s = self.settings
        if s.memory.hugepage_dir is None:
            LOG.warning("data plane without hugepages (--no-huge -m %d): %s; "
                        "real PCI VFs need an IOMMU in this mode",
                        s.memory.memory_mb, s.memory.reason)
        else:
            LOG.info("data plane on hugepages at %s (%s)",
                     s.memory.hugepage_dir, s.memory.reason)
        s.sockets.ensure_directory()
        self.engine.start(s.eal_args)
        self.manager.start()
        self.add_static_relays()

    def add_static_relays(self) -> int:
        """Add the configured static VFs; a failing one does not stop the
        others.  Returns how many failed."""
        failed = 0
        futures = [(spec, self.manager.submit_add(spec, "static"))
                   for spec in self.settings.static_relays]
        for spec, future in futures:
            try:
                future.result()
            except exception.Vio4wdException as exc:
                failed += 1
                LOG.error("static relay %d (VF %s) not added: %s",
                          spec.relay_id, spec.vf, exc)
        return failed

    def stop(self) -> None:
        self.manager.stop()
        self.engine.shutdown()
        LOG.info("data plane stopped")
