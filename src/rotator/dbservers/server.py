"""The server handle every engine shares: lifecycle, clean-up guarantees, the login check.

Starting is one flow written once (``DatabaseServer.start``); each engine fills in how to prepare
its data directory, its command line, its readiness probe and what to do once it runs, and how
to connect, create and drop a login.

Clean-up: ``stop()`` (also at interpreter exit) stops the process group and removes the work
directory; a guardian process does the same if the owner dies without running either.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import pwd
import secrets
import shutil
import signal
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Self

from mirakuru.exceptions import ProcessFinishedWithError

from rotator.dbservers.guardian import Guardian
from rotator.dbservers.process import (
    HOST,
    LOG_TAIL_LINES,
    RunAs,
    ServerProcess,
    make_work_dir,
    short_dir_for_socket,
    start_server_process,
    tail,
)
from rotator.dbservers.tls import CertificateAuthority, ServerCertificate

log = logging.getLogger(__name__)

APP_DATABASE = "app"
CONNECT_TIMEOUT = 10


@dataclass(eq=False)
class DatabaseServer(ABC):
    """A running throwaway server; use as a context manager or call stop()."""

    engine: ClassVar[str]
    admin_user: ClassVar[str]
    stop_signal: ClassVar[int] = signal.SIGTERM

    work_dir: Path  # holds data, socket, log and certificates; removed by stop()
    ca: CertificateAuthority | None = None  # None: plaintext (only for a transition)
    host: str = HOST
    port: int = 0
    admin_password: str = field(default_factory=lambda: secrets.token_urlsafe(24), repr=False)
    socket_path: Path | None = None  # PostgreSQL: socket directory; MariaDB: socket file
    os_user: str = field(default_factory=lambda: pwd.getpwuid(os.geteuid()).pw_name)
    _run_as: RunAs | None = field(default=None, init=False, repr=False)
    _process: ServerProcess | None = field(default=None, init=False, repr=False)
    _guardian: Guardian | None = field(default=None, init=False, repr=False)
    _extra_dirs: list[Path] = field(default_factory=list, init=False, repr=False)
    _owner_pid: int = field(default_factory=os.getpid, init=False, repr=False)
    _stopped: bool = field(default=False, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _certificate: ServerCertificate | None = field(default=None, init=False, repr=False)

    # -- starting (the flow every engine shares) ---------------------------------------------

    @classmethod
    def start(
        cls,
        base_dir: Path | None = None,
        *,
        ca: CertificateAuthority | None = None,
        tls: bool = True,
    ) -> Self:
        """Start a server with TLS (certificate from ``ca``, or from a CA of its own)."""
        server = cls(work_dir=make_work_dir(cls.engine, base_dir))
        _register(server)  # so a failure below is still cleaned up at exit
        try:
            server._guardian = Guardian(server.work_dir)
            server._run_as = server._unprivileged_user()
            if server._run_as is not None:
                server.os_user = server._run_as.name
                server._run_as.give(server.work_dir)
            if tls:
                server.ca = ca or CertificateAuthority(server.work_dir / "ca")
                server._certificate = server._issue_certificate()
            server._prepare()

            def argv(port: int) -> list[str]:
                server.port = port
                return server._argv()

            server._process, server.port = start_server_process(
                cls.engine,
                argv,
                cwd=server.work_dir,
                log_file=server.log_file,
                run_as=server._run_as,
                stop_signal=cls.stop_signal,
                probe=server._probe,
                on_spawn=server._watch_group,
            )
            server._after_start()
        except BaseException:
            server.stop()
            raise
        return server

    def _unprivileged_user(self) -> RunAs | None:
        """The OS user to run as, if not ourselves (PostgreSQL refuses root)."""
        return None

    @abstractmethod
    def _prepare(self) -> None:
        """Create the data directory and configuration (the port is not known yet)."""

    @abstractmethod
    def _argv(self) -> list[str]:
        """The server's command line for ``self.port``."""

    def _probe(self) -> None:
        """Raise unless the server accepts a login yet."""
        self.admin_connection().close()

    def _after_start(self) -> None:  # noqa: B027 - optional hook
        """Finish setting up once the server runs (databases, accounts)."""

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def data_dir(self) -> Path:
        return self.work_dir / "data"

    @property
    def log_file(self) -> Path:
        return self.work_dir / f"{self.engine}.log"

    @property
    def ca_file(self) -> Path | None:
        """The PEM of the CA that issued this server's certificate (None without TLS)."""
        return None if self.ca is None else self.ca.ca_file

    @property
    def tls(self) -> bool:
        return self.ca is not None

    @property
    def pid(self) -> int | None:
        """PID of the server's main process (None once stopped)."""
        return None if self._process is None or self._stopped else self._process.pid

    @property
    def running(self) -> bool:
        """True while the server process is alive."""
        return not self._stopped and self._process is not None and self._process.running()

    def stop(self) -> None:
        """Stop the server and remove its temporary directory; safe to call twice."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        _forget(self)
        if self._process is not None:
            try:
                self._process.stop()
            except ProcessFinishedWithError as exc:
                log.info("%s exited with code %s when stopped", self.engine, exc.exit_code)
        for path in [self.work_dir, *self._extra_dirs]:
            shutil.rmtree(path, ignore_errors=True)
        if self._guardian is not None:
            self._guardian.release()

    def __enter__(self) -> Self:
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
        return tail(self.log_file, lines)

    # -- logins ------------------------------------------------------------------------------

    @abstractmethod
    def connect(self, username: str, password: str, dbname: str | None = None) -> Any:
        """New autocommit TCP connection with these credentials, over verified TLS."""

    def admin_connection(self, dbname: str | None = None) -> Any:
        """New autocommit TCP connection as the admin user, authenticated with its password."""
        return self.connect(self.admin_user, self.admin_password, dbname)

    def can_login(self, username: str, password: str, dbname: str | None = None) -> bool:
        """True if a new TCP login succeeds, False if the credentials are refused.

        Any other failure (server down, certificate refused, unknown database, ...) raises.
        """
        try:
            self.connect(username, password, dbname).close()
        except Exception as exc:
            verdict = self._login_verdict(exc)
            if verdict is None:
                raise
            return verdict
        return True

    @abstractmethod
    def _login_verdict(self, exc: Exception) -> bool | None:
        """Whether this connect error still means "logged in" (True), "refused" (False), or
        neither (None: re-raise)."""

    @abstractmethod
    def create_login(
        self, username: str, password: str, *, superuser: bool = False, host: str = "%"
    ) -> None:
        """Create a login; superuser=True lets it create and alter other logins.

        ``host`` only matters for MariaDB. Raises if the login already exists.
        """

    @abstractmethod
    def drop_login(self, username: str, host: str = "%") -> None:
        """Remove a login if it exists (and what it owns where the engine requires that)."""

    # -- helpers for the engines -------------------------------------------------------------

    def _issue_certificate(self) -> ServerCertificate:
        """This server's certificate, in ``work_dir/tls``, readable by the server's OS user."""
        assert self.ca is not None
        certificate = self.ca.issue_server_certificate(self.work_dir / "tls")
        if self._run_as is not None:
            self._run_as.give(
                certificate.cert_file.parent, certificate.cert_file, certificate.key_file
            )
        return certificate

    def _socket_dir(self) -> Path:
        """A directory for the Unix socket, removed with the server."""
        directory, outside = short_dir_for_socket(self.work_dir, self.engine)
        if outside:
            self._extra_dirs.append(directory)
            if self._guardian is not None:
                self._guardian.watch_path(directory)
        if self._run_as is not None:
            self._run_as.give(directory)
        return directory

    def _watch_group(self, pgid: int) -> None:
        if self._guardian is not None:
            self._guardian.watch_group(pgid, self.stop_signal)


# --- servers still running at interpreter exit ------------------------------------------------

_LIVE: dict[int, DatabaseServer] = {}
_LIVE_LOCK = threading.Lock()


def _register(server: DatabaseServer) -> None:
    with _LIVE_LOCK:
        _LIVE[id(server)] = server


def _forget(server: DatabaseServer) -> None:
    with _LIVE_LOCK:
        _LIVE.pop(id(server), None)


def _stop_all_at_exit() -> None:
    with _LIVE_LOCK:
        servers = list(_LIVE.values())
    for server in servers:
        if server._owner_pid == os.getpid():  # not in a forked child
            with contextlib.suppress(Exception):
                server.stop()


atexit.register(_stop_all_at_exit)
