"""Single user: change one user's password in place.

The user changes its own password, unless the secret is tagged ``SecretRotationSetBy=master``:
then the master secret it names (``masterarn``, same ``SecretRotationGroup``, same server) sets
it, for users who may not change their own. The master resets only the account this secret
provably holds (a stored version logs in as it), and never its own.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

from rotation_core.exceptions import (
    AuthenticationFailedError,
    InvalidSecretError,
    NoWorkingCredentialError,
    RotationStateError,
)
from rotation_core.models import DatabaseCredentials, StepInput
from rotation_core.observability import logger
from rotation_core.ports import DatabaseEngine
from rotation_core.strategies.common import WorkerContext
from rotation_core.versions import SecretVersions, server_of
from rotation_core.vocabulary import Outcome, Stage, StepResult

DB = DatabaseCredentials.from_secret

#: who changes the password: the user itself (default) or the secret's master
SET_BY_TAG = "SecretRotationSetBy"
_SET_BY = ("self", "master")


def create_secret(ctx: WorkerContext, step: StepInput) -> StepResult:
    """Build the pending secret (current with a new password) and seal it for the router."""
    versions = SecretVersions(ctx.secrets, step)
    current = versions.current(DB)
    engine = ctx.engines(current.engine)  # an unsupported engine fails here, before anything
    # Do not start what setSecret could never finish: someone must be able to log in to
    # change the password (AWSCURRENT, AWSPREVIOUS or a superseded version the database holds).
    if _by_master(versions):
        master = versions.master(current, DB, required=True)
        assert master is not None
        if not engine.can_login(master):
            raise NoWorkingCredentialError("the master secret ('masterarn') does not log in")
        _held_account(versions, engine, master, current)
    elif not any(engine.can_login(creds) for _label, creds in _fallbacks(versions, current)):
        raise NoWorkingCredentialError(
            f"no stored version logs in as {engine.describe(current)}; nothing was changed"
        )
    pending = {**current.raw, "password": ctx.secrets.random_password(step.policy)}
    DB(pending, what="pending secret")
    return StepResult(sealed=ctx.seal(pending, step))


def set_secret(ctx: WorkerContext, step: StepInput) -> StepResult:
    """Make the database accept the pending password; safe to run any number of times."""
    versions = SecretVersions(ctx.secrets, step)
    current, pending = versions.current(DB), versions.pending(DB)
    _same_account(current, pending)
    engine = ctx.engines(pending.engine)
    if engine.can_login(pending):
        logger.info("pending password already set", extra={"username": pending.username})
        return StepResult(Outcome.ALREADY_SET)
    if _by_master(versions):
        master = versions.master(current, DB, required=True)
        assert master is not None
        account, label = _held_account(versions, engine, master, current)
        engine.set_password_as(master, account, pending.password)
        logger.info("password set by the master", extra={"proven_by": label})
        return StepResult(Outcome.CHANGED, {"LoggedInWith": "master", "ProvenBy": label})
    for label, creds in _fallbacks(versions, current):
        if not creds.same_account_as(pending):
            continue
        try:
            engine.change_own_password(creds, pending.password)
        except AuthenticationFailedError:
            logger.info("credentials refused", extra={"stage": label})
            continue
        logger.info("password changed", extra={"logged_in_with": label})
        return StepResult(Outcome.CHANGED, {"LoggedInWith": label})
    raise NoWorkingCredentialError(
        f"none of AWSPENDING, AWSCURRENT, AWSPREVIOUS or a recent unlabeled version log in "
        f"as {engine.describe(pending)}"
    )


def _fallbacks(
    versions: SecretVersions, current: DatabaseCredentials
) -> Iterator[tuple[str, DatabaseCredentials]]:
    """Who to log in as to change the password, in order: AWSCURRENT, AWSPREVIOUS, then the
    newest unlabeled versions: a rotation that set its password and was then superseded by a
    new token left the database on that version's password (read lazily, only if needed)."""
    yield str(Stage.CURRENT), current
    previous = versions.previous(DB)
    if previous is not None:
        yield str(Stage.PREVIOUS), previous
    for creds in versions.unlabeled(DB):
        yield "unlabeled version", creds


