"""PostgreSQL (and Aurora PostgreSQL) through psycopg2."""

from __future__ import annotations

from typing import Any

from rotation_core.adapters.database import DatabaseEngine
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
    ServerIdentityError,
    TooManyConnectionsError,
)
from rotation_core.models import DatabaseCredentials
from rotation_core.observability import logger

# Substrings of libpq's connection-failure messages (connect errors carry no SQLSTATE).
_AUTH_MARKERS = ("password authentication failed", "no pg_hba.conf entry", "does not exist")
_BUSY_MARKERS = ("too many connections", "remaining connection slots")
# the server offered no TLS, or a certificate that does not verify for the host
_NO_TLS_MARKERS = ("does not support ssl",)
_CERTIFICATE_MARKERS = (
    "certificate",
    "does not match host name",
    "alert unknown ca",
    "alert bad certificate",
    "wrong version number",
)
# libpq refused what the server asked for (require_auth, channel_binding)
_AUTH_METHOD_MARKERS = ("require_auth", "authentication method requirement", "channel binding")
# connection exceptions, resources, operator intervention, rollbacks, lock not available
_TRANSIENT_CLASSES = ("08", "53", "57", "40", "55P03", "58")

#: Settings fixed for every session a worker opens, given as startup options: options from the
#: client outrank ALTER DATABASE and ALTER ROLE settings, so a database owner cannot point the
#: master's name resolution at its own schema, nor make the master's session SET ROLE to it.
#: pg_temp last: temporary objects never shadow catalog ones (functions are never looked up
#: there). Every catalog object below is also schema-qualified, operators included.
SESSION_PINS = {
    "search_path": "pg_catalog,pg_temp",
    "role": "none",
    "standard_conforming_strings": "on",
}
#: the database a master works in when its secret names none (never the application's)
MASTER_DEFAULT_DATABASE = "postgres"


