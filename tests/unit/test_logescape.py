# SPDX-License-Identifier: Apache-2.0
from __future__ import annotations

import io
import logging

from vio4wd_agent import logescape


def test_one_record_is_one_line():
    out = io.StringIO()
    log = logging.getLogger("v4w-escape-test")
    log.propagate = False
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    log.addHandler(handler)
    logescape.install(log)
    path = "/run/x.sock\n2026-01-01 00:00:00 CRITICAL forged\x00\x1b[31m"
    log.warning("refused %s", path)
    log.warning("plain %d%%", 5)
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("failed on %s", "a\nb")
    text = out.getvalue()
    assert "refused /run/x.sock\\x0a2026-01-01 00:00:00 CRITICAL " \
        "forged\\x00\\x1b[31m\n" in text
    assert "\nWARNING plain 5%\n" in text
    assert "ERROR failed on a\\x0ab\nTraceback" in text     # traceback kept
    assert not any(line.startswith("2026-01-01") for line in
                   text.splitlines())
