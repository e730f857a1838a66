"""Throwaway PostgreSQL, MariaDB and Redis servers that really enforce passwords.

Each server runs from the installed binaries in its own temporary directory, listens on a free
TCP port on 127.0.0.1 and is stopped (directory removed) by ``stop()``, at interpreter exit, or by
a small guardian process if the owning process dies without cleaning up.

PostgreSQL refuses to run as root, so when we are root it runs as the ``postgres`` OS user (or
``nobody``); MariaDB and Redis run as the invoking user (``--user=root`` for MariaDB when root).
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import importlib.util
import logging
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

__all__ = [
    "DatabaseServer",
    "DatabaseServerError",
    "mariadb_available",
    "postgres_available",
    "redis_available",
    "start_mariadb",
    "start_postgres",
    "start_redis",
]

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
APP_DATABASE = "app"  # spelled out in the MariaDB statements below
STARTUP_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0
PORT_ATTEMPTS = 4
LOG_TAIL_LINES = 40
CONNECT_TIMEOUT = 10
# Unix socket paths are limited to 108 bytes on Linux; keep a margin for the file name.
MAX_SOCKET_DIR_LEN = 80
PG_MAX_IDENTIFIER_BYTES = 63

# MariaDB error codes that mean "these credentials were refused".
_MARIADB_AUTH_ERRORS = frozenset(
    {
        1045,  # ER_ACCESS_DENIED_ERROR
        1130,  # ER_HOST_NOT_PRIVILEGED
        1698,  # ER_ACCESS_DENIED_NO_PASSWORD_ERROR
        1862,  # ER_MUST_CHANGE_PASSWORD_LOGIN
        4151,  # ER_ACCOUNT_HAS_BEEN_LOCKED
    }
)
# libpq / PostgreSQL messages (lc_messages=C) that mean "these credentials were refused".
_PG_AUTH_ERRORS = (
    "password authentication failed",
    "is not permitted to log in",
    "no password supplied",
    "pg_hba.conf rejects connection",
    "no pg_hba.conf entry",
)


class DatabaseServerError(RuntimeError):
    """A throwaway server could not be set up or started."""

    def __init__(self, message: str, log_tail: str = "") -> None:
        self.log_tail = log_tail
        super().__init__(f"{message}\n--- server log tail ---\n{log_tail}" if log_tail else message)


class _PortInUseError(DatabaseServerError):
    """The chosen port was taken between picking it and the server binding it."""


# --------------------------------------------------------------------------------------------
# Process bookkeeping: registry for atexit, guardian for a dying owner
# --------------------------------------------------------------------------------------------

_LIVE: dict[int, DatabaseServer] = {}
_LIVE_LOCK = threading.Lock()

# Runs in its own session; the owner keeps the write end of its stdin. EOF without "done" means
# the owner died without stop(): kill the server process groups and remove the directories.
_GUARDIAN_CODE = r"""
import os, shutil, signal, sys, time
signal.signal(signal.SIGINT, signal.SIG_IGN)
groups, paths = [], list(sys.argv[1:])
for raw in sys.stdin.buffer:
    word, _, arg = raw.decode("utf-8", "replace").rstrip("\n").partition(" ")
    if word == "done":
        sys.exit(0)
    if word == "pgid":
        pgid, sig = arg.split()
        groups.append((int(pgid), int(sig)))
    elif word == "path":
        paths.append(arg)
def alive(pgid):
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
for pgid, sig in groups:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass
deadline = time.monotonic() + 10
while any(alive(g) for g, _ in groups) and time.monotonic() < deadline:
    time.sleep(0.1)
for pgid, _ in groups:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
for path in paths:
    shutil.rmtree(path, ignore_errors=True)
