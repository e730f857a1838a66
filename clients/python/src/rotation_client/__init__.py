"""Connections that survive AWS Secrets Manager rotations.

>>> from rotation_client import RotatingSecret, connect_psycopg2
>>> secret = RotatingSecret("prod/orders/db")
>>> conn = connect_psycopg2(secret, ca_file="/etc/ssl/rds-global-bundle.pem")

Importing this package imports no database driver; each connector imports its own when called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rotation_client.classify import AuthFailureClassifier, is_authentication_failure
from rotation_client.credentials import Credentials
from rotation_client.errors import (
    InsecureConnectionError,
    InvalidSecretError,
    RotationClientError,
    SecretUnavailableError,
)
from rotation_client.retry import RetryPolicy, Timing
from rotation_client.secret import RotatingSecret, Stats
from rotation_client.source import AWSCURRENT, AWSPENDING, CachedSecretSource, SecretSource
from rotation_client.tls import TlsSettings

if TYPE_CHECKING:
    from rotation_client.mysql import connect_pymysql
    from rotation_client.postgres import connect_psycopg, connect_psycopg2
    from rotation_client.redis import RotatingRedis, redis_client
    from rotation_client.sqlalchemy import create_engine, use_secret

__version__ = "0.1.0"

_LAZY = {
    "connect_psycopg2": "rotation_client.postgres",
    "connect_psycopg": "rotation_client.postgres",
    "connect_pymysql": "rotation_client.mysql",
    "redis_client": "rotation_client.redis",
    "RotatingRedis": "rotation_client.redis",
    "create_engine": "rotation_client.sqlalchemy",
    "use_secret": "rotation_client.sqlalchemy",
}

__all__ = [
    "AWSCURRENT",
    "AWSPENDING",
    "AuthFailureClassifier",
    "CachedSecretSource",
    "Credentials",
    "InsecureConnectionError",
    "InvalidSecretError",
    "RetryPolicy",
    "RotatingRedis",
    "RotatingSecret",
    "RotationClientError",
    "SecretSource",
    "SecretUnavailableError",
    "Stats",
    "Timing",
    "TlsSettings",
    "connect_psycopg",
    "connect_psycopg2",
    "connect_pymysql",
    "connect_with",
    "create_engine",
    "is_authentication_failure",
    "redis_client",
    "use_secret",
]


def connect_with(secret: RotatingSecret, connect: Any) -> Any:
    """``connect(credentials)`` for any driver, retried on authentication failure (the same as
    ``secret.run(connect)``)."""
    return secret.run(connect)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'rotation_client' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
