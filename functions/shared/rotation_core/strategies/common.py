"""What every strategy's workers share: the injected adapters and loading secret versions."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rotation_core.aws import CURRENT, PENDING, Sealer, SecretReader
from rotation_core.engines import DatabaseEngine, engine_for
from rotation_core.exceptions import InvalidSecretError, RotationStateError
from rotation_core.models import DatabaseCredentials, StepInput, parse_secret_string
from rotation_core.observability import logger


@dataclass
class WorkerContext:
    """The adapters a worker talks to; tests hand in fakes or point them at moto."""

    secrets: SecretReader
    sealer: Sealer | None = None
    engines: Callable[[str], DatabaseEngine] = engine_for


def load_secret(
    reader: SecretReader, step: StepInput, stage: str, *, version_id: str | None = None
) -> dict[str, Any] | None:
    """The parsed JSON of one version (None when that version holds no value)."""
    raw = reader.get_string(step.secret_arn, stage=stage, version_id=version_id)
    if raw is None:
        return None
    return parse_secret_string(raw, what=f"{stage} version of the secret")


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
