"""MySQL, MariaDB and Aurora MySQL through pymysql."""

from __future__ import annotations

import hashlib
import re
import ssl as ssl_module
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

_AUTH_CODES = frozenset({1045, 1698})  # access denied (password / plugin)
_BUSY_CODES = frozenset({1040, 1203})  # too many connections, max_user_connections
_PRIVILEGE_CODES = frozenset({1044, 1142, 1143, 1227, 1370, 1410, 1133})
_POLICY_CODES = frozenset(
    {1819}
)  # ER_NOT_VALID_PASSWORD (validate_password, simple_password_check)
# server errors worth retrying: lock waits, deadlocks, shutdown in progress, read-only failover
_TRANSIENT_SERVER_CODES = frozenset({1205, 1213, 1053, 1290, 1836})
_UNKNOWN_DB = 1049
_DB_ACCESS_DENIED = 1044
# (hashed, plain) statements by create=True/False; the account and the secret are bound values
_IDENTIFIED = {
    True: (
        "CREATE USER %s@%s IDENTIFIED BY PASSWORD %s",
        "CREATE USER %s@%s IDENTIFIED BY %s",
    ),
    False: (
        "ALTER USER %s@%s IDENTIFIED BY PASSWORD %s",
        "ALTER USER %s@%s IDENTIFIED BY %s",
    ),
}
_BLOCKED_HOST = 1129
_GRANT_OPTIONS = re.compile(r"\bWITH\b.*$")

Account = tuple[str, str]  # (user, host) as the server names the account


def _quoted_grantees(user: str, host: str) -> tuple[str, ...]:
    """How SHOW GRANTS spells an account: backticks (MariaDB, MySQL 8) or quotes (older)."""
    tick = "`" + user.replace("`", "``") + "`@`" + host.replace("`", "``") + "`"
    quote = "'" + user.replace("'", "''") + "'@'" + host.replace("'", "''") + "'"
    return tick, quote


def retarget_grant(statement: str, user: str, host: str) -> str:
    """Rewrite one SHOW GRANTS line for another account, given as two bound parameters.

    The privilege and object part is the server's own text; the grantee becomes ``%s@%s``;
    of the tail only ``WITH ...`` options survive (never the original's IDENTIFIED BY).
    """
    for grantee in _quoted_grantees(user, host):
        for keyword in (" TO ", " FOR "):
            marker = keyword + grantee
            at = statement.rfind(marker)
            if at == -1:
                continue
            head, tail = statement[:at], statement[at + len(marker) :]
            options = _GRANT_OPTIONS.search(tail)
            rewritten = head.replace("%", "%%") + keyword + "%s@%s"
            return rewritten + (" " + options.group(0) if options else "")
    raise RotationStateError(
        "could not read the original user's grants (unexpected SHOW GRANTS format)"
    )


def native_password_hash(password: str) -> str:
    """mysql_native_password's stored form: ``*`` + hex(SHA1(SHA1(password))).

    SHA-1 is that plugin's own format, not a choice made here.
    """
    inner = hashlib.sha1(password.encode("utf-8")).digest()  # noqa: S324
    return "*" + hashlib.sha1(inner).hexdigest().upper()  # noqa: S324


def _needs_plain_password(exc: Exception) -> bool:
    # ER_PASSWD_LENGTH / ER_PASSWORD_FORMAT: another plugin's hash format; ER_OPTION_PREVENTS_
    # STATEMENT (SET PASSWORD) and ER_CANNOT_USER (CREATE/ALTER USER): strict password
    # validation refuses hashes it cannot check. A plain retry then says what really failed.
    return bool(exc.args) and exc.args[0] in (1372, 1827, 1290, 1396)


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes | bytearray) else str(value or "")


