"""Typed views of secrets, their metadata, step inputs and password policy. No I/O here.

One model per kind of secret: :class:`DatabaseCredentials` (PostgreSQL, MySQL, MariaDB),
:class:`RedisCredentials` (Redis ACL users) and :class:`IamAccessKey` (IAM users); each is
validated against its JSON schema when built and keeps the secret's other keys in ``raw``, so
a rotation carries them to the next version untouched.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from rotation_core.exceptions import (
    InvalidConfigurationError,
    InvalidEventError,
    InvalidSecretError,
    UnsupportedEngineError,
)
from rotation_core.schema import validate
from rotation_core.vocabulary import RetireAction, Stage, Step, Strategy

STEPS = tuple(str(step) for step in Step)  # Secrets Manager's order
#: the version of the execution input the router writes; workers read this one and every
#: earlier one (1 = no InputVersion field), and refuse later ones by name (schema enum)
STEP_INPUT_VERSION = 2
STRATEGIES = tuple(str(strategy) for strategy in Strategy)

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


#: what a database secret can use; every other kind (one schema per multi-credential
#: backend: iam, redis, ...) holds several credentials per identity: multi-credential only
DATABASE_STRATEGIES = (Strategy.SINGLE_USER, Strategy.ALTERNATING_USERS)


def credential_kinds() -> list[str]:
    """The non-database secret engines, one per ``<engine>-secret`` schema shipped."""
    from importlib import resources

    names = (p.name for p in resources.files("rotation_core.schemas").iterdir())
    return sorted(
        n.removesuffix("-secret.schema.json")
        for n in names
        if n.endswith("-secret.schema.json") and n != "database-secret.schema.json"
    )


def secret_kind(data: dict[str, Any], *, what: str = "secret") -> str:
    """'database', or the engine of a multi-credential backend (``iam``, ``redis``, ...), by the
    secret's ``engine``; the value is validated against that kind's schema."""
    engine = data.get("engine")
    if engine in DATABASE_ENGINES or not isinstance(engine, str):
        DatabaseCredentials.from_secret(data, what=what)
        return "database"
    if engine in credential_kinds():
        validate(data, f"{engine}-secret", what=what, error=InvalidSecretError)
        return engine
    raise InvalidSecretError(
        f"{what} field 'engine' must be one of "
        + ", ".join(sorted(DATABASE_ENGINES | set(credential_kinds())))
    )


def check_strategy(kind: str, strategy: str) -> None:
    """Refuse a strategy the backend cannot carry, before anything changes."""
    from rotation_core.exceptions import UnsupportedStrategyError

    if kind == "database" and strategy not in DATABASE_STRATEGIES:
        raise UnsupportedStrategyError(
            f"strategy {strategy!r} cannot rotate a database secret: PostgreSQL and MySQL hold "
            "one password per user; use alternating-users"
        )
    if kind != "database" and strategy != Strategy.MULTI_CREDENTIAL:
        raise UnsupportedStrategyError(
            f"strategy {strategy!r} cannot rotate a {kind} secret: it holds several credentials "
            "per identity; use multi-credential"
        )


def engine_family(engine: str) -> str:
    """Map a secret's ``engine`` to the adapter family that speaks its protocol."""
    if engine in POSTGRES_ENGINES:
        return "postgres"
    if engine in MYSQL_ENGINES:
        return "mysql"
    raise UnsupportedEngineError(f"secret field 'engine' names an unsupported engine {engine!r}")


_FIELD_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
#: deepest nesting of objects/arrays a secret may have (AWS's own templates use flat objects)
MAX_NESTING = 32


