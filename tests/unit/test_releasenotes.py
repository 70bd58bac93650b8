# SPDX-License-Identifier: Apache-2.0
"""The release notes are valid reno notes (`reno lint`)."""
from __future__ import annotations

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))


def test_reno_lint():
    reno = os.path.join(os.path.dirname(sys.executable), "reno")
    out = subprocess.run([reno, "lint"], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