class MySQLEngine(DatabaseEngine):
    def _driver_errors(self) -> tuple[type[Exception], ...]:
        import pymysql

        return (pymysql.err.MySQLError, _AuthRefusedError)

    def _open(self, creds: DatabaseCredentials) -> Any:
        import pymysql

        tls = self.policy.tls.choose(creds.ssl, creds.ca_bundle)
        kwargs: dict[str, Any] = {}
        if tls.verify:
            # PyMySQL treats a given SSLContext as required TLS (refusing a server that does not
            # offer it); the context checks the chain and the host name. Shared per process.
            kwargs["ssl"] = tls.ssl_context()
        budget = int(self.policy.budget())
        return pymysql.connect(
            host=creds.host,
            port=creds.port,
            user=creds.username,
            password=creds.password,
            database=creds.dbname,
            connect_timeout=self.connect_timeout,
            read_timeout=budget,
            write_timeout=budget,
            init_command=f"SET SESSION lock_wait_timeout = {budget}",
            autocommit=True,
            charset="utf8mb4",
            auth_plugin_map=_guarded_auth_plugins(),
            **kwargs,
        )

    def _classify(self, exc: Exception, creds: DatabaseCredentials, action: str) -> RotationError:
        who = self.describe(creds)
        code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
        identity = _identity_problem(exc, code, creds)
        if identity is not None:
            return ServerIdentityError(f"{action}: {creds.host}:{creds.port} {identity}")
        if code in _AUTH_CODES:
            if action == "log in":
                return AuthenticationFailedError(f"{action}: login refused for {who}")
            # after login, "access denied" is about a privilege (e.g. a role without ADMIN)
            return PrivilegeError(f"{action}: {who} lacks the privilege (error {code})")
        if code in _POLICY_CODES:
            return PasswordPolicyError(
                f"{action}: the database's password policy refused the generated password "
                f"(error {code}); adjust the tags RotationPasswordLength/RotationExcludeCharacters"
            )
        if code in _BUSY_CODES:
            return TooManyConnectionsError(
                f"{action}: {creds.host}:{creds.port} has no free connections"
            )
        if code == _UNKNOWN_DB:
            return InvalidSecretError("secret field 'dbname' names a database that does not exist")
        if code == _DB_ACCESS_DENIED and action == "log in":
            # MariaDB answers the same whether the database is missing or just not granted
            return PrivilegeError(
                f"secret field 'dbname': {who} may not use that database, or it does not exist "
                f"(error {code})"
            )
        if code == _BLOCKED_HOST:
            return PrivilegeError(f"{action}: {creds.host} blocks this client (run FLUSH HOSTS)")
        if code in _PRIVILEGE_CODES:
            return PrivilegeError(f"{action}: {who} lacks the privilege (error {code})")
        if code is not None and code < 2000 and action == "read probe":
            return ProbeFailedError(f"{action} failed for {who} (error {code})")
        if code is not None and code < 2000 and code not in _TRANSIENT_SERVER_CODES:
            # a server error about the statement: retrying will not change the answer
            return DatabaseError(f"{action}: {who} refused by the database (error {code})")
        detail = f"error {code}" if code is not None else type(exc).__name__
        return DatabaseUnavailableError(
            f"{action}: {creds.host}:{creds.port} unavailable ({detail})"
        )

    def _identified(
        self, conn: Any, cur: Any, create: bool, user: str, host: str, password: str
    ) -> None:
        """``CREATE/ALTER USER ... IDENTIFIED BY``: MariaDB gets the hash, not the password,
        unless a password-validation plugin or another auth plugin needs the plain one."""
        hashed_statement, plain_statement = _IDENTIFIED[create]
        if self.is_mariadb(conn):
            try:
                cur.execute(hashed_statement, (user, host, native_password_hash(password)))
                return
            except Exception as exc:
                if not _needs_plain_password(exc):
                    raise
        cur.execute(plain_statement, (user, host, password))

    @staticmethod
    def is_mariadb(conn: Any) -> bool:
        with conn.cursor() as cur:
            cur.execute("SELECT VERSION()")
            (version,) = cur.fetchone()
        return "mariadb" in str(version).lower()

    def _set_own_password(self, conn: Any, creds: DatabaseCredentials, new_password: str) -> None:
        # SET PASSWORD for one's own account needs no privilege on either server (ALTER USER
        # does on MariaDB). MariaDB takes the mysql_native_password hash, so the plain password
        # never reaches its general or slow query log; MySQL 8 takes the plain string.
        with conn.cursor() as cur:
            if not self.is_mariadb(conn):
                cur.execute("SET PASSWORD = %s", (new_password,))
                return
            try:
                cur.execute("SET PASSWORD = %s", (native_password_hash(new_password),))
            except Exception as exc:
                if not _needs_plain_password(exc):
                    raise
                # another auth plugin (ed25519...), or a password-validation plugin that must
                # see the password: let the server hash it
                cur.execute("SET PASSWORD = PASSWORD(%s)", (new_password,))

    def _set_user_password(self, conn: Any, account: Account | str, password: str) -> None:
        with conn.cursor() as cur:
            if isinstance(account, tuple):
                username, host = account
            else:
                username = account
                cur.execute("SELECT Host FROM mysql.user WHERE User = %s", (username,))
                hosts = [_text(row[0]) for row in cur.fetchall()]
                if len(hosts) != 1:
                    raise RotationStateError(
                        f"user {username!r} has {len(hosts)} accounts; cannot tell which to reset"
                    )
                host = hosts[0]
            self._identified(conn, cur, False, username, host, password)

    def _probe(self, conn: Any, creds: DatabaseCredentials) -> None:
        user, _host = self._account(conn)
        if user != creds.username:
            raise ProbeFailedError(
                f"read probe: session runs as {user!r}, expected {creds.username!r}"
            )

    def _write_probe(self, conn: Any) -> None:
        with conn.cursor() as cur:
            cur.execute("CREATE TEMPORARY TABLE rotation_write_probe (checked_at DATETIME)")
            try:
                cur.execute("INSERT INTO rotation_write_probe VALUES (NOW())")
            finally:
                cur.execute("DROP TEMPORARY TABLE rotation_write_probe")

    def _account(self, conn: Any) -> Account:
        with conn.cursor() as cur:
            cur.execute("SELECT CURRENT_USER()")
            (account,) = cur.fetchone()
        user, _sep, host = _text(account).rpartition("@")
        return user, host

    def _account_exists(self, conn: Any, account: Account) -> bool:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM mysql.user WHERE User = %s AND Host = %s", account)
            return cur.fetchone() is not None

    def _is_twin(self, conn: Any, original: Account, clone: Account) -> bool:
        """Every grant the clone holds (roles and proxies included), the original holds too."""
        with conn.cursor() as cur:
            return set(_grants(cur, clone)) <= set(_grants(cur, original))

    def _admin_privileges(self, conn: Any) -> dict[str, bool]:
        """From SHOW GRANTS of the session's account: global CREATE USER and GRANT OPTION."""
        with conn.cursor() as cur:
            cur.execute("SHOW GRANTS")
            grants = [_text(row[0]).upper() for row in cur.fetchall()]
        everywhere = [g for g in grants if " ON *.* " in g]
        return {
            "CREATE USER": any("ALL PRIVILEGES" in g or "CREATE USER" in g for g in everywhere),
            "GRANT OPTION": any("WITH GRANT OPTION" in g for g in everywhere),
        }

    def _clone_differences(self, conn: Any, original: Account, clone: Account) -> list[str]:
        if not self._account_exists(conn, clone):
            return [f"{clone[0]!r}@{clone[1]!r} does not exist yet: the next rotation creates it"]
        with conn.cursor() as cur:
            theirs, ours = set(_grants(cur, clone)), set(_grants(cur, original))
        found = [f"the clone holds, the original does not: {g}" for g in sorted(theirs - ours)]
        found += [f"the original holds, the clone does not: {g}" for g in sorted(ours - theirs)]
        return found

    def _sync_clone(self, conn: Any, original: Account, clone: str, password: str | None) -> None:
        """Create the clone on the original's host, copy its TLS requirement, re-sync grants.

        Grants are copied afresh on every rotation (revoke all, grant what the original has
        now), because the original's grants change between rotations.
        """
        user, host = original
        with conn.cursor() as cur:
            cur.execute(
                "SELECT ssl_type, ssl_cipher, x509_issuer, x509_subject FROM mysql.user"
                " WHERE User = %s AND Host = %s",
                (user, host),
            )
            tls = cur.fetchone()
            if tls is None:
                raise RotationStateError(f"the original account {user!r}@{host!r} does not exist")
            cur.execute("SELECT 1 FROM mysql.user WHERE User = %s AND Host = %s", (clone, host))
            if cur.fetchone() is None:
                if password is None:
                    raise RotationStateError(f"the clone {clone!r} does not exist yet")
                self._identified(conn, cur, True, clone, host, password)
            elif password is not None:
                self._identified(conn, cur, False, clone, host, password)
            require, params = _require_clause(*tls)
            cur.execute("ALTER USER %s@%s " + require, (clone, host, *params))
            self._sync_grants(cur, (user, host), (clone, host))

    @staticmethod
    def _sync_grants(cur: Any, original: Account, clone: Account) -> None:
        """Give the clone exactly the original's grants, never fewer in between.

        Grants are added first (GRANT is additive), then what the original no longer has is
        revoked, then the original's grants are applied again (a revoked statement may have
        covered a privilege the original still holds). A failure part-way leaves the clone
        with at least what it had, never stripped.
        """

        wanted = _grants(cur, original)
        for statement in wanted:
            cur.execute(statement, clone)
        stale = [s for s in _grants(cur, clone) if s not in wanted]
        for statement in stale:
            for revoke in _revocations(statement):
                cur.execute(revoke, clone)
        if stale:
            for statement in wanted:
                cur.execute(statement, clone)


