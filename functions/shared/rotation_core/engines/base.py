"""The flow every database engine shares, written once (template method).

An engine fills in four operations: open a connection, classify a driver error, change the
logged-in user's own password, and run the read probe. Drivers are imported inside the
subclasses' methods so that the domain package imports without them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

from rotation_core.exceptions import (
    AuthenticationFailedError,
    ProbeFailedError,
    RotationError,
)
from rotation_core.models import DatabaseCredentials


class DatabaseEngine(ABC):
    """Log in, change a password, probe: the resource side of a database rotation."""

    def __init__(self, connect_timeout: int = 5) -> None:
        self.connect_timeout = connect_timeout

    # --- what each engine fills in ------------------------------------------------------------

    @abstractmethod
    def _open(self, creds: DatabaseCredentials) -> Any:
        """Open a driver connection (autocommit), raising the driver's own errors."""

    @abstractmethod
    def _classify(self, exc: Exception, creds: DatabaseCredentials, action: str) -> RotationError:
        """Map a driver error to the taxonomy, with a message free of values."""

    @abstractmethod
    def _set_own_password(self, conn: Any, creds: DatabaseCredentials, new_password: str) -> None:
        """As the logged-in user, change that user's own password."""

    @abstractmethod
    def _probe(self, conn: Any, creds: DatabaseCredentials) -> None:
        """Read probe: raise if the session cannot read as the expected user."""

    @abstractmethod
    def _driver_errors(self) -> tuple[type[Exception], ...]:
        """The driver's base exception classes."""

    @abstractmethod
    def _write_probe(self, conn: Any) -> None:
        """Write something the session can always write (a temporary table), then undo it."""

    @abstractmethod
    def _account(self, conn: Any) -> Any:
        """The account the session logged in as, as the server names it."""

    @abstractmethod
    def _sync_clone(self, conn: Any, original: Any, clone: str, password: str | None) -> None:
        """As the master: create ``clone`` if missing, set its password (unless None), and
        give it everything ``original`` can do."""

    @abstractmethod
    def _set_user_password(self, conn: Any, account: Any, password: str) -> None:
        """As an administrator, set another account's password (``account`` as ``_account``
        names it, or a bare user name)."""

    # --- the shared flow ----------------------------------------------------------------------

    @contextmanager
    def session(self, creds: DatabaseCredentials) -> Iterator[Any]:
        """A connection as ``creds``; driver errors leave as taxonomy errors."""
        conn = self._run(creds, "log in", self._open, creds)
        try:
            yield conn
        finally:
            # closing a broken connection must not mask the error that broke it
            with suppress(Exception):
                conn.close()

    def can_login(self, creds: DatabaseCredentials) -> bool:
        """True if ``creds`` log in; False if refused; other failures propagate."""
        try:
            with self.session(creds):
                return True
        except AuthenticationFailedError:
            return False

    def change_own_password(self, creds: DatabaseCredentials, new_password: str) -> None:
        """Log in as ``creds`` and set that user's password to ``new_password``."""
        with self.session(creds) as conn:
            self._run(creds, "change password", self._set_own_password, conn, creds, new_password)

    def set_password_as(self, admin: DatabaseCredentials, account: Any, password: str) -> None:
        """Log in as ``admin`` (a master secret) and set ``account``'s password."""
        with self.session(admin) as conn:
            self._run(
                admin, "set password as master", self._set_user_password, conn, account, password
            )

    def probe(self, creds: DatabaseCredentials, *, write: bool = False) -> None:
        """Log in as ``creds`` and run the read probe (and the write probe if asked)."""
        with self.session(creds) as conn:
            try:
                self._run(creds, "read probe", self._probe, conn, creds)
                if write:
                    self._run(creds, "write probe", self._write_probe, conn)
            except AuthenticationFailedError as exc:
                raise ProbeFailedError(str(exc)) from None

    # --- alternating users ------------------------------------------------------------------

    def account(self, creds: DatabaseCredentials) -> Any:
        """Log in as ``creds`` (proving they work) and return the account's server-side name."""
        with self.session(creds) as conn:
            return self._run(creds, "read account", self._account, conn)

    def sync_clone(
        self, master: DatabaseCredentials, original: Any, clone: str, password: str | None
    ) -> None:
        """With the master's session, make ``clone`` a working twin of ``original``."""
        with self.session(master) as conn:
            self._run(
                master, "prepare the clone", self._sync_clone, conn, original, clone, password
            )

    def _run(self, creds: DatabaseCredentials, action: str, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except RotationError:
            raise
        except self._driver_errors() as exc:
            raise self._classify(exc, creds, action) from None

    def describe(self, creds: DatabaseCredentials) -> str:
        return f"{creds.username!r} on {creds.host}:{creds.port}"
