# SPDX-License-Identifier: Apache-2.0
"""The package type-checks (house style: mypy clean)."""
from __future__ import annotations

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))


def test_mypy_clean():
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--ignore-missing-imports",
         "--no-error-summary", "vio4wd_agent"],
        cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