def _grants(cur: Any, account: Account) -> list[str]:
    """The account's grants as the server lists them, each retargeted to ``%s@%s``."""
    cur.execute("SHOW GRANTS FOR %s@%s", account)
    return [retarget_grant(_text(line), *account) for (line,) in cur.fetchall()]


def _revocations(grant: str) -> list[str]:
    """The REVOKE statements undoing one (retargeted) GRANT line; none for USAGE and defaults."""
    if not grant.startswith("GRANT ") or grant.startswith("GRANT USAGE ON "):
        return []  # SET DEFAULT ROLE ... and the USAGE line are not privileges to take back
    head, _sep, tail = grant.partition(" TO %s@%s")
    body = head[len("GRANT ") :]
    statements = [f"REVOKE {body} FROM %s@%s"]
    if "GRANT OPTION" in tail and " ON " in body:
        statements.append(f"REVOKE GRANT OPTION ON {body.split(' ON ', 1)[1]} FROM %s@%s")
    return statements


def _require_clause(ssl_type: Any, cipher: Any, issuer: Any, subject: Any) -> tuple[str, list[str]]:
    kind = _text(ssl_type).upper()
    if kind == "ANY":
        return "REQUIRE SSL", []
    if kind == "X509":
        return "REQUIRE X509", []
    if kind == "SPECIFIED":
        named = (("CIPHER", cipher), ("ISSUER", issuer), ("SUBJECT", subject))
        present = [(name, _text(value)) for name, value in named if _text(value)]
        if present:
            clause = " AND ".join(f"{name} %s" for name, _ in present)
            return "REQUIRE " + clause, [value for _, value in present]
    return "REQUIRE NONE", []


