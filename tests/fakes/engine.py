"""An in-memory database behind the real DatabaseEngine flow (template method)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rotation_core.adapters.database import DatabaseEngine
from rotation_core.exceptions import (
    AuthenticationFailedError,
    DatabaseUnavailableError,
    PrivilegeError,
    RotationError,
)
from rotation_core.models import DatabaseCredentials


class FakeDriverError(Exception):
    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


@dataclass
class FakeDatabase:
    passwords: dict[str, str] = field(default_factory=dict)
    password_changes: int = 0
    logins: int = 0
    down: bool = False
    #: users that can do nothing their original cannot (the engine's twin check)
    twins: set[str] = field(default_factory=set)
    #: users the server does not let change their own password (only an admin may)
    no_self_change: set[str] = field(default_factory=set)


class FakeEngine(DatabaseEngine):
    def __init__(self, database: FakeDatabase) -> None:
        super().__init__()
        self.database = database

    def _driver_errors(self) -> tuple[type[Exception], ...]:
        return (FakeDriverError,)

    def _open(self, creds: DatabaseCredentials) -> Any:
        if self.database.down:
            raise FakeDriverError("down")
        if self.database.passwords.get(creds.username) != creds.password:
            raise FakeDriverError("auth")
        self.database.logins += 1
        return _FakeConnection(creds.username)

    def _classify(self, exc: Exception, creds: DatabaseCredentials, action: str) -> RotationError:
        if getattr(exc, "kind", "") == "auth":
            return AuthenticationFailedError(f"{action}: login refused for {creds.username!r}")
        if getattr(exc, "kind", "") == "denied":
            return PrivilegeError(f"{action}: permission denied for {creds.username!r}")
        return DatabaseUnavailableError(f"{action}: unavailable")

    def _set_own_password(self, conn: Any, creds: DatabaseCredentials, new_password: str) -> None:
        if creds.username in self.database.no_self_change:
            raise FakeDriverError("denied")
        self.database.passwords[creds.username] = new_password
        self.database.password_changes += 1

    def _probe(self, conn: Any, creds: DatabaseCredentials) -> None:
        return None

    def _write_probe(self, conn: Any) -> None:
        return None

    def _account(self, conn: Any) -> str:
        return str(conn.username)

    def _sync_clone(self, conn: Any, original: Any, clone: str, password: str | None) -> None:
        if password is not None:
            self.database.passwords[clone] = password
            self.database.password_changes += 1

    def _account_exists(self, conn: Any, account: Any) -> bool:
        return str(account) in self.database.passwords

    def _is_twin(self, conn: Any, original: Any, clone: Any) -> bool:
        return str(clone) in self.database.twins

    def _set_user_password(self, conn: Any, username: Any, password: str) -> None:
        self.database.passwords[username] = password
        self.database.password_changes += 1


class _FakeConnection:
    def __init__(self, username: str) -> None:
        self.username = username

    def close(self) -> None:
        return None
