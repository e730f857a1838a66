"""Typed views of secrets, step inputs and password policy. No I/O here."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from rotation_core.exceptions import (
    InvalidConfigurationError,
    InvalidEventError,
    InvalidSecretError,
    UnsupportedEngineError,
)
from rotation_core.schema import validate

STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")  # Secrets Manager's order
STRATEGIES = ("single-user", "alternating-users", "multi-credential")

POSTGRES_ENGINES = frozenset({"postgres", "aurora-postgresql"})
MYSQL_ENGINES = frozenset({"mysql", "mariadb", "aurora-mysql"})
DATABASE_ENGINES = POSTGRES_ENGINES | MYSQL_ENGINES
DEFAULT_PORTS = {"postgres": 5432, "mysql": 3306, "redis": 6379}
#: longest user name each engine accepts, in bytes (MariaDB allows 80, MySQL 32)
USERNAME_LIMITS = {
    "postgres": 63,
    "aurora-postgresql": 63,
    "mysql": 32,
    "aurora-mysql": 32,
    "mariadb": 80,
}


def check_username(username: str, engine: str, *, field_name: str = "username") -> None:
    """Refuse a user name the engine would reject or silently truncate."""
    size, limit = len(username.encode("utf-8")), USERNAME_LIMITS[engine]
    if size > limit:
        raise InvalidSecretError(
            f"secret field '{field_name}': user name {username!r} is {size} bytes;"
            f" {engine} allows at most {limit}"
        )


#: which strategies each kind of secret can use (the router refuses the rest up front)
STRATEGIES_BY_KIND = {
    "database": ("single-user", "alternating-users"),
    "iam": ("multi-credential",),
    "redis": ("multi-credential",),
}
_UNSUPPORTED_HINT = {
    "database": "PostgreSQL and MySQL hold one password per user; use alternating-users",
    "iam": "IAM users hold up to two access keys; use multi-credential",
    "redis": "Redis ACL users hold several passwords; use multi-credential",
}


def secret_kind(data: dict[str, Any], *, what: str = "secret") -> str:
    """'database', 'iam' or 'redis' by the secret's ``engine``, validated against its schema."""
    engine = data.get("engine")
    if engine in DATABASE_ENGINES or not isinstance(engine, str):
        DatabaseCredentials.from_secret(data, what=what)
        return "database"
    if engine == "iam":
        validate(data, "iam-secret", what=what, error=InvalidSecretError)
        return "iam"
    if engine == "redis":
        validate(data, "redis-secret", what=what, error=InvalidSecretError)
        return "redis"
    raise InvalidSecretError(
        f"{what} field 'engine' must be one of "
        + ", ".join(sorted(DATABASE_ENGINES | {"iam", "redis"}))
    )


def check_strategy(kind: str, strategy: str) -> None:
    """Refuse a strategy the backend cannot carry, before anything changes."""
    from rotation_core.exceptions import UnsupportedStrategyError

    if strategy not in STRATEGIES_BY_KIND[kind]:
        raise UnsupportedStrategyError(
            f"strategy {strategy!r} cannot rotate a {kind} secret: {_UNSUPPORTED_HINT[kind]}"
        )


def engine_family(engine: str) -> str:
    """Map a secret's ``engine`` to the adapter family that speaks its protocol."""
    if engine in POSTGRES_ENGINES:
        return "postgres"
    if engine in MYSQL_ENGINES:
        return "mysql"
    raise UnsupportedEngineError(f"secret field 'engine' names an unsupported engine {engine!r}")


def parse_secret_string(secret_string: str | None, *, what: str) -> dict[str, Any]:
    """Parse a SecretString as a JSON object without echoing it on failure."""
    if secret_string is None:
        raise InvalidSecretError(f"{what} has no SecretString (binary secrets are not supported)")
    try:
        data = json.loads(secret_string)
    except ValueError:
        raise InvalidSecretError(f"{what} is not valid JSON") from None
    if not isinstance(data, dict):
        raise InvalidSecretError(f"{what} must be a JSON object")
    return data


