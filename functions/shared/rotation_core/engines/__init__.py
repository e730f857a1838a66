"""Database engines by family; see :mod:`rotation_core.engines.base` for the shared flow."""

from __future__ import annotations

from collections.abc import Callable

from rotation_core.engines.base import DatabaseEngine
from rotation_core.engines.mysql import MySQLEngine
from rotation_core.engines.postgres import PostgresEngine
from rotation_core.models import engine_family

_ENGINES: dict[str, Callable[..., DatabaseEngine]] = {
    "postgres": PostgresEngine,
    "mysql": MySQLEngine,
}


def engine_for(engine: str, connect_timeout: int = 5) -> DatabaseEngine:
    """The adapter for a secret's ``engine`` value (raises UnsupportedEngineError)."""
    return _ENGINES[engine_family(engine)](connect_timeout=connect_timeout)


__all__ = ["DatabaseEngine", "MySQLEngine", "PostgresEngine", "engine_for"]
