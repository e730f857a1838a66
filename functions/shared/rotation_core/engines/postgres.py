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
    DatabaseError,
    DatabaseUnavailableError,
    InvalidSecretError,
    PasswordPolicyError,
    PrivilegeError,
    ProbeFailedError,
    RotationError,
    RotationStateError,
    TooManyConnectionsError,
)
from rotation_core.models import DatabaseCredentials
from rotation_core.observability import logger

SCRAM_ITERATIONS = 4096

# Substrings of libpq's connection-failure messages (connect errors carry no SQLSTATE).
_AUTH_MARKERS = ("password authentication failed", "no pg_hba.conf entry", "does not exist")
_BUSY_MARKERS = ("too many connections", "remaining connection slots")
# connection exceptions, resources, operator intervention, rollbacks, lock not available
_TRANSIENT_CLASSES = ("08", "53", "57", "40", "55P03", "58")


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
        if code in ("42501", "0LP01", "0P000"):
            return PrivilegeError(f"{action}: {who} lacks the privilege (SQLSTATE {code})")
        if code == "22023" and "password" in action:
            return PasswordPolicyError(
                f"{action}: the database's password policy refused the generated password "
                f"(SQLSTATE {code}); adjust the tags RotationPasswordLength/RotationExcludeCharacters"
            )
        if code is not None and action == "read probe":
            return ProbeFailedError(f"{action} failed for {who} (SQLSTATE {code})")
        if code is not None and not code.startswith(_TRANSIENT_CLASSES):
            # an answer about the statement itself: retrying will not change it
            return DatabaseError(f"{action}: {who} refused by the database (SQLSTATE {code})")
        detail = f"SQLSTATE {code}" if code else type(exc).__name__
        return DatabaseUnavailableError(
            f"{action}: {creds.host}:{creds.port} unavailable ({detail})"
        )

    def _set_own_password(self, conn: Any, creds: DatabaseCredentials, new_password: str) -> None:
        from psycopg2 import sql

        statement = sql.SQL("ALTER ROLE {} PASSWORD %s").format(sql.Identifier(creds.username))
        with conn.cursor() as cur:
            cur.execute(statement, (scram_verifier(new_password) or new_password,))

    def _set_user_password(self, conn: Any, username: Any, password: str) -> None:
        from psycopg2 import sql

        statement = sql.SQL("ALTER ROLE {} PASSWORD %s").format(sql.Identifier(username))
        with conn.cursor() as cur:
            cur.execute(statement, (scram_verifier(password) or password,))

    def _probe(self, conn: Any, creds: DatabaseCredentials) -> None:
        # session_user: an alternating clone logs in as itself but acts as the original
        with conn.cursor() as cur:
            cur.execute("SELECT session_user, now()")
            user, _now = cur.fetchone()
        if user != creds.username:
            raise ProbeFailedError(
                f"read probe: session runs as {user!r}, expected {creds.username!r}"
            )

    def _write_probe(self, conn: Any) -> None:
        conn.autocommit = False
        try:
            with conn.cursor() as cur:
                cur.execute("CREATE TEMPORARY TABLE rotation_write_probe (checked_at timestamptz)")
                cur.execute("INSERT INTO rotation_write_probe VALUES (now())")
        finally:
            conn.rollback()
            conn.autocommit = True

    def _account(self, conn: Any) -> str:
        with conn.cursor() as cur:
            cur.execute("SELECT session_user")
            return str(cur.fetchone()[0])

    def _sync_clone(self, conn: Any, original: str, clone: str, password: str | None) -> None:
        """The clone acts as the original: a member of it, with ``role`` set to it at login.

        Objects either user creates are therefore owned by the original, and both can use,
        alter and drop them after any number of rotations; the clone also inherits every
        privilege and membership granted to the original. Per-role settings are copied.
        """
        from psycopg2 import sql

        ident = sql.Identifier
        with conn.cursor() as cur:
            cur.execute("SELECT rolconnlimit FROM pg_roles WHERE rolname = %s", (original,))
            row = cur.fetchone()
            if row is None:
                raise RotationStateError(f"the original user {original!r} does not exist")
            cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (clone,))
            if cur.fetchone() is None:
                if password is None:
                    raise RotationStateError(f"the clone {clone!r} does not exist yet")
                cur.execute(
                    sql.SQL("CREATE ROLE {} WITH LOGIN PASSWORD %s").format(ident(clone)),
                    (scram_verifier(password) or password,),
                )
            elif password is not None:
                cur.execute(
                    sql.SQL("ALTER ROLE {} WITH LOGIN PASSWORD %s").format(ident(clone)),
                    (scram_verifier(password) or password,),
                )
            cur.execute(
                sql.SQL("ALTER ROLE {} CONNECTION LIMIT {}").format(
                    ident(clone), sql.Literal(row[0])
                )
            )
            cur.execute(
                "SELECT 1 FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid"
                " JOIN pg_roles u ON u.oid = m.member WHERE g.rolname = %s AND u.rolname = %s",
                (original, clone),
            )
            if cur.fetchone() is None:
                cur.execute(sql.SQL("GRANT {} TO {}").format(ident(original), ident(clone)))
            # Objects the clone came to own some other way (created before this scheme, e.g.
            # by AWS's own alternating template, or after a RESET ROLE) go to the original,
            # so whichever user is current can use them. Only in this (the app's) database.
            cur.execute(
                "SELECT EXISTS (SELECT 1 FROM pg_shdepend d JOIN pg_roles r ON r.oid = d.refobjid"
                " WHERE r.rolname = %s AND d.deptype = 'o' AND d.dbid ="
                " (SELECT oid FROM pg_database WHERE datname = current_database()))",
                (clone,),
            )
            if cur.fetchone()[0]:
                cur.execute(
                    sql.SQL("REASSIGN OWNED BY {} TO {}").format(ident(clone), ident(original))
                )
            cur.execute(sql.SQL("ALTER ROLE {} RESET ALL").format(ident(clone)))
            cur.execute(sql.SQL("ALTER ROLE {} SET role TO %s").format(ident(clone)), (original,))
            self._copy_settings(cur, original, clone)

    @staticmethod
    def _copy_settings(cur: Any, original: str, clone: str) -> None:
        # set_config parses each value as PostgreSQL would (lists included); FROM CURRENT
        # then stores exactly that on the clone.
        import psycopg2
        from psycopg2 import sql

        cur.execute(
            "SELECT coalesce(d.datname, ''), unnest(s.setconfig) FROM pg_db_role_setting s"
            " LEFT JOIN pg_database d ON d.oid = s.setdatabase"
            " WHERE s.setrole = (SELECT oid FROM pg_roles WHERE rolname = %s)",
            (original,),
        )
        for database, item in cur.fetchall():
            name, _sep, value = str(item).partition("=")
            if name.lower() in ("role", "session_authorization"):
                continue
            target = sql.SQL("ALTER ROLE {} ").format(sql.Identifier(clone))
            if database:
                target += sql.SQL("IN DATABASE {} ").format(sql.Identifier(database))
            try:
                cur.execute("SELECT set_config(%s, %s, false)", (name, value))
                cur.execute(target + sql.SQL("SET {} FROM CURRENT").format(sql.Identifier(name)))
                cur.execute(sql.SQL("RESET {}").format(sql.Identifier(name)))
            except psycopg2.Error as exc:
                logger.warning(
                    "could not copy a per-role setting to the clone",
                    extra={"setting": name, "sqlstate": getattr(exc, "pgcode", None)},
                )
