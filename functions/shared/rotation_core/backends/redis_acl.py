"""Redis ACL users: one user may hold several passwords at once (ACL SETUSER >pw / <pw)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

from rotation_core.exceptions import (
    AuthenticationFailedError,
    DatabaseUnavailableError,
    InvalidSecretError,
    PrivilegeError,
    ProbeFailedError,
    RotationError,
)
from rotation_core.models import DatabaseCredentials


class RedisAcl:
    def __init__(self, connect_timeout: int = 5) -> None:
        self.connect_timeout = connect_timeout

    @contextmanager
    def session(self, creds: DatabaseCredentials) -> Iterator[Any]:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        # No driver retries: a refused password must be reported, not hammered; the state
        # machine owns retrying.
        client = redis.Redis(
            host=creds.host,
            port=creds.port,
            username=creds.username,
            password=creds.password,
            ssl=bool(creds.ssl),
            socket_connect_timeout=self.connect_timeout,
            socket_timeout=self.connect_timeout,
            decode_responses=True,
            retry=Retry(NoBackoff(), 0),
        )
        try:
            try:
                client.ping()
            except Exception as exc:
                raise self._classify(exc, creds, "log in") from None
            yield client
        finally:
            with suppress(Exception):
                client.close()

    def can_login(self, creds: DatabaseCredentials) -> bool:
        try:
            with self.session(creds):
                return True
        except AuthenticationFailedError:
            return False

    def add_password(self, admin: DatabaseCredentials, username: str, password: str) -> None:
        self._setuser(admin, username, ">" + password, "add a password")

    def remove_password(self, admin: DatabaseCredentials, username: str, password: str) -> None:
        self._setuser(admin, username, "<" + password, "remove a password")

    def probe(self, creds: DatabaseCredentials) -> None:
        with self.session(creds) as client:
            try:
                who = client.execute_command("ACL", "WHOAMI")
            except Exception as exc:
                raise self._classify(exc, creds, "read probe") from None
        if who != creds.username:
            raise ProbeFailedError(
                f"read probe: session runs as {who!r}, expected {creds.username!r}"
            )

    def _setuser(self, admin: DatabaseCredentials, username: str, rule: str, action: str) -> None:
        with self.session(admin) as client:
            try:
                if client.execute_command("ACL", "GETUSER", username) is None:
                    # ACL SETUSER would create it: never invent a user
                    raise InvalidSecretError(
                        f"secret field 'username': ACL user {username!r} does not exist"
                    )
                client.execute_command("ACL", "SETUSER", username, rule)
            except RotationError:
                raise
            except Exception as exc:
                raise self._classify(exc, admin, action) from None

    @staticmethod
    def _classify(exc: Exception, creds: DatabaseCredentials, action: str) -> RotationError:
        import redis

        who = f"{creds.username!r} on {creds.host}:{creds.port}"
        text = str(exc)
        if isinstance(exc, redis.AuthenticationError) or "WRONGPASS" in text:
            return AuthenticationFailedError(f"{action}: login refused for {who}")
        if "NOPERM" in text:
            return PrivilegeError(f"{action}: {who} lacks the ACL permission")
        if isinstance(exc, redis.ConnectionError | redis.TimeoutError):
            return DatabaseUnavailableError(
                f"{action}: {creds.host}:{creds.port} unavailable ({type(exc).__name__})"
            )
        return DatabaseUnavailableError(
            f"{action}: {creds.host}:{creds.port} failed ({type(exc).__name__})"
        )
