# SPDX-License-Identifier: Apache-2.0
"""Options of the agent process itself."""
from __future__ import annotations

from oslo_config import cfg

GROUP = cfg.OptGroup("agent", title="Agent process")

OPTS = [
    cfg.StrOpt("pid_file", default="/run/vio4wd/vio4wd.pid",
               help="Where the agent writes its PID; the directory is "
                    "created. Empty disables the PID file."),
    cfg.StrOpt("state_dir", default="/var/lib/vio4wd",
               help="Directory of the journal: relays added and pins made "
                    "at run time, restored when the agent starts again. "
                    "Empty: nothing is kept."),
]
