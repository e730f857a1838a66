"""Deployment settings, read from the function's environment at call time.

In AWS each Lambda has its own process and environment. The local runtime runs every
function in one process, so it lays each invocation's environment over ``os.environ``
through a context variable instead of mutating the process-wide environment.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar

from rotation_core.exceptions import InvalidConfigurationError

_overlay: ContextVar[Mapping[str, str] | None] = ContextVar("rotation_env_overlay", default=None)


def setting(name: str, default: str | None = None) -> str | None:
    """The value of environment setting ``name`` for the running function."""
    overlay = _overlay.get()
    if overlay is not None and name in overlay:
        return overlay[name]
    return os.environ.get(name, default)


def required_setting(name: str) -> str:
    value = setting(name)
    if not value:
        raise InvalidConfigurationError(f"environment setting '{name}' is not set")
    return value


def int_setting(name: str, default: int) -> int:
    raw = setting(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise InvalidConfigurationError(
            f"environment setting '{name}' must be a whole number"
        ) from None


def float_setting(name: str, default: float) -> float:
    raw = setting(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise InvalidConfigurationError(f"environment setting '{name}' must be a number") from None


@contextmanager
def environment(values: Mapping[str, str]) -> Iterator[None]:
    """Run the body with ``values`` laid over ``os.environ`` (this thread/context only)."""
    token = _overlay.set(dict(values))
    try:
        yield
    finally:
        _overlay.reset(token)
