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
from dataclasses import dataclass

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


@dataclass(frozen=True)
class Settings:
    """The function's deployment settings, read once per invocation (template parameters)."""

    region: str | None
    log_level: str
    sealing_key_arn: str | None
    state_machine_arn: str | None
    retirement_state_machine_arn: str | None
    password_length: str | None
    exclude_characters: str | None
    poll_initial_seconds: float
    poll_max_seconds: float
    poll_growth: float
    retire_after_seconds: int | None
    postgres_scram_only: bool
    alert_topic_arn: str | None
    router_log_group: str | None

    @classmethod
    def load(cls) -> Settings:
        return cls(
            region=setting("AWS_REGION") or setting("AWS_DEFAULT_REGION"),
            log_level=str(setting("POWERTOOLS_LOG_LEVEL") or "INFO").upper(),
            sealing_key_arn=setting("SEALING_KEY_ARN") or None,
            state_machine_arn=setting("STATE_MACHINE_ARN") or None,
            retirement_state_machine_arn=setting("RETIREMENT_STATE_MACHINE_ARN") or None,
            password_length=setting("PASSWORD_LENGTH"),
            exclude_characters=setting("EXCLUDE_CHARACTERS"),
            poll_initial_seconds=float_setting("POLL_INITIAL_SECONDS", 0.1),
            poll_max_seconds=float_setting("POLL_MAX_SECONDS", 2.0),
            poll_growth=float_setting("POLL_GROWTH", 0.25),
            retire_after_seconds=int_setting("RETIRE_AFTER_SECONDS", 0) or None,
            postgres_scram_only=(setting("POSTGRES_SCRAM_ONLY") or "").lower() == "true",
            alert_topic_arn=setting("ALERT_TOPIC_ARN") or None,
            router_log_group=setting("ROUTER_LOG_GROUP") or None,
        )

    def required(self, name: str) -> str:
        value = getattr(self, name)
        if not value:
            raise InvalidConfigurationError(f"environment setting {name.upper()!r} is not set")
        return str(value)