class PostgresEngine(DatabaseEngine):
    OWNERSHIP_PER_DATABASE = True
    USER_SETTINGS = True

    def _driver_errors(self) -> tuple[type[Exception], ...]:
        import psycopg2

        return (psycopg2.Error,)

    def _open(self, creds: DatabaseCredentials) -> Any:
        import psycopg2

        tls = self.policy.tls.choose(creds.ssl, creds.ca_bundle)
        timeout_ms = self.policy.statement_timeout_ms()
        pins = {
            **SESSION_PINS,
            "statement_timeout": str(timeout_ms),
            "lock_timeout": str(timeout_ms),
            "idle_in_transaction_session_timeout": str(timeout_ms),
        }
        transport: dict[str, Any] = {"sslmode": "disable"}
        if tls.verify:
            # verify-full: the chain must reach a trusted CA and the name must match the host
            transport = {"sslmode": "verify-full", "sslrootcert": tls.combined_ca_file()}
        if self.policy.scram_only:
            transport["require_auth"] = "scram-sha-256"
            if tls.verify:
                transport["channel_binding"] = "require"
        else:
            # never the password in clear, never a server that asks for nothing (libpq >= 16);
            # md5 stays allowed so md5-hashed users can still log in before their first rotation
            transport["require_auth"] = "!password,!none"
        conn = psycopg2.connect(
            host=creds.host,
            port=creds.port,
            user=creds.username,
            password=creds.password,
            dbname=creds.dbname or MASTER_DEFAULT_DATABASE,
            connect_timeout=self.connect_timeout,
            application_name="secret-rotation",
            client_encoding="UTF8",
            options=" ".join(f"-c {name}={value}" for name, value in pins.items()),
            **transport,
        )
        conn.autocommit = True
        return conn

    def _classify(self, exc: Exception, creds: DatabaseCredentials, action: str) -> RotationError:
        who = self.describe(creds)
        code = getattr(exc, "pgcode", None)
        text = str(exc).lower()
        if code is None and action == "log in":
            identity = _identity_problem(text, creds)
            if identity is not None:
                return ServerIdentityError(f"{action}: {creds.host}:{creds.port} {identity}")
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

    # --- statements: identifiers quoted by the driver, values as literals, no %-formatting ---
    # psycopg2 %-formats a query whenever parameters are passed, composed SQL included, so a
    # role named with '%' would change the statement. Statements that carry an identifier
    # therefore carry their values as sql.Literal and run without parameters.

    @staticmethod
    def _verifier(conn: Any, username: str, password: str) -> str:
        """The SCRAM-SHA-256 verifier libpq computes (SASLprep included): the server stores
        and logs only this, never the password."""
        from psycopg2.extensions import encrypt_password

        from rotation_core.adapters.dry_run import driver_connection

        return str(encrypt_password(password, username, driver_connection(conn), "scram-sha-256"))

    def _set_own_password(self, conn: Any, creds: DatabaseCredentials, new_password: str) -> None:
        self._set_user_password(conn, creds.username, new_password)

    def _set_user_password(self, conn: Any, username: Any, password: str) -> None:
        from psycopg2 import sql

        statement = sql.SQL("ALTER ROLE {} PASSWORD {}").format(
            sql.Identifier(username), sql.Literal(self._verifier(conn, username, password))
        )
        with conn.cursor() as cur:
            cur.execute(statement)

    def _probe(self, conn: Any, creds: DatabaseCredentials) -> None:
        with conn.cursor() as cur:
            cur.execute("SELECT session_user, pg_catalog.now()")
            user, _now = cur.fetchone()
        if user != creds.username:
            raise ProbeFailedError(
                f"read probe: session runs as {user!r}, expected {creds.username!r}"
            )

    def _write_probe(self, conn: Any) -> None:
        conn.autocommit = False
        try:
            with conn.cursor() as cur:
                cur.execute(
                    "CREATE TEMPORARY TABLE rotation_write_probe (checked_at pg_catalog.timestamptz)"
                )
                cur.execute("INSERT INTO pg_temp.rotation_write_probe VALUES (pg_catalog.now())")
        finally:
            conn.rollback()
            conn.autocommit = True

    def _account(self, conn: Any) -> str:
        with conn.cursor() as cur:
            cur.execute("SELECT session_user")
            return str(cur.fetchone()[0])

    def _account_exists(self, conn: Any, account: Any) -> bool:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT 1 FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) %s",
                (str(account),),
            )
            return cur.fetchone() is not None

    def _is_twin(self, conn: Any, original: Any, clone: Any) -> bool:
        """The clone can do nothing the original cannot: no attributes beyond LOGIN, member
        of the original and of nothing else, named in no privilege and owning nothing
        anywhere (pg_shdepend covers every database). Handing it over gives nothing away."""
        row = self._twin_facts(conn, clone)
        if row is None:
            return False
        elevated, memberships, depended_on = row
        return not elevated and list(memberships) == [str(original)] and not depended_on

    @staticmethod
    def _twin_facts(conn: Any, clone: Any) -> tuple[bool, list[str], bool] | None:
        """(elevated attributes, roles it is a member of, owns or is granted anything)."""
        with conn.cursor() as cur:
            cur.execute(
                "SELECT r.rolsuper OR r.rolcreaterole OR r.rolcreatedb OR r.rolreplication"
                " OR r.rolbypassrls,"
                " ARRAY(SELECT g.rolname::pg_catalog.text FROM pg_catalog.pg_auth_members m"
                "   JOIN pg_catalog.pg_roles g ON g.oid OPERATOR(pg_catalog.=) m.roleid"
                "   WHERE m.member OPERATOR(pg_catalog.=) r.oid),"
                " EXISTS (SELECT 1 FROM pg_catalog.pg_shdepend d"
                "   WHERE d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_authid'::pg_catalog.regclass"
                "   AND d.refobjid OPERATOR(pg_catalog.=) r.oid)"
                " FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) %s",
                (str(clone),),
            )
            row = cur.fetchone()
        if row is None:
            return None
        return bool(row[0]), [str(m) for m in row[1]], bool(row[2])

    def _admin_privileges(self, conn: Any) -> dict[str, bool]:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT rolsuper, rolcreaterole FROM pg_catalog.pg_roles"
                " WHERE rolname OPERATOR(pg_catalog.=) session_user"
            )
            row = cur.fetchone()
        superuser, createrole = (bool(row[0]), bool(row[1])) if row else (False, False)
        return {"SUPERUSER": superuser, "CREATEROLE": createrole or superuser}

    def _clone_differences(self, conn: Any, original: Any, clone: Any) -> list[str]:
        row = self._twin_facts(conn, clone)
        if row is None:
            return [f"{clone!r} does not exist yet: the next rotation creates it"]
        elevated, memberships, depended_on = row
        found = []
        if elevated:
            found.append(f"{clone!r} has role attributes beyond LOGIN")
        if str(original) not in memberships:
            found.append(f"{clone!r} is not a member of {original!r} (setSecret grants it)")
        others = sorted(set(memberships) - {str(original)})
        if others:
            found.append(f"{clone!r} is also a member of {others}")
        if depended_on:
            found.append(f"{clone!r} owns objects or is named in privileges of its own")
        return found

    def _sync_clone(self, conn: Any, original: str, clone: str, password: str | None) -> None:
        """The clone acts as the original: a member of it, with ``role`` set to it at login.

        Objects either user creates are therefore owned by the original, and both can use,
        alter and drop them after any number of rotations; the clone also inherits every
        privilege and membership granted to the original. Runs in the master's own database
        (role statements are cluster-wide); see :meth:`_fix_ownership` for the rest.
        """
        from psycopg2 import sql

        ident, literal = sql.Identifier, sql.Literal
        with conn.cursor() as cur:
            cur.execute(
                "SELECT rolconnlimit FROM pg_catalog.pg_roles"
                " WHERE rolname OPERATOR(pg_catalog.=) %s",
                (original,),
            )
            row = cur.fetchone()
            if row is None:
                raise RotationStateError(f"the original user {original!r} does not exist")
            exists = self._account_exists(conn, clone)
            if not exists:
                if password is None:
                    raise RotationStateError(f"the clone {clone!r} does not exist yet")
                cur.execute(
                    sql.SQL("CREATE ROLE {} WITH LOGIN PASSWORD {}").format(
                        ident(clone), literal(self._verifier(conn, clone, password))
                    )
                )
            elif password is not None:
                cur.execute(
                    sql.SQL("ALTER ROLE {} WITH LOGIN PASSWORD {}").format(
                        ident(clone), literal(self._verifier(conn, clone, password))
                    )
                )
            cur.execute(
                sql.SQL("ALTER ROLE {} CONNECTION LIMIT {}").format(ident(clone), literal(row[0]))
            )
            cur.execute(
                "SELECT 1 FROM pg_catalog.pg_auth_members m"
                " JOIN pg_catalog.pg_roles g ON g.oid OPERATOR(pg_catalog.=) m.roleid"
                " JOIN pg_catalog.pg_roles u ON u.oid OPERATOR(pg_catalog.=) m.member"
                " WHERE g.rolname OPERATOR(pg_catalog.=) %s"
                " AND u.rolname OPERATOR(pg_catalog.=) %s",
                (original, clone),
            )
            if cur.fetchone() is None:
                cur.execute(sql.SQL("GRANT {} TO {}").format(ident(original), ident(clone)))
            cur.execute(sql.SQL("ALTER ROLE {} RESET ALL").format(ident(clone)))
            cur.execute(
                sql.SQL("ALTER ROLE {} SET role TO {}").format(ident(clone), literal(original))
            )

    def _fix_ownership(self, conn: Any, original: str, clone: str) -> None:
        """In the application's database only: objects the clone came to own some other way
        (created before this scheme, e.g. by AWS's own alternating template, or after a RESET
        ROLE) go to the original, so whichever user is current can use them."""
        from psycopg2 import sql

        with conn.cursor() as cur:
            cur.execute(
                "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_shdepend d"
                " JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) d.refobjid"
                " WHERE r.rolname OPERATOR(pg_catalog.=) %s"
                " AND d.deptype OPERATOR(pg_catalog.=) 'o'"
                " AND d.dbid OPERATOR(pg_catalog.=) (SELECT oid FROM pg_catalog.pg_database"
                "   WHERE datname OPERATOR(pg_catalog.=) pg_catalog.current_database()))",
                (clone,),
            )
            if cur.fetchone()[0]:
                cur.execute(
                    sql.SQL("REASSIGN OWNED BY {} TO {}").format(
                        sql.Identifier(clone), sql.Identifier(original)
                    )
                )

    def _copy_settings(self, conn: Any, original: str, clone: str) -> None:
        """Copy the original's per-role settings to the clone.

        set_config parses each value as PostgreSQL would (lists included); FROM CURRENT then
        stores exactly that on the clone. The values are the application's own, so this runs
        in a session of its own that does nothing else and is closed right after.
        """
        import psycopg2
        from psycopg2 import sql

        with conn.cursor() as cur:
            cur.execute(
                "SELECT COALESCE(d.datname::pg_catalog.text, ''),"
                " pg_catalog.unnest(s.setconfig) FROM pg_catalog.pg_db_role_setting s"
                " LEFT JOIN pg_catalog.pg_database d ON d.oid OPERATOR(pg_catalog.=) s.setdatabase"
                " WHERE s.setrole OPERATOR(pg_catalog.=) (SELECT oid FROM pg_catalog.pg_roles"
                "   WHERE rolname OPERATOR(pg_catalog.=) %s)",
                (original,),
            )
            settings = cur.fetchall()
            for database, item in settings:
                name, _sep, value = str(item).partition("=")
                if name.lower() in ("role", "session_authorization"):
                    continue
                target = sql.SQL("ALTER ROLE {} ").format(sql.Identifier(clone))
                if database:
                    target += sql.SQL("IN DATABASE {} ").format(sql.Identifier(database))
                try:
                    cur.execute("SELECT pg_catalog.set_config(%s, %s, false)", (name, value))
                    cur.execute(
                        target + sql.SQL("SET {} FROM CURRENT").format(sql.Identifier(name))
                    )
                except psycopg2.Error as exc:
                    logger.warning(
                        "could not copy a per-role setting to the clone",
                        extra={"setting": name, "sqlstate": getattr(exc, "pgcode", None)},
                    )


def _identity_problem(text: str, creds: DatabaseCredentials) -> str | None:
    """What libpq refused about the server, in our words (its own may quote the server)."""
    if any(marker in text for marker in _AUTH_METHOD_MARKERS):
        return "asked for an authentication method that would expose the password; refused"
    if any(marker in text for marker in _NO_TLS_MARKERS):
        return "offers no TLS; the secret (field 'ssl') and the deployment require it"
    if any(marker in text for marker in _CERTIFICATE_MARKERS):
        bundle = f"CA bundle {creds.ca_bundle!r}" if creds.ca_bundle else "the trusted CAs"
        return f"did not prove its identity: its TLS certificate does not verify for that host with {bundle}"
    return None
