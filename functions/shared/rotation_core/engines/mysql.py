"""MySQL, MariaDB and Aurora MySQL through pymysql."""

from __future__ import annotations

import ssl as ssl_module
from typing import Any

from rotation_core.engines.base import DatabaseEngine
from rotation_core.exceptions import (
    AuthenticationFailedError,
    DatabaseUnavailableError,
    InvalidSecretError,
    PrivilegeError,
    ProbeFailedError,
    RotationError,
    TooManyConnectionsError,
)
from rotation_core.models import DatabaseCredentials

_AUTH_CODES = frozenset({1045, 1698})  # access denied (password / plugin)
_BUSY_CODES = frozenset({1040, 1203})  # too many connections, max_user_connections
_PRIVILEGE_CODES = frozenset({1044, 1142, 1143, 1227, 1370, 1410, 1133})
_UNKNOWN_DB = 1049
_BLOCKED_HOST = 1129


class MySQLEngine(DatabaseEngine):
    family = "mysql"
    max_username_bytes = 32  # MySQL's limit; MariaDB allows 80, the stricter one wins

    def _driver_errors(self) -> tuple[type[Exception], ...]:
        import pymysql

        return (pymysql.err.MySQLError,)

    def _open(self, creds: DatabaseCredentials) -> Any:
        import pymysql

        kwargs: dict[str, Any] = {}
        if creds.ssl:
            kwargs["ssl"] = ssl_module.create_default_context()
        return pymysql.connect(
            host=creds.host,
            port=creds.port,
            user=creds.username,
            password=creds.password,
            database=creds.dbname,
            connect_timeout=self.connect_timeout,
            autocommit=True,
            charset="utf8mb4",
            **kwargs,
        )

    def _classify(self, exc: Exception, creds: DatabaseCredentials, action: str) -> RotationError:
        who = self.describe(creds)
        code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
        if code in _AUTH_CODES:
            return AuthenticationFailedError(f"{action}: login refused for {who}")
        if code in _BUSY_CODES:
            return TooManyConnectionsError(
                f"{action}: {creds.host}:{creds.port} has no free connections"
            )
        if code == _UNKNOWN_DB:
            return InvalidSecretError("secret field 'dbname' names a database that does not exist")
        if code == _BLOCKED_HOST:
            return PrivilegeError(f"{action}: {creds.host} blocks this client (run FLUSH HOSTS)")
        if code in _PRIVILEGE_CODES:
            return PrivilegeError(f"{action}: {who} lacks the privilege (error {code})")
        if code is not None and code < 2000 and action == "read probe":
            return ProbeFailedError(f"{action} failed for {who} (error {code})")
        detail = f"error {code}" if code is not None else type(exc).__name__
        return DatabaseUnavailableError(
            f"{action}: {creds.host}:{creds.port} unavailable ({detail})"
        )

    @staticmethod
    def is_mariadb(conn: Any) -> bool:
        with conn.cursor() as cur:
            cur.execute("SELECT VERSION()")
            (version,) = cur.fetchone()
        return "mariadb" in str(version).lower()

    def _set_own_password(self, conn: Any, creds: DatabaseCredentials, new_password: str) -> None:
        # SET PASSWORD for one's own account needs no privilege on either server;
        # ALTER USER does on MariaDB. MySQL 8 dropped PASSWORD() and takes the plain string.
        statement = "SET PASSWORD = PASSWORD(%s)" if self.is_mariadb(conn) else "SET PASSWORD = %s"
        with conn.cursor() as cur:
            cur.execute(statement, (new_password,))

    def _probe(self, conn: Any, creds: DatabaseCredentials) -> None:
        with conn.cursor() as cur:
            cur.execute("SELECT CURRENT_USER(), NOW()")
            current_user, _now = cur.fetchone()
        user = str(current_user).rsplit("@", 1)[0]
        if user != creds.username:
            raise ProbeFailedError(
                f"read probe: session runs as {user!r}, expected {creds.username!r}"
            )
