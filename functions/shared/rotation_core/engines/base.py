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

    family: str = ""
    #: the engine's limit on a user name, in bytes
    max_username_bytes: int = 0

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

    def probe(self, creds: DatabaseCredentials) -> None:
        """Log in as ``creds`` and run the read probe."""
        with self.session(creds) as conn:
            try:
                self._run(creds, "read probe", self._probe, conn, creds)
            except AuthenticationFailedError as exc:
                raise ProbeFailedError(str(exc)) from None

    def _run(self, creds: DatabaseCredentials, action: str, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except RotationError:
            raise
        except self._driver_errors() as exc:
            raise self._classify(exc, creds, action) from None

    def describe(self, creds: DatabaseCredentials) -> str:
        return f"{creds.username!r} on {creds.host}:{creds.port}"