"""


class _Guardian:
    """Child process that cleans up after us if we die without calling stop()."""

    def __init__(self, path: Path) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", _GUARDIAN_CODE, str(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            env={"PATH": os.environ.get("PATH", os.defpath)},
        )

    def _send(self, line: str) -> None:
        stdin = self._proc.stdin
        if stdin is None or stdin.closed:
            return
        with contextlib.suppress(OSError, ValueError):
            stdin.write(line.encode() + b"\n")
            stdin.flush()

    def watch_group(self, pgid: int, stop_signal: int) -> None:
        self._send(f"pgid {pgid} {int(stop_signal)}")

    def watch_path(self, path: Path) -> None:
        self._send(f"path {path}")

    def release(self) -> None:
        """Tell the guardian everything was cleaned up normally and let it exit."""
        self._send("done")
        if self._proc.stdin is not None:
            with contextlib.suppress(OSError):
                self._proc.stdin.close()
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()


def _stop_all_at_exit() -> None:
    with _LIVE_LOCK:
        servers = list(_LIVE.values())
    for server in servers:
        if server._owner_pid == os.getpid():
            with contextlib.suppress(Exception):
                server.stop()


atexit.register(_stop_all_at_exit)


def _has_exited(proc: subprocess.Popen[bytes]) -> bool:
    """True if the process has exited, without reaping it (its pgid stays reserved)."""
    if proc.returncode is not None:
        return True
    try:
        info = os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return True
    return info is not None


def _terminate_group(proc: subprocess.Popen[bytes], stop_signal: int, timeout: float) -> None:
    """Ask the leader to stop, wait, then SIGKILL whatever is left of its process group."""
    if not _has_exited(proc):
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, stop_signal)
        deadline = time.monotonic() + timeout
        while not _has_exited(proc) and time.monotonic() < deadline:
            time.sleep(0.02)
    if proc.returncode is None:  # not reaped yet, so the group id cannot have been reused
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


# --------------------------------------------------------------------------------------------
# The server handle
# --------------------------------------------------------------------------------------------


@dataclass(eq=False)
class DatabaseServer:
    """A running throwaway server; use as a context manager or call stop()."""

    engine: str
    host: str
    port: int
    admin_user: str
    admin_password: str = field(repr=False)
    data_dir: Path
    work_dir: Path | None = None  # temp dir holding data_dir, socket and log; removed by stop()
    log_file: Path | None = None
    socket_path: Path | None = None  # PostgreSQL: socket directory; MariaDB: socket file
    os_user: str | None = None  # OS user the server process runs as
    _process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _stop_signal: int = field(default=signal.SIGTERM, init=False, repr=False)
    _guardian: _Guardian | None = field(default=None, init=False, repr=False)
    _extra_dirs: list[Path] = field(default_factory=list, init=False, repr=False)
    _owner_pid: int = field(default_factory=os.getpid, init=False, repr=False)
    _stopped: bool = field(default=False, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        """PID of the server's main process (None once stopped)."""
        return None if self._process is None or self._stopped else self._process.pid

    @property
    def running(self) -> bool:
        """True while the server process is alive."""
        return not self._stopped and self._process is not None and not _has_exited(self._process)

    def stop(self) -> None:
        """Stop the server and remove its temporary directory; safe to call twice."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        with _LIVE_LOCK:
            _LIVE.pop(id(self), None)
        if self._process is not None:
            _terminate_group(self._process, self._stop_signal, STOP_TIMEOUT)
        for path in [self.work_dir, *self._extra_dirs]:
            if path is not None:
                shutil.rmtree(path, ignore_errors=True)
        if self._guardian is not None:
            self._guardian.release()

    def __enter__(self) -> DatabaseServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """Last lines of the server log ('' if there is none)."""
        return _tail(self.log_file, lines)

    # -- connections ------------------------------------------------------------------------

    def connect(self, username: str, password: str, dbname: str | None = None) -> Any:
        """New autocommit TCP connection with these credentials (psycopg2, pymysql or redis).

        dbname defaults to ``postgres`` for PostgreSQL, none for MariaDB, 0 for Redis.
        """
        if self.engine == "postgres":
            import psycopg2

            conn = psycopg2.connect(
                host=self.host,
                port=self.port,
                user=username,
                password=password,
                dbname=dbname or "postgres",
                connect_timeout=CONNECT_TIMEOUT,
                sslmode="disable",
                gssencmode="disable",
                # A file that never exists: libpq must not fall back to ~/.pgpass.
                passfile=str((self.work_dir or self.data_dir) / "no-such.pgpass"),
                application_name="rotator-dbservers",
            )
            conn.autocommit = True
            return conn
        if self.engine == "mariadb":
            import pymysql

            return pymysql.connect(
                host=self.host,
                port=self.port,
                user=username,
                password=password,
                database=dbname,
                autocommit=True,
                charset="utf8mb4",
                ssl_disabled=True,  # the server has no TLS; an SSL context costs ~50 ms per connect
                connect_timeout=CONNECT_TIMEOUT,
                read_timeout=60,
                write_timeout=60,
            )
        if self.engine == "redis":
            import redis
            from redis.backoff import NoBackoff
            from redis.retry import Retry

            client = redis.Redis(
                host=self.host,
                port=self.port,
                username=username,
                password=password,
                db=int(dbname) if dbname else 0,
                socket_connect_timeout=CONNECT_TIMEOUT,
                socket_timeout=60,
                decode_responses=True,
                # redis-py retries ConnectionError (incl. AuthenticationError) with backoff.
                retry=Retry(NoBackoff(), 0),
            )
            client.ping()  # connect and authenticate now, not lazily
            return client
        raise ValueError(f"unknown engine {self.engine!r}")

    def admin_connection(self, dbname: str | None = None) -> Any:
        """New autocommit TCP connection as the admin user, authenticated with its password."""
        return self.connect(self.admin_user, self.admin_password, dbname)

    def can_login(self, username: str, password: str, dbname: str | None = None) -> bool:
        """True if a new TCP login succeeds, False if the credentials are refused.

        Any other failure (server down, unknown database, ...) raises.
        """
        if self.engine == "postgres":
            import psycopg2

            try:
                self.connect(username, password, dbname).close()
            except psycopg2.OperationalError as exc:
                if any(marker in str(exc) for marker in _PG_AUTH_ERRORS):
                    return False
                raise
            return True
        if self.engine == "mariadb":
            import pymysql

            try:
                self.connect(username, password, dbname).close()
            except pymysql.err.OperationalError as exc:
                if exc.args and exc.args[0] in _MARIADB_AUTH_ERRORS:
                    return False
                raise
            return True
        if self.engine == "redis":
            import redis

            try:
                self.connect(username, password, dbname).close()
            except redis.exceptions.AuthenticationError:
                return False
            except redis.exceptions.NoPermissionError:
                return True  # authenticated, merely not allowed to PING
            except redis.exceptions.ResponseError as exc:
                if "WRONGPASS" in str(exc) or "NOAUTH" in str(exc):
                    return False
                raise
            return True
        raise ValueError(f"unknown engine {self.engine!r}")

    # -- users ------------------------------------------------------------------------------

    def create_login(
        self, username: str, password: str, *, superuser: bool = False, host: str = "%"
    ) -> None:
        """Create a login user; superuser=True lets it create and alter other users.

        ``host`` only matters for MariaDB. Raises if the login already exists.
        """
        if self.engine == "postgres":
            from psycopg2 import sql

            if len(username.encode()) > PG_MAX_IDENTIFIER_BYTES:
                raise ValueError("PostgreSQL role names are limited to 63 bytes")
            options = sql.SQL("LOGIN CREATEROLE SUPERUSER" if superuser else "LOGIN")
            statement = sql.SQL("CREATE ROLE {} WITH {} PASSWORD %s").format(
                sql.Identifier(username), options
            )
            with contextlib.closing(self.admin_connection()) as conn, conn.cursor() as cur:
                cur.execute(statement, (password,))
        elif self.engine == "mariadb":
            with contextlib.closing(self.admin_connection()) as conn, conn.cursor() as cur:
                cur.execute("CREATE USER %s@%s IDENTIFIED BY %s", (username, host, password))
                cur.execute("GRANT SELECT ON `app`.* TO %s@%s", (username, host))
                if superuser:
                    cur.execute(
                        "GRANT ALL PRIVILEGES ON *.* TO %s@%s WITH GRANT OPTION", (username, host)
                    )
        elif self.engine == "redis":
            client = self.admin_connection()
            try:
                if client.execute_command("ACL", "GETUSER", username) is not None:
                    raise ValueError("a Redis ACL user with that name already exists")
                client.execute_command(
                    "ACL", "SETUSER", username, "reset", "on", f">{password}", "~*", "&*", "+@all"
                )
            finally:
                client.close()
        else:
            raise ValueError(f"unknown engine {self.engine!r}")

    def drop_login(self, username: str, host: str = "%") -> None:
        """Remove a login user if it exists (PostgreSQL: also what it owns or was granted)."""
        if self.engine == "postgres":
            from psycopg2 import sql

            with contextlib.closing(self.admin_connection()) as conn, conn.cursor() as cur:
                cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (username,))
                if cur.fetchone() is None:
                    return
                cur.execute("SELECT datname FROM pg_database WHERE datallowconn ORDER BY 1")
                databases = [row[0] for row in cur.fetchall()]
            role = sql.Identifier(username)
            for dbname in databases:
                with contextlib.closing(self.admin_connection(dbname)) as conn, conn.cursor() as c:
                    c.execute(sql.SQL("DROP OWNED BY {}").format(role))
            with contextlib.closing(self.admin_connection()) as conn, conn.cursor() as cur:
                cur.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(role))
        elif self.engine == "mariadb":
            with contextlib.closing(self.admin_connection()) as conn, conn.cursor() as cur:
                cur.execute("DROP USER IF EXISTS %s@%s", (username, host))
        elif self.engine == "redis":
            client = self.admin_connection()
            try:
                client.execute_command("ACL", "DELUSER", username)
            finally:
                client.close()
        else:
            raise ValueError(f"unknown engine {self.engine!r}")


# --------------------------------------------------------------------------------------------
# Helpers shared by the engines
# --------------------------------------------------------------------------------------------


def _tail(path: Path | None, lines: int = LOG_TAIL_LINES) -> str:
    if path is None:
        return ""
    try:
        data = path.read_bytes()
    except OSError:
        return ""
    return "\n".join(data.decode("utf-8", "replace").splitlines()[-lines:])


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _which(*names: str) -> Path | None:
    search = os.pathsep.join(
        [os.environ.get("PATH", os.defpath), "/usr/sbin", "/usr/bin", "/usr/local/sbin"]
    )
    for name in names:
        found = shutil.which(name, path=search)
        if found:
            return Path(found)
    return None


@dataclass(frozen=True)
class _RunAs:
    name: str
    uid: int
    gid: int


def _pg_run_as() -> _RunAs | None:
    """The unprivileged OS user for PostgreSQL when we are root, else None (run as ourselves)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        return _RunAs(name, entry.pw_uid, entry.pw_gid)
    raise DatabaseServerError("running as root but neither a 'postgres' nor 'nobody' user exists")


