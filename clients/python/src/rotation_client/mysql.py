"""MySQL, MariaDB and Aurora MySQL connections (PyMySQL) that survive rotations.

TLS: an ``ssl.SSLContext`` that verifies the chain against the application's CA file (or the
system store) and checks the host name; one context per CA file and process.
Authentication failures: error 1045 (``ER_ACCESS_DENIED_ERROR``).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from rotation_client.credentials import Credentials
from rotation_client.errors import InsecureConnectionError
from rotation_client.tls import TlsSettings, choose

if TYPE_CHECKING:
    from rotation_client.secret import RotatingSecret

_OWNED = frozenset(
    {
        "user",
        "password",
        "passwd",
        "ssl",
        "ssl_ca",
        "ssl_disabled",
        "ssl_verify_cert",
        "ssl_verify_identity",
        "read_default_file",
    }
)
DEFAULT_CONNECT_TIMEOUT = 10


def connection_params(
    creds: Credentials, tls: TlsSettings, overrides: dict[str, Any] | None = None
) -> dict[str, Any]:
    """``pymysql.connect`` keywords for ``creds``, plus ``overrides`` (any keyword but the
    credentials and TLS ones; ``database``, ``host`` and ``port`` may be overridden)."""
    creds.require("mysql")
    extra = dict(overrides or {})
    owned = sorted(_OWNED.intersection(extra))
    if owned:
        raise InsecureConnectionError(
            f"connection keyword(s) {', '.join(owned)} come from the secret and TlsSettings; "
            "do not pass them"
        )
    if "db" in extra:
        extra.setdefault("database", extra.pop("db"))
    if "dbname" in extra:
        extra.setdefault("database", extra.pop("dbname"))
    choice = choose(creds, tls)
    params: dict[str, Any] = {
        "host": creds.host,
        "port": creds.port,
        "user": creds.username,
        "password": creds.password,
        "database": creds.dbname,
        "connect_timeout": DEFAULT_CONNECT_TIMEOUT,
    }
    if choice.verify:
        params["ssl"] = choice.context()
    else:
        params["ssl_disabled"] = True
    params.update(extra)
    return params


def connect_pymysql(
    secret: RotatingSecret,
    *,
    ca_file: str | os.PathLike[str] | None = None,
    ca_dir: str | os.PathLike[str] | None = None,
    allow_plaintext: bool = False,
    **kwargs: Any,
) -> Any:
    """A ``pymysql`` connection with the secret's credentials, retried on authentication
    failure. ``kwargs`` go to ``pymysql.connect`` (``database``, ``autocommit``, ``charset``,
    ``cursorclass``...)."""
    import pymysql

    tls = TlsSettings(ca_file=ca_file, ca_dir=ca_dir, allow_plaintext=allow_plaintext)

    def connect(creds: Credentials) -> Any:
        return pymysql.connect(**connection_params(creds, tls, kwargs))

    return secret.run(connect)
