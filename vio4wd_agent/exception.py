# SPDX-License-Identifier: Apache-2.0
"""Exceptions of the agent: one base, messages built from ``msg_fmt``."""
from __future__ import annotations

from typing import Any


class Vio4wdException(Exception):
    """Base exception; subclasses set ``msg_fmt`` and are built from kwargs."""

    msg_fmt = "an unknown error occurred"

    def __init__(self, message: str | None = None, **kwargs: Any) -> None:
        self.kwargs = kwargs
        if message is None:
            try:
                message = self.msg_fmt % kwargs
            except (KeyError, TypeError):
                message = "%s (%r)" % (self.msg_fmt, kwargs)
        super().__init__(message)


class ConfigError(Vio4wdException):
    """A configuration value is wrong; ``name`` says where it came from.

    The value is quoted with repr() (control characters escaped) and cut
    to its first 200 characters: an error about a huge value must not
    flood the log."""

    msg_fmt = "%(name)s=%(value)s: %(reason)s"

    def __init__(self, message: str | None = None, **kwargs: Any) -> None:
        if message is None and "value" in kwargs:
            text = repr(kwargs["value"])
            if len(text) > 200:
                text = "%s... (%d characters)" % (text[:200], len(text))
            kwargs = dict(kwargs, value=text)
        super().__init__(message, **kwargs)


class EngineError(Vio4wdException):
    """The data plane refused or failed a request.

    ``errno`` is the C return code (positive), the message is the C side's
    description of what failed.
    """

    msg_fmt = "data plane error %(errno)d: %(detail)s"

    def __init__(self, errno: int, detail: str) -> None:
        self.errno = errno
        super().__init__(detail or None, errno=errno, detail=detail)


class RelayExists(EngineError):
    pass


class NotFound(EngineError):
    pass


class ResourceBusy(EngineError):
    pass


class InvalidArgument(EngineError):
    pass


class OutOfResources(EngineError):
    pass


class DeviceError(EngineError):
    pass


class EngineNotRunning(EngineError):
    pass


class Timeout(EngineError):
    """A request got no answer in time (see service.result)."""