def _user_kwargs(run_as: _RunAs | None) -> dict[str, Any]:
    if run_as is None:
        return {}
    return {"user": run_as.uid, "group": run_as.gid, "extra_groups": []}


def _child_env() -> dict[str, str]:
    """Minimal environment for server processes: none of our credentials leak into them."""
    return {"PATH": os.environ.get("PATH", os.defpath), "LC_ALL": "C", "LANG": "C"}


def _make_work_dir(engine: str, base_dir: Path | None) -> Path:
    if base_dir is not None:
        Path(base_dir).mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f"rotator-{engine}-", dir=base_dir))


def _socket_dir(work_dir: Path, server: DatabaseServer) -> Path:
    """A directory for the Unix socket: inside work_dir unless that path is too long."""
    candidate = work_dir / "sock"
    if len(str(candidate)) <= MAX_SOCKET_DIR_LEN:
        candidate.mkdir(mode=0o700)
        return candidate
    short = Path(tempfile.mkdtemp(prefix=f"rotator-{server.engine}-sock-"))
    server._extra_dirs.append(short)
    if server._guardian is not None:
        server._guardian.watch_path(short)
    return short


def _launch(server: DatabaseServer, argv: list[str], run_as: _RunAs | None) -> None:
    """Start the server in its own process group, logging to server.log_file."""
    assert server.log_file is not None and server.work_dir is not None
    with open(server.log_file, "ab") as log_handle:
        server._process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log_handle,
            stderr=subprocess.STDOUT,
            cwd=server.work_dir,
            env=_child_env(),
            start_new_session=True,
            **_user_kwargs(run_as),
        )
    if server._guardian is not None:
        server._guardian.watch_group(server._process.pid, server._stop_signal)


