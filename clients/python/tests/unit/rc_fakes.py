"""Fakes for the retry loop: a secret store, a clock that sleeps instantly, a server that accepts
some passwords."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from rotation_client import Credentials, SecretUnavailableError
from rotation_client.source import AccessDeniedToStage, SecretVersion


def secret_text(password: str, username: str = "app", **extra: Any) -> str:
    return json.dumps(
        {
            "engine": "postgres",
            "host": "db.internal",
            "port": 5432,
            "username": username,
            "password": password,
            "dbname": "orders",
            **extra,
        }
    )


class FakeClock:
    """``clock()`` and ``sleep()``: sleeping advances the clock and is recorded."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.now += seconds


@dataclass
class FakeSource:
    """Stages as Secrets Manager has them now, and a cache that lags behind."""

    stages: dict[str, str]
    cache: str
    fetches: list[str] = field(default_factory=list)
    catch_ups: int = 0
    deny: set[str] = field(default_factory=set)
    broken: bool = False

    def cached(self, secret_id: str) -> SecretVersion:
        return SecretVersion(self.cache)

    def fetch(self, secret_id: str, stage: str) -> SecretVersion | None:
        self.fetches.append(stage)
        if self.broken:
            raise SecretUnavailableError("Secrets Manager is unreachable (fake)")
        if stage in self.deny:
            raise AccessDeniedToStage(f"not allowed to read {stage} (fake)")
        text = self.stages.get(stage)
        return None if text is None else SecretVersion(text, version_id=f"v-{stage}")

    def catch_up(self, secret_id: str) -> None:
        self.catch_ups += 1


class FakeAuthError(Exception):
    """What a driver raises for a wrong password."""


class FakeNetworkError(Exception):
    """What a driver raises when the server cannot be reached."""


@dataclass
class FakeServer:
    """Accepts the passwords in ``valid``; counts logins."""

    valid: set[str]
    logins: list[str] = field(default_factory=list)
    down: bool = False

    def login(self, creds: Credentials) -> str:
        self.logins.append(creds.password)
        if self.down:
            raise FakeNetworkError("connection refused")
        if creds.password not in self.valid:
            raise FakeAuthError("password authentication failed")
        return f"session as {creds.username}"


def is_fake_auth(exc: BaseException) -> bool:
    return isinstance(exc, FakeAuthError)
