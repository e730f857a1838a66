"""What every strategy's workers share: the injected adapters and loading secret versions."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rotation_core.aws import CURRENT, PENDING, Sealer, SecretReader
from rotation_core.backends.iam_keys import IamKeys
from rotation_core.backends.redis_acl import RedisAcl
from rotation_core.engines import DatabaseEngine, engine_for
from rotation_core.exceptions import InvalidSecretError, RotationStateError, SealingError
from rotation_core.models import DatabaseCredentials, StepInput, engine_family, parse_secret_string
from rotation_core.observability import logger


@dataclass
class WorkerContext:
    """The adapters a worker talks to; tests hand in fakes or point them at moto."""

    secrets: SecretReader
    sealer: Sealer | None = None
    engines: Callable[[str], DatabaseEngine] = engine_for
    #: built on first use (multi-credential, IAM)
    iam_keys: Callable[[], IamKeys] | None = None
    redis: RedisAcl = field(default_factory=RedisAcl)

    def seal(self, pending: dict[str, Any], step: StepInput) -> dict[str, Any]:
        """The pending secret, sealed for the router (the only way a value leaves a worker)."""
        if self.sealer is None:
            raise SealingError("no KMS key configured to seal the pending secret")
        return {"Sealed": self.sealer.seal(pending, step.encryption_context)}


def load_secret(
    reader: SecretReader, step: StepInput, stage: str | None, *, version_id: str | None = None
) -> dict[str, Any] | None:
    """The parsed JSON of one version (None when that version holds no value)."""
    raw = reader.get_string(step.secret_arn, stage=stage, version_id=version_id)
    if raw is None:
        return None
    return parse_secret_string(raw, what=f"{stage or 'unlabeled'} version of the secret")


def load_credentials(
    reader: SecretReader, step: StepInput, stage: str, *, required: bool = True
) -> DatabaseCredentials | None:
    """Database credentials of a stage; the pending stage is read at this rotation's token."""
    version_id = step.token if stage == PENDING else None
    data = load_secret(reader, step, stage, version_id=version_id)
    if data is None:
        if required:
            which = f"version {step.token} staged {stage}" if stage == PENDING else stage
            raise RotationStateError(f"the secret has no {which} value")
        return None
    if not required:
        try:
            return DatabaseCredentials.from_secret(data, what=f"{stage} secret")
        except InvalidSecretError as exc:
            logger.warning("ignoring an unusable fallback version", extra={"reason": str(exc)})
            return None
    return DatabaseCredentials.from_secret(data, what=f"{stage} secret")


def load_current_and_pending(
    reader: SecretReader, step: StepInput
) -> tuple[DatabaseCredentials, DatabaseCredentials]:
    current = load_credentials(reader, step, CURRENT)
    pending = load_credentials(reader, step, PENDING)
    assert current is not None and pending is not None
    return current, pending


def load_master(
    ctx: WorkerContext, current: DatabaseCredentials, *, required: bool
) -> DatabaseCredentials | None:
    """The master secret named by ``masterarn`` (read here, never returned or logged)."""
    arn = current.raw.get("masterarn")
    if not arn:
        if required:
            raise InvalidSecretError("secret field 'masterarn' is required")
        return None
    raw = ctx.secrets.get_string(str(arn), stage=CURRENT)
    if raw is None:
        raise InvalidSecretError("secret field 'masterarn' names a secret that does not exist")
    data = parse_secret_string(raw, what="master secret")
    if current.engine == "redis":
        master = DatabaseCredentials.from_redis_secret(data, what="master secret")
    else:
        master = DatabaseCredentials.from_secret(data, what="master secret")
    if _server(master) != _server(current):
        raise InvalidSecretError(
            "the master secret ('masterarn') is for another engine, host or port than the secret"
        )
    return master


def _server(creds: DatabaseCredentials) -> tuple[str, str, int]:
    family = creds.engine if creds.engine == "redis" else engine_family(creds.engine)
    return family, creds.host, creds.port