def parse_secret_string(secret_string: str | None, *, what: str) -> dict[str, Any]:
    """Parse a SecretString as a JSON object without echoing it on failure.

    Nesting is checked before parsing: a deeply nested value would otherwise crash the parser
    (RecursionError) and name no field.
    """
    if secret_string is None:
        raise InvalidSecretError(f"{what} has no SecretString (binary secrets are not supported)")
    too_deep = _field_nested_too_deep(secret_string, MAX_NESTING)
    if too_deep is not None:
        raise InvalidSecretError(
            f"{what} field '{too_deep}' is nested more than {MAX_NESTING} levels deep"
        )
    try:
        data = json.loads(secret_string)
    except (ValueError, RecursionError):
        raise InvalidSecretError(f"{what} is not valid JSON") from None
    if not isinstance(data, dict):
        raise InvalidSecretError(f"{what} must be a JSON object")
    return data


def _field_nested_too_deep(text: str, limit: int) -> str | None:
    """The top-level key under which ``text`` nests deeper than ``limit`` ('(root)' if none),
    or None. A scan of brackets outside strings: no parsing, no recursion."""
    depth, in_string, escaped = 0, False, False
    start, last_key_candidate, key = 0, "", "(root)"
    for at, char in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
                if depth == 1:
                    last_key_candidate = text[start:at]
            continue
        if char == '"':
            in_string, start = True, at + 1
        elif char == ":" and depth == 1:
            # a key is named only when it looks like a field name (never echo arbitrary text)
            plain = _FIELD_NAME.fullmatch(last_key_candidate)
            key = last_key_candidate if plain else "(a top-level key)"
        elif char in "{[":
            depth += 1
            if depth > limit:
                return key
        elif char in "}]":
            depth -= 1
    return None


@dataclass(frozen=True)
class DatabaseCredentials:
    """One version of a database secret. The password never shows in ``repr``."""

    engine: str
    host: str
    port: int
    username: str
    password: str = field(repr=False)
    dbname: str | None = None
    #: None (absent) and True mean verified TLS; False asks for plaintext (see rotation_core.tls)
    ssl: bool | None = None
    #: name of a CA bundle shipped in the layer (overrides the deployment's CaBundle)
    ca_bundle: str | None = None
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
        check_password_alphabet(data["password"], family, what=what)
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
            ca_bundle=data.get("ca_bundle"),
            raw=dict(data),
        )

    @classmethod
    def from_redis_secret(
        cls, data: dict[str, Any], *, what: str = "secret"
    ) -> DatabaseCredentials:
        """Redis ACL credentials share the shape of a database login."""
        return RedisCredentials.from_secret(data, what=what)

    def same_server_as(self, other: DatabaseCredentials) -> bool:
        return (self.engine, self.host, self.port) == (other.engine, other.host, other.port)

    def same_account_as(self, other: DatabaseCredentials) -> bool:
        return (self.engine, self.host, self.port, self.username) == (
            other.engine,
            other.host,
            other.port,
            other.username,
        )


class RedisCredentials(DatabaseCredentials):
    """One version of a Redis ACL user's secret (a login like a database's)."""

    @classmethod
    def from_secret(cls, data: dict[str, Any], *, what: str = "secret") -> RedisCredentials:
        validate(data, "redis-secret", what=what, error=InvalidSecretError)
        built = cls._build(data, DEFAULT_PORTS["redis"])
        assert isinstance(built, RedisCredentials)
        return built


@dataclass(frozen=True)
class IamAccessKey:
    """One version of an IAM user's access-key secret. The secret key never shows in ``repr``."""

    username: str
    access_key_id: str
    secret_access_key: str = field(repr=False)
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_secret(cls, data: dict[str, Any], *, what: str = "secret") -> IamAccessKey:
        validate(data, "iam-secret", what=what, error=InvalidSecretError)
        return cls(
            username=data["username"],
            access_key_id=data["access_key_id"],
            secret_access_key=data["secret_access_key"],
            raw=dict(data),
        )


#: What each engine family's driver can carry in a password. PyMySQL sends the password as
#: Latin-1 while the server hashes what the statement carried in utf8mb4, so only printable
#: ASCII means the same on both sides (anything else either fails to encode, putting the
#: character into a driver message, or sets a password nobody can log in with).
_PASSWORD_ALPHABETS: dict[str, tuple[re.Pattern[str], str]] = {
    "mysql": (re.compile(r"[\x20-\x7e]+"), "MySQL and MariaDB passwords must be printable ASCII"),
}