# --- whom PyMySQL may hand the password to ---------------------------------------------------
# PyMySQL answers a server's switch to mysql_clear_password or dialog with the password itself,
# whatever the transport, and without TLS completes caching_sha2_password / sha256_password
# full authentication by encrypting the password with an RSA key the server supplies. Outside
# verified TLS that is handing the password to whoever answered; these handlers refuse it.


class _AuthRefusedError(Exception):
    """Raised inside the driver when a server asks for what would expose the password."""


def _guarded_auth_plugins() -> dict[str, Any]:
    from pymysql import _auth
    from pymysql.connections import Connection

    class Guard:
        def __init__(self, conn: Any) -> None:
            self.conn = conn

        def refuse(self, what: str) -> Any:
            raise _AuthRefusedError(what)

    class CleartextOnlyOverTls(Guard):
        plugin = b""

        def authenticate(self, packet: Any) -> Any:
            if not self.conn._secure:
                return self.refuse("the password in clear text outside TLS")
            return getattr(Connection, "_process_auth")(self.conn, self.plugin, packet, None)  # noqa: B009 - PyMySQL's own handling

    class ClearPassword(CleartextOnlyOverTls):
        plugin = b"mysql_clear_password"

    class Dialog(CleartextOnlyOverTls):
        plugin = b"dialog"

    class Sha256(Guard):
        def authenticate(self, packet: Any) -> Any:
            if not self.conn._secure:
                return self.refuse("the password encrypted with a key the server supplies")
            sha256_auth: Any = _auth.sha256_password_auth  # untyped in PyMySQL
            return sha256_auth(self.conn, packet)

    class CachingSha2(Guard):
        def authenticate(self, packet: Any) -> Any:
            conn = self.conn
            if conn._secure:
                return _auth.caching_sha2_password_auth(conn, packet)
            # outside TLS only the fast path (a scramble, never the password) is acceptable
            if packet.is_auth_switch_request():
                salt = packet.read_all()
                conn.salt = salt[:-1] if salt.endswith(b"\0") else salt
                conn.write_packet(_auth.scramble_caching_sha2(conn.password, conn.salt))
                packet = conn._read_packet()
                packet.check_error()
            if packet.is_extra_auth_data():
                packet.advance(1)
                if packet.read_uint8() == 3:  # fast authentication succeeded
                    result = conn._read_packet()
                    result.check_error()
                    return result
            return self.refuse("the password encrypted with a key the server supplies")

    return {
        "mysql_clear_password": ClearPassword,
        "dialog": Dialog,
        "sha256_password": Sha256,
        "caching_sha2_password": CachingSha2,
    }


_NO_TLS = 2026  # CR_SSL_CONNECTION_ERROR: "SSL is required but the server doesn't support it"


def _identity_problem(exc: Exception, code: int | None, creds: DatabaseCredentials) -> str | None:
    """What the driver refused about the server, in our words (never the driver's text)."""
    if isinstance(exc, _AuthRefusedError) or isinstance(exc.__context__, _AuthRefusedError):
        return "asked for an authentication that would expose the password; refused"
    if code == _NO_TLS:
        return "offers no TLS; the secret (field 'ssl') and the deployment require it"
    original = getattr(exc, "original_exception", None)
    if isinstance(original, ssl_module.SSLError) and not isinstance(
        original, ssl_module.SSLEOFError | ssl_module.SSLZeroReturnError
    ):
        bundle = f"CA bundle {creds.ca_bundle!r}" if creds.ca_bundle else "the trusted CAs"
        return (
            "did not prove its identity: its TLS certificate does not verify for that host "
            f"with {bundle}"
        )
    return None
