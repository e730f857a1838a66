"""Adapters: the ports implemented over boto3 and the database drivers.

Secrets Manager (:mod:`.secretsmanager`), KMS (:mod:`.kms`), Step Functions
(:mod:`.stepfunctions`), the database engines (:mod:`.postgres`, :mod:`.mysql` on the shared
flow of :mod:`.database`) and the multi-credential backends (:mod:`.credentials`). Only
:mod:`rotation_core.handlers` builds them; the domain sees the ports.
"""

from __future__ import annotations

from collections.abc import Callable

from rotation_core.adapters.database import DatabaseEngine
from rotation_core.adapters.mysql import MySQLEngine
from rotation_core.adapters.postgres import PostgresEngine
from rotation_core.connection import ConnectionPolicy
from rotation_core.models import engine_family

_ENGINES: dict[str, Callable[[ConnectionPolicy | None], DatabaseEngine]] = {
    "postgres": PostgresEngine,
    "mysql": MySQLEngine,
}


def engine_for(engine: str, policy: ConnectionPolicy | None = None) -> DatabaseEngine:
    """The adapter for a secret's ``engine`` value (raises UnsupportedEngineError)."""
    return _ENGINES[engine_family(engine)](policy)


__all__ = ["DatabaseEngine", "MySQLEngine", "PostgresEngine", "engine_for"]