def _wait_ready(server: DatabaseServer, probe: Callable[[], object]) -> None:
    """Poll probe() until it succeeds; raise with the log tail if the server dies or times out."""
    proc = server._process
    assert proc is not None
    deadline = time.monotonic() + STARTUP_TIMEOUT
    delay = 0.02
    last_error = "no attempt made"
    while True:
        if _has_exited(proc):
            tail = server.log_tail()
            code = proc.wait()
            error_type = (
                _PortInUseError if "Address already in use" in tail else DatabaseServerError
            )
            raise error_type(
                f"{server.engine} exited with code {code} during startup on port {server.port}",
                tail,
            )
        try:
            probe()
        except Exception as exc:  # not accepting connections yet
            last_error = f"{type(exc).__name__}: {exc}".strip()
        else:
            return
        if time.monotonic() >= deadline:
            raise DatabaseServerError(
                f"{server.engine} did not accept connections on {server.host}:{server.port} "
                f"within {STARTUP_TIMEOUT:.0f}s (last error: {last_error})",
                server.log_tail(),
            )
        time.sleep(delay)
        delay = min(delay * 1.5, 0.25)


def _start_with_port_retries(
    server: DatabaseServer,
    build_argv: Callable[[int], list[str]],
    run_as: _RunAs | None,
    probe: Callable[[], object],
) -> None:
    for attempt in range(1, PORT_ATTEMPTS + 1):
        server.port = _free_port()
        _launch(server, build_argv(server.port), run_as)
        try:
            _wait_ready(server, probe)
        except _PortInUseError:
            if attempt == PORT_ATTEMPTS:
                raise
            log.info("%s: port %d was taken, retrying", server.engine, server.port)
            continue
        except BaseException:
            if server._process is not None:
                _terminate_group(server._process, signal.SIGKILL, 5)
            raise
        return


