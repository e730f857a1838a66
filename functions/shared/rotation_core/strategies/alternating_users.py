"""Alternating users: a master secret keeps two equal users, ``name`` and ``name_clone``.

Each rotation sets a new password on the idle user and makes it current; clients holding the
previous AWSCURRENT keep working because that user is not touched until the next rotation.
The master secret (``masterarn``) is read only here, in setSecret, and never leaves it.
"""

from __future__ import annotations

import itertools
from typing import Any

from rotation_core.exceptions import (
    NoWorkingCredentialError,
    RotationStateError,
)
from rotation_core.models import DatabaseCredentials, StepInput, check_username
from rotation_core.observability import logger
from rotation_core.ports import DatabaseEngine
from rotation_core.strategies.common import WorkerContext
from rotation_core.versions import SecretVersions, server_of
from rotation_core.vocabulary import Outcome, StepResult

DB = DatabaseCredentials.from_secret

CLONE_SUFFIX = "_clone"


def partner_of(username: str) -> str:
    """``app`` <-> ``app_clone`` (the convention of AWS's own alternating-users templates)."""
    if username.endswith(CLONE_SUFFIX):
        return username[: -len(CLONE_SUFFIX)]
    return username + CLONE_SUFFIX


def original_of(username: str) -> str:
    return username[: -len(CLONE_SUFFIX)] if username.endswith(CLONE_SUFFIX) else username


def create_secret(ctx: WorkerContext, step: StepInput) -> StepResult:
    """Pending secret = current with the other user's name and a new password, sealed."""
    versions = SecretVersions(ctx.secrets, step)
    current, master = versions.current_and_master(DB)
    pending_user = partner_of(current.username)
    check_username(pending_user, current.engine)
    # Do not start what setSecret could never finish, nor what it must refuse.
    engine = ctx.engines(current.engine)
    if not engine.can_login(current):
        raise NoWorkingCredentialError(f"AWSCURRENT does not log in as {engine.describe(current)}")
    if not engine.can_login(master):
        raise NoWorkingCredentialError("the master secret ('masterarn') does not log in")
    _require_owned(versions, engine, master, _original_account(engine, current), pending_user)
    password = ctx.secrets.random_password(step.policy)
    pending = {**current.raw, "username": pending_user, "password": password}
    DB(pending, what="pending secret")
    return StepResult(sealed=ctx.seal(pending, step))


def set_secret(ctx: WorkerContext, step: StepInput) -> StepResult:
    """With the master: create the idle user if missing, set its password, copy privileges."""
    versions = SecretVersions(ctx.secrets, step)
    current, pending = versions.current(DB), versions.pending(DB)
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
    # the master works in its own database; only ownership fixes run in the application's
    master = versions.master(current, DB, required=True)
    assert master is not None
    # pending already logging in is this secret holding the user: nothing to prove or set
    password = None if engine.can_login(pending) else pending.password
    if password is not None:
        _require_owned(versions, engine, master, original_account, pending.username)
    app_database = current.dbname
    if original_of(pending.username) == pending.username:
        # The idle user is the original itself: it is the model the clone copies, so only its
        # password changes. The clone (AWSCURRENT now, AWSPREVIOUS next) is brought in line
        # first: membership, objects it came to own, grants; its password is left alone.
        engine.sync_clone(
            master, original_account, current.username, None, app_database=app_database
        )
        if password is not None:
            engine.set_password_as(master, original_account, password)
        outcome = Outcome.ORIGINAL_UPDATED
    else:
        engine.sync_clone(
            master, original_account, pending.username, password, app_database=app_database
        )
        outcome = Outcome.CLONE_UPDATED
    logger.info(
        "idle user prepared",
        extra={"username": pending.username, "password_set": password is not None},
    )
    return StepResult(outcome)


def test_secret(ctx: WorkerContext, step: StepInput) -> StepResult:
    """Log in as the pending user; read probe, and write probe when the secret asks for it."""
    versions = SecretVersions(ctx.secrets, step)
    current, pending = versions.current(DB), versions.pending(DB)
    _check_pair(current, pending)
    ctx.engines(pending.engine).probe(pending, write=step.write_probe)
    return StepResult(Outcome.PENDING_WORKS)


def _require_owned(
    versions: SecretVersions,
    engine: DatabaseEngine,
    master: DatabaseCredentials,
    original_account: Any,
    idle_user: str,
) -> None:
    """The master touches the idle user only if this secret provably owns it.

    - the original user: an earlier version of this secret logs in as it. Otherwise anyone able
      to log in as a role named ``<victim>_clone`` could aim the master at ``<victim>``.
    - an existing clone: an earlier version of this secret logs in as it, or it is the
      original's twin (it can do nothing the original cannot). Otherwise an unrelated user that
      merely carries the name ``<name>_clone`` would be taken over, with its own privileges.
    - a clone that does not exist yet is created by this rotation: nothing to prove.
    """
    if original_of(idle_user) == idle_user:
        if _held_by_this_secret(versions, engine, master, idle_user):
            return
        raise RotationStateError(
            f"no earlier version of this secret logs in as {idle_user!r}: the master will not "
            "reset a user this secret never held"
        )
    clone = _same_host(original_account, idle_user)
    if not engine.account_exists(master, clone):
        return
    if _held_by_this_secret(versions, engine, master, idle_user):
        return
    if engine.is_twin(master, original_account, clone):
        return
    raise RotationStateError(
        f"user {idle_user!r} already exists, no version of this secret logs in as it, and it "
        "holds privileges the original does not: refusing to take it over (drop or rename it, "
        "or store its credentials in an earlier version of this secret)"
    )


def _held_by_this_secret(
    versions: SecretVersions, engine: DatabaseEngine, server: DatabaseCredentials, user: str
) -> bool:
    """An earlier version of this secret (AWSPREVIOUS or a recent unlabeled one) logs in as
    ``user`` on the same server: proof that whoever rotates this secret holds that user. A
    version naming another server proves nothing (its owner may run that server)."""
    candidates = itertools.chain([versions.previous(DB)], versions.unlabeled(DB))
    return any(
        creds is not None
        and creds.username == user
        and server_of(creds) == server_of(server)
        and engine.can_login(creds)
        for creds in candidates
    )


def _same_host(original_account: Any, user: str) -> Any:
    """``user`` as the server names accounts: MySQL (user, host) on the original's host."""
    if isinstance(original_account, tuple):
        return (user, original_account[1])
    return user


def _check_pair(current: DatabaseCredentials, pending: DatabaseCredentials) -> None:
    if not current.same_server_as(pending) or current.dbname != pending.dbname:
        raise RotationStateError("AWSPENDING names another engine, host, port or database")
    if pending.username != partner_of(current.username):
        raise RotationStateError(
            f"AWSPENDING must name {partner_of(current.username)!r}, AWSCURRENT's partner user"
        )
    if pending.raw.get("masterarn") != current.raw.get("masterarn"):
        raise RotationStateError("AWSPENDING names another master secret than AWSCURRENT")


def _original_account(engine: DatabaseEngine, current: DatabaseCredentials) -> Any:
    """The original user's account, as the server names it, found by logging in as current."""
    account = engine.account(current)
    if isinstance(account, tuple):  # MySQL: (user, host); the partner shares the host
        return (original_of(account[0]), account[1])
    return original_of(str(account))