@dataclass(frozen=True)
class DatabaseCredentials:
    """One version of a database secret. The password never shows in ``repr``."""

    engine: str
    host: str
    port: int
    username: str
    password: str = field(repr=False)
    dbname: str | None = None
    ssl: bool | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def family(self) -> str:
        return engine_family(self.engine)

    @classmethod
    def from_secret(cls, data: dict[str, Any], *, what: str = "secret") -> DatabaseCredentials:
        """Validate ``data`` against the database secret schema and build credentials."""
        validate(data, "database-secret", what=what, error=InvalidSecretError)
        family = engine_family(data["engine"])
        check_username(data["username"], data["engine"])
        return cls._build(data, DEFAULT_PORTS[family])

    @classmethod
    def _build(cls, data: dict[str, Any], default_port: int) -> DatabaseCredentials:
        ssl = data.get("ssl")
        return cls(
            engine=data["engine"],
            host=data["host"],
            port=int(data.get("port", default_port)),
            username=data["username"],
            password=data["password"],
            dbname=data.get("dbname"),
            ssl=None if ssl is None else str(ssl).lower() == "true",
            raw=dict(data),
        )

    @classmethod
    def from_redis_secret(
        cls, data: dict[str, Any], *, what: str = "secret"
    ) -> DatabaseCredentials:
        """Redis ACL credentials share the shape of a database login."""
        validate(data, "redis-secret", what=what, error=InvalidSecretError)
        return cls._build(data, DEFAULT_PORTS["redis"])

    def same_server_as(self, other: DatabaseCredentials) -> bool:
        return (self.engine, self.host, self.port) == (other.engine, other.host, other.port)

    def same_account_as(self, other: DatabaseCredentials) -> bool:
        return (self.engine, self.host, self.port, self.username) == (
            other.engine,
            other.host,
            other.port,
            other.username,
        )


@dataclass(frozen=True)
class PasswordPolicy:
    """What GetRandomPassword is asked for: per deployment, overridable per secret by tags."""

    length: int = 32
    exclude_characters: str = ":/@\"'\\"

    MIN_LENGTH = 16
    MAX_LENGTH = 128
    LENGTH_TAG = "RotationPasswordLength"
    EXCLUDE_TAG = "RotationExcludeCharacters"

    @classmethod
    def resolve(cls, defaults: PasswordPolicy, tags: dict[str, str]) -> PasswordPolicy:
        """Apply the secret's tags over the deployment's defaults, validating both."""
        length = defaults.length
        if cls.LENGTH_TAG in tags:
            raw = tags[cls.LENGTH_TAG].strip()
            if not raw.isdigit():
                raise InvalidConfigurationError(f"tag '{cls.LENGTH_TAG}' must be a whole number")
            length = int(raw)
        exclude = tags.get(cls.EXCLUDE_TAG, defaults.exclude_characters)
        policy = cls(length=length, exclude_characters=exclude)
        policy.check(source=f"tag '{cls.LENGTH_TAG}'" if cls.LENGTH_TAG in tags else None)
        return policy

    def check(self, source: str | None = None) -> None:
        where = source or "setting 'PasswordLength'"
        if not self.MIN_LENGTH <= self.length <= self.MAX_LENGTH:
            raise InvalidConfigurationError(
                f"{where} must be between {self.MIN_LENGTH} and {self.MAX_LENGTH}"
            )

    def to_input(self) -> dict[str, Any]:
        return {"PasswordLength": self.length, "ExcludeCharacters": self.exclude_characters}

    @classmethod
    def from_input(cls, data: dict[str, Any] | None) -> PasswordPolicy:
        if not data:
            return cls()
        return cls(
            length=int(data.get("PasswordLength", cls.length)),
            exclude_characters=str(data.get("ExcludeCharacters", cls.exclude_characters)),
        )


@dataclass(frozen=True)
class StepInput:
    """What a worker receives from the state machine (identifiers only, never a value)."""

    step: str
    secret_arn: str
    token: str
    strategy: str
    engine: str
    secret_name: str = ""
    policy: PasswordPolicy = field(default_factory=PasswordPolicy)
    write_probe: bool = False
    #: retirement: the version whose credential is retired, and what to do with it
    retiring_version: str | None = None
    action: str | None = None

    @classmethod
    def parse(cls, event: dict[str, Any]) -> StepInput:
        validate(event, "step-input", what="step input", error=InvalidEventError)
        return cls(
            step=event["Step"],
            secret_arn=event["SecretArn"],
            token=event["Token"],
            strategy=event["Strategy"],
            engine=event["Engine"],
            secret_name=event.get("SecretName", ""),
            policy=PasswordPolicy.from_input(event.get("PasswordPolicy")),
            write_probe=bool(event.get("WriteProbe", False)),
            retiring_version=event.get("RetiringVersionId"),
            action=event.get("Action"),
        )

    @property
    def encryption_context(self) -> dict[str, str]:
        """Binds a sealed credential to this secret and this rotation."""
        return {"SecretArn": self.secret_arn, "ClientRequestToken": self.token}