def _register(server: DatabaseServer) -> None:
    with _LIVE_LOCK:
        _LIVE[id(server)] = server


def _new_server(
    engine: str, admin_user: str, base_dir: Path | None, data_name: str
) -> DatabaseServer:
    work_dir = _make_work_dir(engine, base_dir)
    server = DatabaseServer(
        engine=engine,
        host=HOST,
        port=0,
        admin_user=admin_user,
        admin_password=secrets.token_urlsafe(24),
        data_dir=work_dir / data_name,
        work_dir=work_dir,
        log_file=work_dir / f"{engine}.log",
    )
    _register(server)  # so a failure below is still cleaned up at exit
    try:
        server._guardian = _Guardian(work_dir)
    except BaseException:
        server.stop()
        raise
    return server


def _run_checked(
    argv: list[str], what: str, run_as: _RunAs | None, cwd: Path, timeout: float = 120
) -> None:
    try:
        result = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            cwd=cwd,
            env=_child_env(),
            timeout=timeout,
            check=False,
            **_user_kwargs(run_as),
        )
    except subprocess.TimeoutExpired as exc:
        raise DatabaseServerError(f"{what} timed out after {timeout:.0f}s") from exc
    except OSError as exc:
        raise DatabaseServerError(f"{what} could not be run: {exc}") from exc
    if result.returncode != 0:
        output = (result.stdout + result.stderr).decode("utf-8", "replace")
        tail = "\n".join(output.splitlines()[-LOG_TAIL_LINES:])
        raise DatabaseServerError(f"{what} failed with exit code {result.returncode}", tail)


# --------------------------------------------------------------------------------------------
# PostgreSQL
# --------------------------------------------------------------------------------------------


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in path.parent.name.split(".") if part.isdigit())


def _pg_bindir() -> Path | None:
    """Highest system PostgreSQL in /usr/lib/postgresql, else the pgserver wheel's binaries."""
    system = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_version_key, reverse=True)
    candidates = list(system)
    spec = importlib.util.find_spec("pgserver")
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            candidates.append(Path(location) / "pginstall" / "bin")
    for bindir in candidates:
        if all(os.access(bindir / tool, os.X_OK) for tool in ("initdb", "postgres")):
            return bindir
    return None


def _check_reachable(bindir: Path, work_dir: Path, run_as: _RunAs) -> None:
    """Fail early and clearly if the OS user cannot run the binaries or use work_dir."""
    what = (
        f"checking that OS user {run_as.name!r} can run {bindir / 'postgres'} and write "
        f"{work_dir} (the directory and all its parents must be searchable by that user)"
    )
    root = Path("/")
    _run_checked([str(bindir / "postgres"), "--version"], what, run_as, root)
    test = _which("test")
    if test is not None:
        _run_checked(
            [str(test), "-w", str(work_dir), "-a", "-x", str(work_dir)], what, run_as, root
        )


def postgres_available() -> bool:
    """True if initdb and postgres binaries were found."""
    return _pg_bindir() is not None


