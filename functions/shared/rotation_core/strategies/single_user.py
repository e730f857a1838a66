"""Single user: change one user's password in place (the user changes its own password)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from rotation_core.aws import CURRENT, PREVIOUS
from rotation_core.exceptions import (
    AuthenticationFailedError,
    InvalidSecretError,
    NoWorkingCredentialError,
    RotationStateError,
)
from rotation_core.models import DatabaseCredentials, StepInput
from rotation_core.observability import logger
from rotation_core.strategies.common import (
    WorkerContext,
    load_credentials,
    load_current_and_pending,
    load_master,
    load_secret,
)


def create_secret(ctx: WorkerContext, step: StepInput) -> dict[str, Any]:
    """Build the pending secret (current with a new password) and seal it for the router."""
    current = load_credentials(ctx.secrets, step, CURRENT)
    assert current is not None
    engine = ctx.engines(current.engine)  # an unsupported engine fails here, before anything
    # Do not start what setSecret could never finish: someone must be able to log in to
    # change the password (AWSCURRENT, AWSPREVIOUS or a superseded version the database holds).
    if not any(engine.can_login(creds) for _label, creds in _fallbacks(ctx, step, current)):
        raise NoWorkingCredentialError(
            f"no stored version logs in as {engine.describe(current)}; nothing was changed"
        )
    pending = {**current.raw, "password": ctx.secrets.random_password(step.policy)}
    DatabaseCredentials.from_secret(pending, what="pending secret")
    return ctx.seal(pending, step)


def set_secret(ctx: WorkerContext, step: StepInput) -> dict[str, Any]:
    """Make the database accept the pending password; safe to run any number of times."""
    current, pending = load_current_and_pending(ctx.secrets, step)
    _same_account(current, pending)
    engine = ctx.engines(pending.engine)
    if engine.can_login(pending):
        logger.info("pending password already set", extra={"username": pending.username})
        return {"Outcome": "already-set"}
    for label, creds in _fallbacks(ctx, step, current):
        if not creds.same_account_as(pending):
            continue
        try:
            engine.change_own_password(creds, pending.password)
        except AuthenticationFailedError:
            logger.info("credentials refused", extra={"stage": label})
            continue
        logger.info("password changed", extra={"logged_in_with": label})
        return {"Outcome": "changed", "LoggedInWith": label}
    raise NoWorkingCredentialError(
        f"none of AWSPENDING, AWSCURRENT, AWSPREVIOUS or a recent unlabeled version log in "
        f"as {engine.describe(pending)}"
    )


def _fallbacks(
    ctx: WorkerContext, step: StepInput, current: DatabaseCredentials
) -> Iterator[tuple[str, DatabaseCredentials]]:
    """Who to log in as to change the password, in order: AWSCURRENT, AWSPREVIOUS, then the
    newest unlabeled versions: a rotation that set its password and was then superseded by a
    new token left the database on that version's password (read lazily, only if needed)."""
    yield CURRENT, current
    previous = load_credentials(ctx.secrets, step, PREVIOUS, required=False)
    if previous is not None:
        yield PREVIOUS, previous
    for version_id in ctx.secrets.unlabeled_versions(step.secret_arn):
        data = load_secret(ctx.secrets, step, None, version_id=version_id)
        if data is None:
            continue
        try:
            yield "unlabeled version", DatabaseCredentials.from_secret(data)
        except InvalidSecretError:
            continue


def test_secret(ctx: WorkerContext, step: StepInput) -> dict[str, Any]:
    """Log in with the pending secret and run the read probe."""
    current, pending = load_current_and_pending(ctx.secrets, step)
    _same_account(current, pending)
    ctx.engines(pending.engine).probe(pending)
    return {"Outcome": "pending-works"}


def rollback(ctx: WorkerContext, step: StepInput) -> dict[str, Any]:
    """testSecret gave up: put AWSCURRENT's password back so its clients log in again.

    Logs in with the pending password (the one setSecret set) to change it back, or with the
    master secret when the secret names one; then proves AWSCURRENT logs in.
    """
    current, pending = load_current_and_pending(ctx.secrets, step)
    _same_account(current, pending)
    engine = ctx.engines(current.engine)
    if engine.can_login(current):
        return {"Outcome": "current-still-works"}
    try:
        engine.change_own_password(pending, current.password)
        how = "pending"
    except AuthenticationFailedError:
        master = load_master(ctx, current, required=False)
        if master is None:
            raise NoWorkingCredentialError(
                f"rollback: neither AWSCURRENT nor AWSPENDING log in as {engine.describe(current)}"
            ) from None
        engine.set_password_as(master, current.username, current.password)
        how = "master"
    if not engine.can_login(current):
        raise NoWorkingCredentialError("rollback: AWSCURRENT still does not log in after the reset")
    logger.info("password rolled back to AWSCURRENT's", extra={"logged_in_with": how})
    return {"Outcome": "password-restored", "LoggedInWith": how}


def _same_account(current: DatabaseCredentials, pending: DatabaseCredentials) -> None:
    if not current.same_account_as(pending):
        raise RotationStateError(
            "AWSPENDING names a different engine, host, port or user than AWSCURRENT; "
            "single-user rotation only changes the password"
        )
