"""Throwaway PostgreSQL: SCRAM passwords only, TLS only on TCP, never run as root.

PostgreSQL refuses to run as root, so when we are root it runs as the ``postgres`` OS user (or
``nobody``), which must be able to reach the work directory.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pwd
import signal
from pathlib import Path
from typing import Any

from rotator.dbservers.exceptions import DatabaseServerError
from rotator.dbservers.process import HOST, RunAs, run_checked, which
from rotator.dbservers.server import APP_DATABASE, CONNECT_TIMEOUT, DatabaseServer
from rotator.dbservers.tls import CertificateAuthority

MAX_IDENTIFIER_BYTES = 63
# libpq / PostgreSQL messages (lc_messages=C) that mean "these credentials were refused".
_AUTH_ERRORS = (
    "password authentication failed",
    "is not permitted to log in",
    "no password supplied",
    "pg_hba.conf rejects connection",
    "no pg_hba.conf entry",
)
_HBA_HEADER = """\
# Written by rotator.dbservers: every connection must present a SCRAM password.
# TYPE  DATABASE  USER  ADDRESS       METHOD
local   all       all                 scram-sha-256
"""


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in path.parent.name.split(".") if part.isdigit())


def _bindir() -> Path | None:
    """Highest system PostgreSQL in /usr/lib/postgresql, else the pgserver wheel's binaries."""
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_version_key, reverse=True)
    spec = importlib.util.find_spec("pgserver")
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            candidates.append(Path(location) / "pginstall" / "bin")
    for bindir in candidates:
        if all(os.access(bindir / tool, os.X_OK) for tool in ("initdb", "postgres")):
            return bindir
    return None


def postgres_available() -> bool:
    """True if initdb and postgres binaries were found."""
    return _bindir() is not None


