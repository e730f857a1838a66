"""PostgreSQL connections (psycopg2 and psycopg 3) that survive rotations.

TLS: ``sslmode=verify-full`` (chain and host name) with ``sslrootcert`` = the application's CA
file, or libpq's ``system`` trust store (libpq 16+) when none is given.

Authentication failures are recognised by the server's message (a failed connection carries no
SQLSTATE in either driver): see :mod:`rotation_client.classify` for what that means on a server
with translated ``lc_messages``.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from rotation_client.credentials import Credentials
from rotation_client.errors import InsecureConnectionError
from rotation_client.tls import TlsSettings, choose

if TYPE_CHECKING:
    from rotation_client.secret import RotatingSecret

#: connection keywords the secret and the TLS settings own; passing them is refused
_OWNED = frozenset({"user", "password", "sslmode", "sslrootcert", "sslcert", "sslkey", "passfile"})
DEFAULT_CONNECT_TIMEOUT = 10


def connection_params(
    creds: Credentials, tls: TlsSettings, overrides: dict[str, Any] | None = None
) -> dict[str, Any]:
    """libpq keywords for ``creds`` (host, port, user, password, dbname, TLS), plus
    ``overrides`` (any libpq keyword but the credentials and TLS ones; ``dbname``, ``host`` and
    ``port`` may be overridden, e.g. for a proxy)."""
    creds.require("postgres")
    extra = dict(overrides or {})
    owned = sorted(_OWNED.intersection(extra))
    if owned:
        raise InsecureConnectionError(
            f"connection keyword(s) {', '.join(owned)} come from the secret and TlsSettings; "
            "do not pass them"
        )
    if "database" in extra:  # psycopg accepts both spellings
        extra.setdefault("dbname", extra.pop("database"))
    choice = choose(creds, tls)
    params: dict[str, Any] = {
        "host": creds.host,
        "port": creds.port,
        "user": creds.username,
        "password": creds.password,
        "dbname": creds.dbname or "postgres",
        "connect_timeout": DEFAULT_CONNECT_TIMEOUT,
        # never fall back to a ~/.pgpass entry: the secret is the only source of the password
        "passfile": os.devnull,
    }
    if choice.verify:
        params.update(sslmode="verify-full", sslrootcert=choice.ca_file or "system")
    else:
        params.update(sslmode="disable")
    params.update(extra)
    return params


def connect_psycopg2(
    secret: RotatingSecret,
    *,
    ca_file: str | os.PathLike[str] | None = None,
    ca_dir: str | os.PathLike[str] | None = None,
    allow_plaintext: bool = False,
    **kwargs: Any,
) -> Any:
    """A ``psycopg2`` connection with the secret's credentials, retried on authentication
    failure. ``kwargs`` go to ``psycopg2.connect`` (``dbname``, ``application_name``,
    ``cursor_factory``, ``options``...)."""
    import psycopg2

    tls = TlsSettings(ca_file=ca_file, ca_dir=ca_dir, allow_plaintext=allow_plaintext)

    def connect(creds: Credentials) -> Any:
        return psycopg2.connect(**connection_params(creds, tls, kwargs))

    return secret.run(connect)


def connect_psycopg(
    secret: RotatingSecret,
    *,
    ca_file: str | os.PathLike[str] | None = None,
    ca_dir: str | os.PathLike[str] | None = None,
    allow_plaintext: bool = False,
    connection_class: Any = None,
    **kwargs: Any,
) -> Any:
    """A psycopg 3 connection (``connection_class.connect``, default ``psycopg.Connection``)
    with the secret's credentials, retried on authentication failure. ``kwargs`` go to
    ``connect`` (``autocommit``, ``row_factory``, ``dbname``, libpq keywords...)."""
    import psycopg

    klass = connection_class or psycopg.Connection
    tls = TlsSettings(ca_file=ca_file, ca_dir=ca_dir, allow_plaintext=allow_plaintext)
    driver_only = {
        k: kwargs.pop(k)
        for k in ("autocommit", "row_factory", "prepare_threshold", "context", "cursor_factory")
        if k in kwargs
    }

    def connect(creds: Credentials) -> Any:
        return klass.connect(**connection_params(creds, tls, kwargs), **driver_only)

    return secret.run(connect)
