"""Dry runs of the engines' real statements: reads run, writes are recorded, never sent.

``rotator plan`` shows the statements a rotation would run. Rather than a second copy of the
SQL, the engine's own flow runs over a connection that passes reads (``SELECT``, ``SHOW``: what
the flow inspects to decide) to the server and records every other statement, rendered by the
driver and with every password literal replaced by ``<redacted>``. The flow is handed a
placeholder password, never a real one, and the placeholder is redacted too.
"""

from __future__ import annotations

import re
from typing import Any

#: what follows these keywords in MySQL/PostgreSQL statements is a password or its hash
_PASSWORD_LITERAL = re.compile(
    r"(?i)(\bPASSWORD\s*(?:=\s*)?(?:\(\s*)?|\bIDENTIFIED\s+BY\s+(?:PASSWORD\s+)?)E?'(?:[^']|'')*'"
)
_READS = ("SELECT", "SHOW")
REDACTED = "<redacted>"


class DivergedError(Exception):
    """A read depends on a write the dry run did not make: later statements are unknown."""


def redact(statement: str, *values: str) -> str:
    """The statement with password literals (and ``values``) replaced by ``<redacted>``."""
    text = _PASSWORD_LITERAL.sub(lambda m: m.group(1) + "'" + REDACTED + "'", statement)
    for value in values:
        if value:
            text = text.replace(value, REDACTED)
    return text


def driver_connection(conn: Any) -> Any:
    """The driver's own connection (for driver functions that need one, e.g. libpq's
    password hashing), whether or not a dry run wraps it."""
    return conn._conn if isinstance(conn, RecordingConnection) else conn


class RecordingConnection:
    """A driver connection whose cursors run reads and record everything else."""

    def __init__(self, conn: Any, statements: list[str], placeholder: str) -> None:
        self._conn, self._statements, self._placeholder = conn, statements, placeholder

    def cursor(self, *args: Any, **kwargs: Any) -> RecordingCursor:
        return RecordingCursor(self._conn.cursor(*args, **kwargs), self._statements, self)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


class RecordingCursor:
    def __init__(self, cursor: Any, statements: list[str], conn: RecordingConnection) -> None:
        self._cursor, self._statements, self._conn = cursor, statements, conn

    def execute(self, statement: Any, params: Any = None) -> Any:
        rendered = self._cursor.mogrify(statement, params)
        text = rendered.decode() if isinstance(rendered, bytes) else str(rendered)
        if text.lstrip().split(None, 1)[0].upper() in _READS:
            try:
                return self._cursor.execute(statement, params)
            except Exception:
                if self._statements:  # e.g. grants of a user the dry run did not create
                    raise DivergedError from None
                raise
        self._statements.append(redact(" ".join(text.split()), self._conn._placeholder))
        return None

    def __enter__(self) -> RecordingCursor:
        return self

    def __exit__(self, *exc: Any) -> None:
        self._cursor.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)