def _unprivileged_user() -> RunAs | None:
    """The OS user for PostgreSQL when we are root, else None (run as ourselves)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        return RunAs(name, entry.pw_uid, entry.pw_gid)
    raise DatabaseServerError("running as root but neither a 'postgres' nor 'nobody' user exists")


class PostgresServer(DatabaseServer):
    """PostgreSQL with superuser ``postgres`` and a database ``app``."""

    engine = "postgres"
    admin_user = "postgres"
    stop_signal = signal.SIGINT  # "fast" shutdown: does not wait for clients

    _bindir: Path

    def _unprivileged_user(self) -> RunAs | None:
        return _unprivileged_user()

    def _prepare(self) -> None:
        bindir = _bindir()
        if bindir is None:
            raise DatabaseServerError("PostgreSQL binaries (initdb, postgres) were not found")
        self._bindir = bindir
        if self._run_as is not None:
            self._check_reachable()
        self.socket_path = self._socket_dir()
        self._initdb()
        hba = self.data_dir / "pg_hba.conf"
        # TLS servers have no "host" line at all: a plaintext TCP login finds no rule.
        kind = "hostssl" if self.tls else "host"
        hba.write_text(_HBA_HEADER + f"{kind:<7} all       all   {HOST}/32  scram-sha-256\n")
        if self._run_as is not None:
            self._run_as.give(hba)

    def _check_reachable(self) -> None:
        """Fail early and clearly if the OS user cannot run the binaries or use work_dir."""
        assert self._run_as is not None
        what = (
            f"checking that OS user {self._run_as.name!r} can run {self._bindir / 'postgres'} "
            f"and write {self.work_dir} (the directory and all its parents must be searchable "
            "by that user)"
        )
        root = Path("/")
        run_checked([str(self._bindir / "postgres"), "--version"], what, self._run_as, root)
        test = which("test")
        if test is not None:
            argv = [str(test), "-w", str(self.work_dir), "-a", "-x", str(self.work_dir)]
            run_checked(argv, what, self._run_as, root)

    def _initdb(self) -> None:
        pwfile = self.work_dir / "pwfile"
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(self.admin_password + "\n")
        if self._run_as is not None:
            self._run_as.give(pwfile)
        try:
            run_checked(
                [
                    str(self._bindir / "initdb"),
                    "--pgdata",
                    str(self.data_dir),
                    "--username",
                    self.admin_user,
                    f"--pwfile={pwfile}",
                    "--auth-host=scram-sha-256",
                    "--auth-local=scram-sha-256",
                    "--encoding=UTF8",
                    "--locale=C",
                    "--no-sync",
                    "--no-instructions",
                ],
                "initdb",
                self._run_as,
                self.work_dir,
            )
        finally:
            pwfile.unlink(missing_ok=True)

    def _argv(self) -> list[str]:
        settings = {
            "listen_addresses": HOST,
            "port": str(self.port),
            "unix_socket_directories": str(self.socket_path),
            "unix_socket_permissions": "0700",
            "password_encryption": "scram-sha-256",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "50",
            "shared_buffers": "32MB",
            "lc_messages": "C",
            "logging_collector": "off",
            # Never echo failing statements (CREATE ROLE ... PASSWORD) into the log.
            "log_min_error_statement": "panic",
            "ssl": "off",
        }
        if self._certificate is not None:
            settings |= {
                "ssl": "on",
                "ssl_cert_file": str(self._certificate.cert_file),
                "ssl_key_file": str(self._certificate.key_file),
                "ssl_min_protocol_version": "TLSv1.2",
            }
        argv = [str(self._bindir / "postgres"), "-D", str(self.data_dir)]
        for key, value in settings.items():
            argv += ["-c", f"{key}={value}"]
        return argv

    def _after_start(self) -> None:
        from psycopg2 import sql

        with contextlib.closing(self.admin_connection()) as conn, conn.cursor() as cur:
            cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(APP_DATABASE)))

    # -- logins ------------------------------------------------------------------------------

    def connect(self, username: str, password: str, dbname: str | None = None) -> Any:
        """psycopg2 connection (autocommit) to ``dbname`` (default ``postgres``)."""
        import psycopg2

        tls: dict[str, Any] = {"sslmode": "disable"}
        if self.ca_file is not None:
            tls = {"sslmode": "verify-full", "sslrootcert": str(self.ca_file)}
        conn = psycopg2.connect(
            host=self.host,
            port=self.port,
            user=username,
            password=password,
            dbname=dbname or "postgres",
            connect_timeout=CONNECT_TIMEOUT,
            gssencmode="disable",
            # A file that never exists: libpq must not fall back to ~/.pgpass.
            passfile=str(self.work_dir / "no-such.pgpass"),
            application_name="rotator-dbservers",
            **tls,
        )
        conn.autocommit = True
        return conn

    def _login_verdict(self, exc: Exception) -> bool | None:
        import psycopg2

        if isinstance(exc, psycopg2.OperationalError) and any(
            marker in str(exc) for marker in _AUTH_ERRORS
        ):
            return False
        return None

    def create_login(
        self, username: str, password: str, *, superuser: bool = False, host: str = "%"
    ) -> None:
        from psycopg2 import sql

        if len(username.encode()) > MAX_IDENTIFIER_BYTES:
            raise ValueError("PostgreSQL role names are limited to 63 bytes")
        options = sql.SQL("LOGIN CREATEROLE SUPERUSER" if superuser else "LOGIN")
        statement = sql.SQL("CREATE ROLE {} WITH {} PASSWORD %s").format(
            sql.Identifier(username), options
        )
        with contextlib.closing(self.admin_connection()) as conn, conn.cursor() as cur:
            cur.execute(statement, (password,))

    def drop_login(self, username: str, host: str = "%") -> None:
        """Drop the role and everything it owns or was granted, in every database."""
        from psycopg2 import sql

        with contextlib.closing(self.admin_connection()) as conn, conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (username,))
            if cur.fetchone() is None:
                return
            cur.execute("SELECT datname FROM pg_database WHERE datallowconn ORDER BY 1")
            databases = [row[0] for row in cur.fetchall()]
        role = sql.Identifier(username)
        for dbname in databases:
            with contextlib.closing(self.admin_connection(dbname)) as conn, conn.cursor() as cur:
                cur.execute(sql.SQL("DROP OWNED BY {}").format(role))
        with contextlib.closing(self.admin_connection()) as conn, conn.cursor() as cur:
            cur.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(role))


def start_postgres(
    base_dir: Path | None = None, *, ca: CertificateAuthority | None = None, tls: bool = True
) -> PostgresServer:
    """Start a throwaway PostgreSQL (superuser ``postgres``, database ``app``) on a free port.

    With TLS (the default) its certificate comes from ``ca`` (a CertificateAuthority), or from
    a CA of its own when none is given; TCP logins must then use TLS.
    """
    return PostgresServer.start(base_dir, ca=ca, tls=tls)