_PG_HBA = """\
# Written by rotator.dbservers: every connection must present a SCRAM password.
# TYPE  DATABASE  USER  ADDRESS       METHOD
local   all       all                 scram-sha-256
host    all       all   127.0.0.1/32  scram-sha-256
"""


def start_postgres(base_dir: Path | None = None) -> DatabaseServer:
    """Start a throwaway PostgreSQL (superuser ``postgres``, database ``app``) on a free port."""
    bindir = _pg_bindir()
    if bindir is None:
        raise DatabaseServerError("PostgreSQL binaries (initdb, postgres) were not found")
    run_as = _pg_run_as()
    server = _new_server("postgres", "postgres", base_dir, "data")
    server._stop_signal = signal.SIGINT  # "fast" shutdown: does not wait for clients
    server.os_user = run_as.name if run_as else pwd.getpwuid(os.geteuid()).pw_name
    work_dir = server.work_dir
    assert work_dir is not None
    try:
        if run_as is not None:
            os.chown(work_dir, run_as.uid, run_as.gid)
        sock_dir = _socket_dir(work_dir, server)
        if run_as is not None:
            os.chown(sock_dir, run_as.uid, run_as.gid)
        server.socket_path = sock_dir
        if run_as is not None:
            _check_reachable(bindir, work_dir, run_as)
        pwfile = work_dir / "pwfile"
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(server.admin_password + "\n")
        if run_as is not None:
            os.chown(pwfile, run_as.uid, run_as.gid)
        try:
            _run_checked(
                [
                    str(bindir / "initdb"),
                    "--pgdata",
                    str(server.data_dir),
                    "--username",
                    server.admin_user,
                    f"--pwfile={pwfile}",
                    "--auth-host=scram-sha-256",
                    "--auth-local=scram-sha-256",
                    "--encoding=UTF8",
                    "--locale=C",
                    "--no-sync",
                    "--no-instructions",
                ],
                "initdb",
                run_as,
                work_dir,
            )
        finally:
            pwfile.unlink(missing_ok=True)
        hba = server.data_dir / "pg_hba.conf"
        hba.write_text(_PG_HBA)
        if run_as is not None:
            os.chown(hba, run_as.uid, run_as.gid)

        def argv(port: int) -> list[str]:
            settings = {
                "listen_addresses": HOST,
                "port": str(port),
                "unix_socket_directories": str(sock_dir),
                "unix_socket_permissions": "0700",
                "password_encryption": "scram-sha-256",
                "ssl": "off",
                "fsync": "off",
                "synchronous_commit": "off",
                "full_page_writes": "off",
                "max_connections": "50",
                "shared_buffers": "32MB",
                "lc_messages": "C",
                "logging_collector": "off",
                # Never echo failing statements (CREATE ROLE ... PASSWORD) into the log.
                "log_min_error_statement": "panic",
            }
            args = [str(bindir / "postgres"), "-D", str(server.data_dir)]
            for key, value in settings.items():
                args += ["-c", f"{key}={value}"]
            return args

        _start_with_port_retries(server, argv, run_as, lambda: server.admin_connection().close())
        with contextlib.closing(server.admin_connection()) as conn, conn.cursor() as cur:
            from psycopg2 import sql

            cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(APP_DATABASE)))
    except BaseException:
        server.stop()
        raise
    return server


# --------------------------------------------------------------------------------------------
# MariaDB
# --------------------------------------------------------------------------------------------


def _mariadb_binaries() -> tuple[Path, Path] | None:
    server = _which("mariadbd", "mysqld")
    installer = _which("mariadb-install-db", "mysql_install_db")
    if server is None or installer is None:
        return None
    return server, installer


def mariadb_available() -> bool:
    """True if mariadbd/mysqld and mariadb-install-db/mysql_install_db were found."""
    return _mariadb_binaries() is not None


