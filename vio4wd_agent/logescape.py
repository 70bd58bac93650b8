# SPDX-License-Identifier: Apache-2.0
"""Log lines cannot be forged: control characters in a record's message
(a socket path, a domain name, an interface name -- anything an outside
party chose) are written escaped, so one record is always one line.

Applied to every handler of the root logger, so it holds for every module
whatever it logs; a traceback the formatter appends stays as it is.
"""
from __future__ import annotations

import logging
import re

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def escape(text: str) -> str:
    """``text`` with each control character as \\xNN (\\n as \\x0a)."""
    return _CONTROL.sub(lambda m: "\\x%02x" % ord(m.group()), text)


class EscapeControlCharacters(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:       # a bad format: logging reports it itself
            return True
        escaped = escape(message)
        if escaped != message or record.args:
            record.msg, record.args = escaped, None
        return True


def install(logger: logging.Logger | None = None) -> None:
    """Add the filter to every handler of ``logger`` (default: root)."""
    target = logger or logging.getLogger()
    for handler in target.handlers:
        if not any(isinstance(f, EscapeControlCharacters)
                   for f in handler.filters):
            handler.addFilter(EscapeControlCharacters())
