"""Logging in to a server, written once for every backend that has logins (databases, Redis).

A connector fills in three operations: open a driver connection, name the driver's error
classes, and classify a driver error into the taxonomy with a message free of values. The
shared part opens sessions, closes them without masking the error that broke them, answers
"do these credentials log in?" and runs operations with driver errors translated. Drivers are
imported inside the subclasses' methods: the package imports without them.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any, Self, TypeVar

from rotation_core.connection import ConnectionPolicy
from rotation_core.exceptions import AuthenticationFailedError, RotationError
from rotation_core.models import DatabaseCredentials

T = TypeVar("T")


class Connector(ABC):
    def __init__(self, policy: ConnectionPolicy | None = None) -> None:
        self.policy = policy or ConnectionPolicy()
        #: a dry run's recorded statements and placeholder password (see :meth:`dry_run`)
        self._recording: tuple[list[str], str] | None = None

    @property
    def connect_timeout(self) -> int:
        return self.policy.connect_timeout()

    # --- what each connector fills in ---------------------------------------------------------

    @abstractmethod
    def _open(self, creds: DatabaseCredentials) -> Any:
        """Open a driver connection (autocommit), raising the driver's own errors."""

    @abstractmethod
    def _driver_errors(self) -> tuple[type[Exception], ...]:
        """The driver's base exception classes."""

    @abstractmethod
    def _classify(self, exc: Exception, creds: DatabaseCredentials, action: str) -> RotationError:
        """Map a driver error to the taxonomy, with a message free of values."""

    # --- the shared part ----------------------------------------------------------------------

    @contextmanager
    def session(self, creds: DatabaseCredentials) -> Iterator[Any]:
        """A connection as ``creds``; driver errors leave as taxonomy errors."""
        conn = self._run(creds, "log in", self._open, creds)
        if self._recording is not None:
            from rotation_core.adapters.dry_run import RecordingConnection

            conn = RecordingConnection(conn, *self._recording)
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

    def _run(self, creds: DatabaseCredentials, action: str, fn: Callable[..., T], *args: Any) -> T:
        try:
            return fn(*args)
        except RotationError:
            raise
        except self._driver_errors() as exc:
            raise self._classify(exc, creds, action) from None

    def dry_run(self, placeholder: str) -> tuple[Self, list[str]]:
        """A copy of this connector whose sessions run reads and record writes (redacted),
        and the list the statements go to. Hand its flows ``placeholder`` as the password."""
        engine = copy.copy(self)
        statements: list[str] = []
        engine._recording = (statements, placeholder)
        return engine, statements

    def describe(self, creds: DatabaseCredentials) -> str:
        return f"{creds.username!r} on {creds.host}:{creds.port}"
