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
    """A configuration value is wrong; ``name`` says where it came from."""

    msg_fmt = "%(name)s=%(value)r: %(reason)s"


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
