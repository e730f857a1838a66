"""Multi-credential: one identity holds two independent credentials at once.

The flow is written once here; a :class:`~rotation_core.ports.CredentialBackend` fills in what
differs (IAM access keys: a second key; Redis ACL users: a second password; see
``rotation_core/adapters/credentials/``):

- createSecret proves AWSCURRENT (and the admin, when the secret names a master) works, then
  has the backend issue the new credential, sealed for the router;
- setSecret makes the backend accept it beside the current one; testSecret proves it works;
- rollback takes back what this rotation added; AWSCURRENT's credential is never touched;
- the retirement state machine deactivates, verifies and deletes the superseded credential
  later, so clients holding it keep working through the grace period.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rotation_core.exceptions import (
    InvalidConfigurationError,
    InvalidEventError,
    RotationStateError,
)
from rotation_core.models import SecretMetadata, StepInput
from rotation_core.observability import logger
from rotation_core.ports import CredentialBackend
from rotation_core.strategies.common import WorkerContext
from rotation_core.versions import SecretVersions
from rotation_core.vocabulary import Outcome, Stage, StepResult


def create_secret(ctx: WorkerContext, step: StepInput) -> StepResult:
    backend, versions = ctx.credentials(step.engine), SecretVersions(ctx.secrets, step)
    current = versions.current(backend.parse)
    admin = _admin(versions, backend, current)  # a malformed master fails here, before anything
    # Only the holder of a working credential may have another one made: a secret naming
    # someone else's identity (a key id is not a secret; a password may be a guess) gets none.
    backend.prove(current, admin)
    fields = backend.issue(current, lambda: ctx.secrets.random_password(step.policy))
    pending = backend.parse({**current.raw, **fields}, what="pending secret")
    return StepResult(sealed=ctx.seal(pending.raw, step))


def set_secret(ctx: WorkerContext, step: StepInput) -> StepResult:
    backend, versions = ctx.credentials(step.engine), SecretVersions(ctx.secrets, step)
    current, pending = _pair(backend, versions)
    return StepResult(backend.apply(current, pending, _admin(versions, backend, current)))


def test_secret(ctx: WorkerContext, step: StepInput) -> StepResult:
    backend, versions = ctx.credentials(step.engine), SecretVersions(ctx.secrets, step)
    _current, pending = _pair(backend, versions)
    backend.verify(pending)
    return StepResult(Outcome.PENDING_WORKS)


def rollback(ctx: WorkerContext, step: StepInput) -> StepResult:
    """Undo what this rotation created; AWSCURRENT's credential is never touched."""
    backend, versions = ctx.credentials(step.engine), SecretVersions(ctx.secrets, step)
    current = versions.current(backend.parse)
    data = versions.data(Stage.PENDING, version_id=step.token)
    pending = None if data is None else backend.parse(data, what="AWSPENDING secret")
    if pending is None or backend.same(current, pending):
        return StepResult(Outcome.NOTHING_TO_UNDO)
    return StepResult(backend.undo(current, pending, _admin(versions, backend, current)))


def retire(ctx: WorkerContext, step: StepInput) -> StepResult:
    """Deactivate, verify or delete the credential of ``step.retiring_version``.

    The input is not trusted (anyone allowed to start the retirement state machine writes it):
    the secret itself must show that the version is superseded (neither AWSCURRENT nor
    AWSPENDING) and that the grace period since the last rotation has passed.
    """
    if not step.retiring_version or step.action is None:
        raise InvalidEventError("step input fields 'RetiringVersionId' and 'Action' are required")
    backend, versions = ctx.credentials(step.engine), SecretVersions(ctx.secrets, step)
    stages = versions.metadata.versions.get(step.retiring_version)
    if stages is None:
        logger.info("retiring version is gone; nothing to retire")
        return StepResult(Outcome.VERSION_GONE)
    if Stage.CURRENT in stages or Stage.PENDING in stages:
        raise RotationStateError(
            "step input field 'RetiringVersionId' names the AWSCURRENT or AWSPENDING version"
        )
    _require_grace_passed(ctx, versions.metadata)
    data = versions.data(None, version_id=step.retiring_version)
    if data is None:
        logger.info("retiring version is gone; nothing to retire")
        return StepResult(Outcome.VERSION_GONE)
    retiring = backend.parse(data, what="retiring version")
    current = versions.current(backend.parse)
    pending_data = versions.data(Stage.PENDING)
    pending = None if pending_data is None else backend.parse(pending_data, what="AWSPENDING")
    if backend.same(current, retiring) or (pending is not None and backend.same(pending, retiring)):
        raise RotationStateError("the credential to retire is AWSCURRENT or AWSPENDING again")
    admin = _admin(versions, backend, current)
    return StepResult(backend.retire(current, retiring, step.action, admin))


# --- shared -----------------------------------------------------------------------------------


def _pair(backend: CredentialBackend, versions: SecretVersions) -> tuple[Any, Any]:
    current, pending = versions.current(backend.parse), versions.pending(backend.parse)
    if not backend.same_identity(current, pending):
        raise RotationStateError("AWSPENDING names another identity than AWSCURRENT")
    return current, pending


def _admin(versions: SecretVersions, backend: CredentialBackend, current: Any) -> Any | None:
    """The master secret's identity when the secret names one (group binding proven)."""
    if "masterarn" not in current.raw:
        return None
    return versions.master(current, backend.parse, required=False)


def _require_grace_passed(ctx: WorkerContext, metadata: SecretMetadata) -> None:
    """The secret's last rotation ended at least RetireAfterSeconds ago (the retirement
    execution started a moment before Secrets Manager recorded it: a small slack)."""
    grace = ctx.retire_after_seconds
    if grace is None:
        raise InvalidConfigurationError("setting 'RetireAfterSeconds' is not set for this worker")
    if metadata.last_rotated is None:
        raise RotationStateError("the secret has no completed rotation; nothing is superseded")
    slack = min(60.0, grace / 2)
    elapsed = (datetime.now(UTC) - metadata.last_rotated).total_seconds()
    if elapsed < grace - slack:
        raise RotationStateError(
            f"the grace period has not passed: the last rotation ended {int(elapsed)} s ago, "
            f"retirement waits {grace} s"
        )