def _by_master(versions: SecretVersions) -> bool:
    """True when the secret's tag asks the master to set the password (tags need
    secretsmanager:TagResource, which editing the secret's value does not give)."""
    value = versions.metadata.tags.get(SET_BY_TAG, "self").strip().lower()
    if value not in _SET_BY:
        raise InvalidSecretError(f"tag '{SET_BY_TAG}' must be 'self' or 'master'")
    return value == "master"


def _held_account(
    versions: SecretVersions,
    engine: DatabaseEngine,
    master: DatabaseCredentials,
    current: DatabaseCredentials,
    *,
    first: tuple[str, DatabaseCredentials] | None = None,
) -> tuple[Any, str]:
    """The account the master may reset, and which stored version proved it.

    A stored version of this secret (AWSCURRENT, AWSPREVIOUS or a recent unlabeled one) must
    log in as the user, on the master's server: whoever edits the secret then already holds that
    user, and the reset gives nothing new. The account is the server's own name for the session
    (MySQL's user@host included), never the secret's text. The master's own account is refused:
    resetting it would lock the master secret out.
    """
    master_account = engine.account(master)
    candidates = itertools.chain([first] if first else [], _fallbacks(versions, current))
    for label, creds in candidates:
        if creds.username != current.username or server_of(creds) != server_of(master):
            continue
        try:
            account = engine.account(creds)
        except AuthenticationFailedError:
            continue
        if account == master_account:
            raise RotationStateError(
                "the secret names the master's own user: the master will not reset its own "
                "password (rotate the master secret instead)"
            )
        return account, label
    raise NoWorkingCredentialError(
        f"no stored version of this secret logs in as {engine.describe(current)}: the master "
        "resets only a user this secret holds; nothing was changed"
    )


def test_secret(ctx: WorkerContext, step: StepInput) -> StepResult:
    """Log in with the pending secret and run the read probe (and the write probe if asked)."""
    versions = SecretVersions(ctx.secrets, step)
    current, pending = versions.current(DB), versions.pending(DB)
    _same_account(current, pending)
    ctx.engines(pending.engine).probe(pending, write=step.write_probe)
    return StepResult(Outcome.PENDING_WORKS)


def rollback(ctx: WorkerContext, step: StepInput) -> StepResult:
    """testSecret gave up: put AWSCURRENT's password back so its clients log in again.

    Logs in with the pending password (the one setSecret set) to change it back; or, when the
    secret is set by its master or the pending password no longer logs in, has the master set
    it on the account a stored version provably holds. Then proves AWSCURRENT logs in.
    """
    versions = SecretVersions(ctx.secrets, step)
    current, pending = versions.current(DB), versions.pending(DB)
    _same_account(current, pending)
    engine = ctx.engines(current.engine)
    if engine.can_login(current):
        return StepResult(Outcome.CURRENT_STILL_WORKS)
    by_master = _by_master(versions)
    how = None
    if not by_master:
        try:
            engine.change_own_password(pending, current.password)
            how = "pending"
        except AuthenticationFailedError:
            pass
    if how is None:
        master = versions.master(current, DB, required=by_master)
        if master is None:
            raise NoWorkingCredentialError(
                f"rollback: neither AWSCURRENT nor AWSPENDING log in as {engine.describe(current)}"
            )
        # the master resets only the account a stored version logs in as (AWSPENDING first)
        account, _proof = _held_account(
            versions, engine, master, current, first=(str(Stage.PENDING), pending)
        )
        engine.set_password_as(master, account, current.password)
        how = "master"
    if not engine.can_login(current):
        raise NoWorkingCredentialError("rollback: AWSCURRENT still does not log in after the reset")
    logger.info("password rolled back to AWSCURRENT's", extra={"logged_in_with": how})
    return StepResult(Outcome.PASSWORD_RESTORED, {"LoggedInWith": how})


def _same_account(current: DatabaseCredentials, pending: DatabaseCredentials) -> None:
    if not current.same_account_as(pending):
        raise RotationStateError(
            "AWSPENDING names a different engine, host, port or user than AWSCURRENT; "
            "single-user rotation only changes the password"
        )
