"""Throwaway MariaDB: root needs its password even on the Unix socket; TCP requires TLS."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from rotator.dbservers.exceptions import DatabaseServerError
from rotator.dbservers.process import HOST, run_checked, which
from rotator.dbservers.server import CONNECT_TIMEOUT, DatabaseServer
from rotator.dbservers.tls import CertificateAuthority

# Error codes that mean "these credentials were refused".
_AUTH_ERRORS = frozenset(
    {
        1045,  # ER_ACCESS_DENIED_ERROR
        1130,  # ER_HOST_NOT_PRIVILEGED
        1698,  # ER_ACCESS_DENIED_NO_PASSWORD_ERROR
        1862,  # ER_MUST_CHANGE_PASSWORD_LOGIN
        4151,  # ER_ACCOUNT_HAS_BEEN_LOCKED
    }
)
_TUNING = [
    "--innodb-buffer-pool-size=16M",
    "--innodb-log-file-size=4M",
    "--innodb-use-native-aio=0",
    "--innodb-flush-log-at-trx-commit=0",
    "--innodb-doublewrite=0",
    "--character-set-server=utf8mb4",
    "--collation-server=utf8mb4_general_ci",
]


def _binaries() -> tuple[Path, Path] | None:
    server = which("mariadbd", "mysqld")
    installer = which("mariadb-install-db", "mysql_install_db")
    if server is None or installer is None:
        return None
    return server, installer


def mariadb_available() -> bool:
    """True if mariadbd/mysqld and mariadb-install-db/mysql_install_db were found."""
    return _binaries() is not None


class MariaDBServer(DatabaseServer):
    """MariaDB with admin ``root`` (password required everywhere) and a database ``app``."""

    engine = "mariadb"
    admin_user = "root"
    _mariadbd: Path

    @property
    def _as_root(self) -> list[str]:
        return ["--user=root"] if os.geteuid() == 0 else []

    def _prepare(self) -> None:
        binaries = _binaries()
        if binaries is None:
            raise DatabaseServerError(
                "MariaDB binaries (mariadbd, mariadb-install-db) were not found"
            )
        self._mariadbd, installer = binaries
        (self.work_dir / "tmp").mkdir()
        self.socket_path = self._socket_dir() / "mysqld.sock"
        run_checked(
            [
                str(installer),
                "--no-defaults",  # this machine's my.cnf must not shape our server
                f"--datadir={self.data_dir}",
                *self._as_root,
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
                "--skip-name-resolve",
                # the bootstrap server's temporary tables stay in our directory, not a /tmp
                # shared with every other process (passed through to mariadbd --bootstrap)
                f"--tmpdir={self.work_dir / 'tmp'}",
                *_TUNING,
            ],
            "mariadb-install-db",
            None,
            self.work_dir,
        )

    def _argv(self) -> list[str]:
        tls: list[str] = []
        if self._certificate is not None and self.ca_file is not None:
            tls = [
                f"--ssl-cert={self._certificate.cert_file}",
                f"--ssl-key={self._certificate.key_file}",
                f"--ssl-ca={self.ca_file}",
                # TCP logins without TLS are refused; the Unix socket counts as secure.
                "--require-secure-transport=ON",
            ]
        return [
            str(self._mariadbd),
            "--no-defaults",
            *self._as_root,
            f"--datadir={self.data_dir}",
            f"--socket={self.socket_path}",
            f"--pid-file={self.work_dir / 'mariadbd.pid'}",
            f"--tmpdir={self.work_dir / 'tmp'}",
            f"--bind-address={HOST}",
            f"--port={self.port}",
            "--skip-name-resolve",
            "--skip-log-bin",
            "--skip-symbolic-links",
            "--log-warnings=1",
            *tls,
            *_TUNING,
        ]

    def _probe(self) -> None:
        self._socket_root().close()

    def _socket_root(self) -> Any:
        """Root over the Unix socket with the empty password mariadb-install-db leaves."""
        import pymysql

        return pymysql.connect(
            unix_socket=str(self.socket_path),
            user="root",
            password="",
            autocommit=True,
            charset="utf8mb4",
            ssl_disabled=True,
            connect_timeout=2,
        )

    def _after_start(self) -> None:
        """Give root a password, drop anonymous and extra root accounts, create ``app``."""
        password = self.admin_password
        with contextlib.closing(self._socket_root()) as conn, conn.cursor() as cur:
            cur.execute(
                "SELECT user, host FROM mysql.user WHERE user = '' "
                "OR (user = 'root' AND host NOT IN ('localhost', %s))",
                (HOST,),
            )
            for user, host in cur.fetchall():
                cur.execute("DROP USER %s@%s", (user, host))
            cur.execute("CREATE USER IF NOT EXISTS 'root'@%s IDENTIFIED BY %s", (HOST, password))
            cur.execute("ALTER USER 'root'@%s IDENTIFIED BY %s", (HOST, password))
            cur.execute("GRANT ALL PRIVILEGES ON *.* TO 'root'@%s WITH GRANT OPTION", (HOST,))
            cur.execute("CREATE DATABASE IF NOT EXISTS `app`")  # APP_DATABASE
            cur.execute("DROP DATABASE IF EXISTS test")
            # Last: after this the socket login needs the password too.
            cur.execute("ALTER USER 'root'@'localhost' IDENTIFIED BY %s", (password,))
            cur.execute("FLUSH PRIVILEGES")

    # -- logins ------------------------------------------------------------------------------

    def connect(self, username: str, password: str, dbname: str | None = None) -> Any:
        """pymysql connection (autocommit, utf8mb4) to ``dbname`` (default none)."""
        import pymysql

        tls: dict[str, Any] = {"ssl_disabled": True}
        if self.ca is not None:
            tls = {"ssl": self.ca.client_context}  # CERT_REQUIRED + check_hostname
        return pymysql.connect(
            host=self.host,
            port=self.port,
            user=username,
            password=password,
            database=dbname,
            autocommit=True,
            charset="utf8mb4",
            connect_timeout=CONNECT_TIMEOUT,
            read_timeout=60,
            write_timeout=60,
            **tls,
        )

    def _login_verdict(self, exc: Exception) -> bool | None:
        import pymysql

        code = exc.args[0] if isinstance(exc, pymysql.err.OperationalError) and exc.args else None
        return False if code in _AUTH_ERRORS else None

    def create_login(
        self, username: str, password: str, *, superuser: bool = False, host: str = "%"
    ) -> None:
        with contextlib.closing(self.admin_connection()) as conn, conn.cursor() as cur:
            cur.execute("CREATE USER %s@%s IDENTIFIED BY %s", (username, host, password))
            cur.execute("GRANT SELECT ON `app`.* TO %s@%s", (username, host))  # APP_DATABASE
            if superuser:
                cur.execute(
                    "GRANT ALL PRIVILEGES ON *.* TO %s@%s WITH GRANT OPTION", (username, host)
                )

    def drop_login(self, username: str, host: str = "%") -> None:
        with contextlib.closing(self.admin_connection()) as conn, conn.cursor() as cur:
            cur.execute("DROP USER IF EXISTS %s@%s", (username, host))


def start_mariadb(
    base_dir: Path | None = None, *, ca: CertificateAuthority | None = None, tls: bool = True
) -> MariaDBServer:
    """Start a throwaway MariaDB (admin ``root`` with a password, database ``app``).

    With TLS (the default) its certificate comes from ``ca``, or from a CA of its own when none
    is given, and TCP logins must use TLS (``require_secure_transport``).
    """
    return MariaDBServer.start(base_dir, ca=ca, tls=tls)
