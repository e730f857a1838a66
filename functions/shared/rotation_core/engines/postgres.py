"""PostgreSQL (and Aurora PostgreSQL) through psycopg2."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
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

SCRAM_ITERATIONS = 4096

# Substrings of libpq's connection-failure messages (connect errors carry no SQLSTATE).
_AUTH_MARKERS = ("password authentication failed", "no pg_hba.conf entry", "does not exist")
_BUSY_MARKERS = ("too many connections", "remaining connection slots")


def scram_verifier(password: str, salt: bytes | None = None) -> str | None:
    """A SCRAM-SHA-256 verifier for ``password``, as PostgreSQL stores it.

    Sending the verifier instead of the password keeps the plain password out of the server's
    statement logs and pg_stat_statements. PostgreSQL normalises non-ASCII passwords with
    SASLprep before hashing; rather than re-implement that, such passwords return None and are
    sent as-is for the server to hash.
    """
    if not password.isascii() or not password.isprintable():
        return None
    salt = salt or os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, SCRAM_ITERATIONS)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    b64 = base64.b64encode
    return (
        f"SCRAM-SHA-256${SCRAM_ITERATIONS}:{b64(salt).decode()}"
        f"${b64(stored_key).decode()}:{b64(server_key).decode()}"
    )


class PostgresEngine(DatabaseEngine):
    family = "postgres"
    max_username_bytes = 63

    def _driver_errors(self) -> tuple[type[Exception], ...]:
        import psycopg2

        return (psycopg2.Error,)

    def _open(self, creds: DatabaseCredentials) -> Any:
        import psycopg2

        sslmode = {None: "prefer", True: "require", False: "disable"}[creds.ssl]
        conn = psycopg2.connect(
            host=creds.host,
            port=creds.port,
            user=creds.username,
            password=creds.password,
            dbname=creds.dbname or "postgres",
            connect_timeout=self.connect_timeout,
            sslmode=sslmode,
            application_name="secret-rotation",
        )
        conn.autocommit = True
        return conn

    def _classify(self, exc: Exception, creds: DatabaseCredentials, action: str) -> RotationError:
        who = self.describe(creds)
        code = getattr(exc, "pgcode", None)
        text = str(exc).lower()
        if code in ("28P01", "28000") or (code is None and any(m in text for m in _AUTH_MARKERS)):
            if code is None and "database" in text and "does not exist" in text:
                return InvalidSecretError(
                    "secret field 'dbname' names a database that does not exist"
                )
            return AuthenticationFailedError(f"{action}: login refused for {who}")
        if code in ("53300", "53400") or any(m in text for m in _BUSY_MARKERS):
            return TooManyConnectionsError(
                f"{action}: {creds.host}:{creds.port} has no free connections"
            )
        if code == "3D000":
            return InvalidSecretError("secret field 'dbname' names a database that does not exist")
        if code is not None and code.startswith("42"):
            return PrivilegeError(f"{action}: {who} lacks the privilege (SQLSTATE {code})")
        if code is not None and action == "read probe":
            return ProbeFailedError(f"{action} failed for {who} (SQLSTATE {code})")
        detail = f"SQLSTATE {code}" if code else type(exc).__name__
        return DatabaseUnavailableError(
            f"{action}: {creds.host}:{creds.port} unavailable ({detail})"
        )

    def _set_own_password(self, conn: Any, creds: DatabaseCredentials, new_password: str) -> None:
        from psycopg2 import sql

        statement = sql.SQL("ALTER ROLE {} PASSWORD %s").format(sql.Identifier(creds.username))
        with conn.cursor() as cur:
            cur.execute(statement, (scram_verifier(new_password) or new_password,))

    def _probe(self, conn: Any, creds: DatabaseCredentials) -> None:
        with conn.cursor() as cur:
            cur.execute("SELECT current_user, now()")
            user, _now = cur.fetchone()
        if user != creds.username:
            raise ProbeFailedError(
                f"read probe: session runs as {user!r}, expected {creds.username!r}"
            )