def check_password_alphabet(password: str, family: str, *, what: str = "secret") -> None:
    """Refuse a password the engine's driver cannot carry, naming the field, never the value."""
    rule = _PASSWORD_ALPHABETS.get(family)
    if rule is not None and not rule[0].fullmatch(password):
        raise InvalidSecretError(
            f"{what} field 'password' has characters this engine cannot use ({rule[1]})"
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

    step: Step
    secret_arn: str
    token: str
    strategy: Strategy
    engine: str
    secret_name: str = ""
    policy: PasswordPolicy = field(default_factory=PasswordPolicy)
    write_probe: bool = False
    #: retirement: the version whose credential is retired, and what to do with it
    retiring_version: str | None = None
    action: RetireAction | None = None

    @classmethod
    def parse(cls, event: dict[str, Any]) -> StepInput:
        validate(event, "step-input", what="step input", error=InvalidEventError)
        action = event.get("Action")
        return cls(
            step=Step(event["Step"]),
            secret_arn=event["SecretArn"],
            token=event["Token"],
            strategy=Strategy(event["Strategy"]),
            engine=event["Engine"],
            secret_name=event.get("SecretName", ""),
            policy=PasswordPolicy.from_input(event.get("PasswordPolicy")),
            write_probe=bool(event.get("WriteProbe", False)),
            retiring_version=event.get("RetiringVersionId"),
            action=RetireAction(action) if action else None,
        )

    @property
    def encryption_context(self) -> dict[str, str]:
        """Binds a sealed credential to this secret and this rotation."""
        return {"SecretArn": self.secret_arn, "ClientRequestToken": self.token}


# --- the credential a createSecret worker hands to the router -----------------------------------

#: the only secret fields a worker may propose; the router takes the rest from AWSCURRENT
CREDENTIAL_FIELDS = frozenset({"username", "password", "access_key_id", "secret_access_key"})
SEALED_SCHEMA_VERSION = 1


def sealed_credential(credential: dict[str, Any]) -> dict[str, Any]:
    """The versioned document a worker seals: credential fields only."""
    unknown = set(credential) - CREDENTIAL_FIELDS
    if unknown:
        raise InvalidSecretError(
            f"a sealed credential may carry only {sorted(CREDENTIAL_FIELDS)}; got extra keys"
        )
    return {"SchemaVersion": SEALED_SCHEMA_VERSION, "Credential": dict(credential)}


def open_sealed_credential(document: Any) -> dict[str, Any]:
    """The credential fields of an unsealed document, refusing anything else."""
    if not isinstance(document, dict) or document.get("SchemaVersion") != SEALED_SCHEMA_VERSION:
        raise InvalidSecretError(
            f"sealed credential must have SchemaVersion {SEALED_SCHEMA_VERSION}"
        )
    credential = document.get("Credential")
    if (
        not isinstance(credential, dict)
        or not credential
        or set(credential) - CREDENTIAL_FIELDS
        or not all(isinstance(v, str) for v in credential.values())
    ):
        raise InvalidSecretError(
            "sealed credential field 'Credential' must hold only string credential fields"
        )
    return dict(credential)


# --- what Secrets Manager says about a secret --------------------------------------------------


@dataclass(frozen=True)
class SecretMetadata:
    """DescribeSecret, as the rotation needs it (no value)."""

    arn: str
    name: str
    rotation_enabled: bool
    rotation_lambda_arn: str | None
    versions: dict[str, list[str]]
    tags: dict[str, str] = field(default_factory=dict)
    #: when the last rotation completed (Secrets Manager's LastRotatedDate), if ever
    last_rotated: datetime | None = None

    def version_with(self, stage: Stage | str) -> str | None:
        return next((v for v, stages in self.versions.items() if stage in stages), None)

    def stages_of(self, version_id: str) -> list[str]:
        return self.versions.get(version_id, [])
