"""Alternating users: a master secret keeps two equal users, ``name`` and ``name_clone``.

Each rotation sets a new password on the idle user and makes it current; clients holding the
previous AWSCURRENT keep working because that user is not touched until the next rotation.
The master secret (``masterarn``) is read only here, in setSecret, and never leaves it.
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Any

from rotation_core.aws import CURRENT, PREVIOUS
from rotation_core.exceptions import (
    InvalidSecretError,
    NoWorkingCredentialError,
    RotationStateError,
)
from rotation_core.models import DatabaseCredentials, StepInput, check_username
from rotation_core.observability import logger
from rotation_core.strategies.common import (
    WorkerContext,
    load_credentials,
    load_current_and_pending,
    load_master,
    load_secret,
)

CLONE_SUFFIX = "_clone"


def partner_of(username: str) -> str:
    """``app`` <-> ``app_clone`` (the convention of AWS's own alternating-users templates)."""
    if username.endswith(CLONE_SUFFIX):
        return username[: -len(CLONE_SUFFIX)]
    return username + CLONE_SUFFIX


def original_of(username: str) -> str:
    return username[: -len(CLONE_SUFFIX)] if username.endswith(CLONE_SUFFIX) else username


def create_secret(ctx: WorkerContext, step: StepInput) -> dict[str, Any]:
    """Pending secret = current with the other user's name and a new password, sealed."""
    current = load_credentials(ctx.secrets, step, CURRENT)
    assert current is not None
    _require_master_arn(current)
    pending_user = partner_of(current.username)
    check_username(pending_user, current.engine)
    # Do not start what setSecret could never finish.
    engine = ctx.engines(current.engine)
    master = load_master(ctx, current, required=True)
    assert master is not None
    if not engine.can_login(current):
        raise NoWorkingCredentialError(f"AWSCURRENT does not log in as {engine.describe(current)}")
    if not engine.can_login(master):
        raise NoWorkingCredentialError("the master secret ('masterarn') does not log in")
    if original_of(pending_user) == pending_user:
        _prove_original(ctx, step, engine, pending_user)
    password = ctx.secrets.random_password(step.policy)
    pending = {**current.raw, "username": pending_user, "password": password}
    DatabaseCredentials.from_secret(pending, what="pending secret")
    return ctx.seal(pending, step)


def set_secret(ctx: WorkerContext, step: StepInput) -> dict[str, Any]:
    """With the master: create the idle user if missing, set its password, copy privileges."""
    current, pending = load_current_and_pending(ctx.secrets, step)
    _check_pair(current, pending)
    engine = ctx.engines(pending.engine)
    # The current credentials must still work: a stolen master secret cannot be aimed at an
    # arbitrary user by editing AWSPENDING, only at the partner of a user that logs in.
    if not engine.can_login(current):
        raise NoWorkingCredentialError(
            f"AWSCURRENT does not log in as {engine.describe(current)}; "
            "refusing to use the master secret"
        )
    original_account = _original_account(engine, current)
    master = load_master(ctx, current, required=True)
    assert master is not None
    # the master works in the application's database (where its objects live)
    master = dataclasses.replace(master, dbname=current.dbname or master.dbname)
    password = None if engine.can_login(pending) else pending.password
    if original_of(pending.username) == pending.username:
        # The idle user is the original itself: it is the model the clone copies, so only
        # its password changes, and only once this secret proves it held the original.
        if password is not None:
            _prove_original(ctx, step, engine, pending.username)
        # The clone (AWSCURRENT now, AWSPREVIOUS next) is brought in line first: membership,
        # objects it came to own, grants; its password is left alone.
        engine.sync_clone(master, original_account, current.username, None)
        if password is not None:
            engine.set_password_as(master, original_account, password)
        outcome = "original-updated"
    else:
        engine.sync_clone(master, original_account, pending.username, password)
        outcome = "clone-updated"
    logger.info(
        "idle user prepared",
        extra={"username": pending.username, "password_set": password is not None},
    )
    return {"Outcome": outcome}


def test_secret(ctx: WorkerContext, step: StepInput) -> dict[str, Any]:
    """Log in as the pending user; read probe, and write probe when the secret asks for it."""
    current, pending = load_current_and_pending(ctx.secrets, step)
    _check_pair(current, pending)
    ctx.engines(pending.engine).probe(pending, write=step.write_probe)
    return {"Outcome": "pending-works"}


def _prove_original(ctx: WorkerContext, step: StepInput, engine: Any, original: str) -> None:
    """Before the master resets the original user's password, this secret must prove it held
    that user: an older version of it logs in as the original. Otherwise anyone able to log
    in as a role named ``<victim>_clone`` could aim the master at ``<victim>``."""
    candidates = [load_credentials(ctx.secrets, step, PREVIOUS, required=False)]
    for version_id in ctx.secrets.unlabeled_versions(step.secret_arn):
        data = load_secret(ctx.secrets, step, None, version_id=version_id)
        if data is not None:
            with contextlib.suppress(InvalidSecretError):
                candidates.append(DatabaseCredentials.from_secret(data))
    for creds in candidates:
        if creds is not None and creds.username == original and engine.can_login(creds):
            return
    raise RotationStateError(
        f"no earlier version of this secret logs in as {original!r}: the master will not "
        "reset a user this secret never held"
    )


def _require_master_arn(creds: DatabaseCredentials) -> str:
    arn = creds.raw.get("masterarn")
    if not arn:
        raise InvalidSecretError("secret field 'masterarn' is required for alternating-users")
    return str(arn)


def _check_pair(current: DatabaseCredentials, pending: DatabaseCredentials) -> None:
    if not current.same_server_as(pending) or current.dbname != pending.dbname:
        raise RotationStateError("AWSPENDING names another engine, host, port or database")
    if pending.username != partner_of(current.username):
        raise RotationStateError(
            f"AWSPENDING must name {partner_of(current.username)!r}, AWSCURRENT's partner user"
        )
    if pending.raw.get("masterarn") != current.raw.get("masterarn"):
        raise RotationStateError("AWSPENDING names another master secret than AWSCURRENT")


def _original_account(engine: Any, current: DatabaseCredentials) -> Any:
    """The original user's account, as the server names it, found by logging in as current."""
    account = engine.account(current)
    if isinstance(account, tuple):  # MySQL: (user, host); the partner shares the host
        return (original_of(account[0]), account[1])
    return original_of(str(account))
