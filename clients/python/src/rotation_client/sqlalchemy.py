"""SQLAlchemy engines whose pools get fresh credentials.

Two ways, same effect: every new DBAPI connection of the pool is made by this library's
connector (current credentials, refresh-and-retry on authentication failure, verified TLS).

- :func:`create_engine` builds the engine with a ``creator`` (the URL names only the dialect).
- :func:`use_secret` attaches to an engine you built yourself, through SQLAlchemy's
  ``do_connect`` event: your URL's host, user and password are ignored; its database and your
  ``connect_args`` are kept.

Connections already in the pool stay logged in through a rotation (PostgreSQL and MySQL do not
end sessions when a password changes). ``pool_pre_ping=True`` is still advisable for
connections the server or a proxy closed.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rotation_client.errors import InvalidSecretError

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from rotation_client.secret import RotatingSecret

#: the DBAPI driver used for each secret engine family unless ``driver`` says otherwise
DEFAULT_DRIVERS = {"postgres": "psycopg2", "mysql": "pymysql"}
_DIALECTS = {"postgres": "postgresql", "mysql": "mysql", "mariadb": "mariadb"}
_DRIVERS = {"postgres": ("psycopg2", "psycopg"), "mysql": ("pymysql",)}
#: keys of SQLAlchemy's connect params that the secret and TLS settings own
_OWNED_PARAMS = frozenset(
    {"host", "port", "user", "username", "password", "passwd", "sslmode", "sslrootcert", "ssl"}
)


def _connector(family: str, driver: str) -> Callable[..., Any]:
    if driver not in _DRIVERS.get(family, ()):
        raise InvalidSecretError(
            f"driver {driver!r} does not connect to a {family} secret; use one of "
            + ", ".join(_DRIVERS.get(family, ()))
        )
    if driver == "psycopg2":
        from rotation_client.postgres import connect_psycopg2

        return connect_psycopg2
    if driver == "psycopg":
        from rotation_client.postgres import connect_psycopg

        return connect_psycopg
    from rotation_client.mysql import connect_pymysql

    return connect_pymysql


def create_engine(
    secret: RotatingSecret,
    *,
    driver: str | None = None,
    ca_file: str | os.PathLike[str] | None = None,
    ca_dir: str | os.PathLike[str] | None = None,
    allow_plaintext: bool = False,
    connect_args: dict[str, Any] | None = None,
    **engine_kwargs: Any,
) -> Engine:
    """An engine for the secret's database. ``driver``: ``psycopg2`` (default) or ``psycopg``
    for PostgreSQL, ``pymysql`` for MySQL/MariaDB. ``connect_args`` go to the driver's
    ``connect``; ``engine_kwargs`` to ``sqlalchemy.create_engine`` (``pool_size``,
    ``pool_pre_ping``...)."""
    import sqlalchemy

    creds = secret.credentials()
    family = creds.family
    if family not in DEFAULT_DRIVERS:
        raise InvalidSecretError(
            f"secret field 'engine' is {creds.engine!r}; SQLAlchemy engines need postgres or mysql"
        )
    driver = driver or DEFAULT_DRIVERS[family]
    connect = _connector(family, driver)
    dialect = _DIALECTS["mariadb" if creds.engine == "mariadb" else family]
    options = dict(connect_args or {})

    def creator() -> Any:
        return connect(
            secret, ca_file=ca_file, ca_dir=ca_dir, allow_plaintext=allow_plaintext, **options
        )

    return sqlalchemy.create_engine(f"{dialect}+{driver}://", creator=creator, **engine_kwargs)


def use_secret(
    engine: Engine,
    secret: RotatingSecret,
    *,
    ca_file: str | os.PathLike[str] | None = None,
    ca_dir: str | os.PathLike[str] | None = None,
    allow_plaintext: bool = False,
) -> Engine:
    """Make ``engine`` connect with ``secret`` (a ``do_connect`` listener); returns it."""
    from sqlalchemy import event

    family = secret.credentials().family
    connect = _connector(family, engine.dialect.driver)

    @event.listens_for(engine, "do_connect")
    def _do_connect(dialect: Any, conn_rec: Any, cargs: Any, cparams: dict[str, Any]) -> Any:
        kept = {k: v for k, v in cparams.items() if k not in _OWNED_PARAMS}
        return connect(
            secret, ca_file=ca_file, ca_dir=ca_dir, allow_plaintext=allow_plaintext, **kept
        )

    return engine