def start_mariadb(base_dir: Path | None = None) -> DatabaseServer:
    """Start a throwaway MariaDB (admin ``root`` with a password, database ``app``)."""
    binaries = _mariadb_binaries()
    if binaries is None:
        raise DatabaseServerError("MariaDB binaries (mariadbd, mariadb-install-db) were not found")
    mariadbd, installer = binaries
    server = _new_server("mariadb", "root", base_dir, "data")
    server.os_user = pwd.getpwuid(os.geteuid()).pw_name
    work_dir = server.work_dir
    assert work_dir is not None
    as_root = ["--user=root"] if os.geteuid() == 0 else []
    tuning = [
        "--innodb-buffer-pool-size=16M",
        "--innodb-log-file-size=4M",
        "--innodb-use-native-aio=0",
        "--innodb-flush-log-at-trx-commit=0",
        "--innodb-doublewrite=0",
        "--character-set-server=utf8mb4",
        "--collation-server=utf8mb4_general_ci",
    ]
    try:
        (work_dir / "tmp").mkdir()
        sock_dir = _socket_dir(work_dir, server)
        server.socket_path = sock_dir / "mysqld.sock"
        _run_checked(
            [
                str(installer),
                "--no-defaults",
                f"--datadir={server.data_dir}",
                *as_root,
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
                "--skip-name-resolve",
                *tuning,
            ],
            "mariadb-install-db",
            None,
            work_dir,
        )

        def argv(port: int) -> list[str]:
            return [
                str(mariadbd),
                "--no-defaults",
                *as_root,
                f"--datadir={server.data_dir}",
                f"--socket={server.socket_path}",
                f"--pid-file={work_dir / 'mariadbd.pid'}",
                f"--tmpdir={work_dir / 'tmp'}",
                f"--bind-address={HOST}",
                f"--port={port}",
                "--skip-name-resolve",
                "--skip-log-bin",
                "--skip-symbolic-links",
                "--log-warnings=1",
                *tuning,
            ]

        _start_with_port_retries(server, argv, None, lambda: _mariadb_socket_root(server).close())
        _secure_mariadb(server)
    except BaseException:
        server.stop()
        raise
    return server


def _mariadb_socket_root(server: DatabaseServer) -> Any:
    """Root over the Unix socket with the empty password mariadb-install-db leaves."""
    import pymysql

    return pymysql.connect(
        unix_socket=str(server.socket_path),
        user="root",
        password="",
        autocommit=True,
        charset="utf8mb4",
        ssl_disabled=True,
        connect_timeout=2,
    )


def _secure_mariadb(server: DatabaseServer) -> None:
    """Give root a password, drop anonymous and extra root accounts, create the app database."""
    password = server.admin_password
    with contextlib.closing(_mariadb_socket_root(server)) as conn, conn.cursor() as cur:
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
        cur.execute("CREATE DATABASE IF NOT EXISTS `app`")
        cur.execute("DROP DATABASE IF EXISTS test")
        # Last: after this the socket login needs the password too.
        cur.execute("ALTER USER 'root'@'localhost' IDENTIFIED BY %s", (password,))
        cur.execute("FLUSH PRIVILEGES")


# --------------------------------------------------------------------------------------------
# Redis
# --------------------------------------------------------------------------------------------


def _redis_binary() -> Path | None:
    return _which("redis-server")


def redis_available() -> bool:
    """True if redis-server was found."""
    return _redis_binary() is not None


def start_redis(base_dir: Path | None = None) -> DatabaseServer:
    """Start a throwaway Redis with ACLs: ``default`` disabled, ``admin`` with a password."""
    binary = _redis_binary()
    if binary is None:
        raise DatabaseServerError("redis-server was not found")
    server = _new_server("redis", "admin", base_dir, "data")
    server.os_user = pwd.getpwuid(os.geteuid()).pw_name
    work_dir = server.work_dir
    assert work_dir is not None
    try:
        server.data_dir.mkdir(mode=0o700)
        digest = hashlib.sha256(server.admin_password.encode()).hexdigest()

        def argv(port: int) -> list[str]:
            config = work_dir / "redis.conf"
            config.unlink(missing_ok=True)
            fd = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(
                    "\n".join(
                        [
                            f"port {port}",
                            f"bind {HOST}",
                            "protected-mode yes",
                            "daemonize no",
                            'logfile ""',
                            f'dir "{server.data_dir}"',
                            'save ""',
                            "appendonly no",
                            "user default off resetpass nocommands",
                            # Only the SHA-256 of the password is written to disk.
                            f"user {server.admin_user} on #{digest} ~* &* +@all",
                            "",
                        ]
                    )
                )
            return [str(binary), str(config)]

        _start_with_port_retries(server, argv, None, lambda: server.admin_connection().close())
    except BaseException:
        server.stop()
        raise
    return server
