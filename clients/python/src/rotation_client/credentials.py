"""A secret's value, parsed: the JSON shape of AWS's rotation templates.

Database secrets: ``engine``, ``host``, ``port``, ``username``, ``password``, optional ``dbname``,
``ssl`` (true or absent: verify TLS; false: plaintext) and ``ca_bundle`` (a CA bundle's name).
Redis secrets: the same without ``dbname``. IAM secrets: ``access_key_id`` and
``secret_access_key``. Other keys (``masterarn``, your own) are kept in ``fields``.

Errors name the field and never show a value.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rotation_client.errors import InvalidSecretError

POSTGRES_ENGINES = frozenset({"postgres", "aurora-postgresql"})
MYSQL_ENGINES = frozenset({"mysql", "mariadb", "aurora-mysql"})
REDIS_ENGINES = frozenset({"redis"})
IAM_ENGINES = frozenset({"iam"})
DEFAULT_PORTS = {
    **dict.fromkeys(POSTGRES_ENGINES, 5432),
    **dict.fromkeys(MYSQL_ENGINES, 3306),
    "redis": 6379,
}
#: the bundle names the rotation service accepts in ``ca_bundle``
BUNDLE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


@dataclass(frozen=True)
class Credentials:
    """One version of a secret. Equality compares what a login uses (not the version id), so two
    versions holding the same password are the same credentials."""

    engine: str
    username: str
    password: str = field(repr=False)
    host: str | None = None
    port: int | None = None
    dbname: str | None = None
    ssl: bool = True
    ca_bundle: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = field(default=None, repr=False)
    #: the Secrets Manager version this came from, when known
    version_id: str | None = field(default=None, compare=False)
    #: every key of the secret, including those this class does not name
    fields: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_secret_string(cls, text: str | None, *, version_id: str | None = None) -> Credentials:
        """Parse a SecretString. Raises InvalidSecretError naming the problem, never a value."""
        if text is None:
            raise InvalidSecretError(
                "the secret has no SecretString (binary secrets are not supported)"
            )
        try:
            data = json.loads(text)
        except ValueError:
            raise InvalidSecretError("the secret's value is not JSON") from None
        return cls.from_mapping(data, version_id=version_id)

    @classmethod
    def from_mapping(cls, data: Any, *, version_id: str | None = None) -> Credentials:
        if not isinstance(data, Mapping):
            raise InvalidSecretError("the secret's value must be a JSON object")
        engine = _required(data, "engine").lower()
        if engine in IAM_ENGINES:
            return cls(
                engine=engine,
                username=_text(data, "username") or "",
                password="",
                access_key_id=_required(data, "access_key_id"),
                secret_access_key=_required(data, "secret_access_key"),
                version_id=version_id,
                fields=dict(data),
            )
        if engine not in DEFAULT_PORTS:
            raise InvalidSecretError(
                "secret field 'engine' must be one of: "
                + ", ".join(sorted([*DEFAULT_PORTS, "iam"]))
            )
        bundle = _text(data, "ca_bundle")
        if bundle is not None and not BUNDLE_NAME.fullmatch(bundle):
            raise InvalidSecretError(
                "secret field 'ca_bundle' must be a bundle name (letters, digits, '.', '_', '-')"
            )
        return cls(
            engine=engine,
            username=_required(data, "username"),
            password=_required(data, "password"),
            host=_required(data, "host"),
            port=_port(data, engine),
            dbname=None if engine in REDIS_ENGINES else _text(data, "dbname"),
            ssl=_ssl(data),
            ca_bundle=bundle,
            version_id=version_id,
            fields=dict(data),
        )

    @property
    def family(self) -> str:
        """``postgres``, ``mysql``, ``redis`` or ``iam``."""
        if self.engine in POSTGRES_ENGINES:
            return "postgres"
        if self.engine in MYSQL_ENGINES:
            return "mysql"
        return self.engine

    def require(self, *families: str) -> None:
        """Raise InvalidSecretError unless this secret is for one of ``families``."""
        if self.family not in families:
            raise InvalidSecretError(
                f"secret field 'engine' is {self.engine!r}; this connector needs "
                + " or ".join(families)
            )


def _required(data: Mapping[str, Any], name: str) -> str:
    value = _text(data, name)
    if value is None:
        raise InvalidSecretError(f"secret field {name!r} is missing")
    return value


def _text(data: Mapping[str, Any], name: str) -> str | None:
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise InvalidSecretError(f"secret field {name!r} must be a non-empty string")
    if "\x00" in value:
        raise InvalidSecretError(f"secret field {name!r} contains a NUL character")
    return value


def _port(data: Mapping[str, Any], engine: str) -> int:
    value = data.get("port")
    if value is None:
        return DEFAULT_PORTS[engine]
    if isinstance(value, bool):
        raise InvalidSecretError("secret field 'port' must be a number from 1 to 65535")
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    if not isinstance(value, int) or not 1 <= value <= 65535:
        raise InvalidSecretError("secret field 'port' must be a number from 1 to 65535")
    return value


def _ssl(data: Mapping[str, Any]) -> bool:
    """AWS's templates accept a boolean or the strings "true"/"false" (any case)."""
    value = data.get("ssl")
    if value is None:
        return True
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise InvalidSecretError("secret field 'ssl' must be true or false")
