# SPDX-License-Identifier: Apache-2.0
"""vio4wd-demo console entry point."""
from __future__ import annotations

import sys

from vio4wd_agent.demo.main import main

if __name__ == "__main__":
    sys.exit(main())
