"""Multi-credential: one identity holds two independent credentials at once.

- IAM users (engine ``iam``): two access keys. createSecret makes the new key (deleting a
  stale third first, never AWSCURRENT's), testSecret asks STS who the key is.
- Redis ACL users (engine ``redis``): several passwords per user. setSecret adds the new
  password beside the current one; testSecret logs in with it.

The superseded credential is retired later by the retirement state machine (deactivate,
verify, delete), so clients holding it keep working through the grace period.
"""

from __future__ import annotations

from typing import Any

from rotation_core.aws import CURRENT, PENDING
from rotation_core.exceptions import (
    CredentialNotYetValidError,
    InvalidEventError,
    NoWorkingCredentialError,
    RetiredCredentialStillWorksError,
    RotationStateError,
    UnsupportedEngineError,
)
from rotation_core.models import DatabaseCredentials, StepInput, parse_secret_string, secret_kind
from rotation_core.observability import logger
from rotation_core.strategies.common import WorkerContext, load_master, load_secret

# --- the four entry points ------------------------------------------------------------------


def create_secret(ctx: WorkerContext, step: StepInput) -> dict[str, Any]:
    current = _value(ctx, step, CURRENT)
    if _kind(current) == "iam":
        pending = _create_access_key(ctx, current)
    else:
        creds = _redis(current)
        admin = _redis_admin(ctx, creds)  # a malformed master fails here, before anything
        # Only the holder of a working password may have another one added: a secret naming
        # someone else's ACL user with a guessed password must not get a master to mint one.
        if not ctx.redis.can_login(creds):
            raise NoWorkingCredentialError(
                f"AWSCURRENT does not log in as {creds.username!r} on {creds.host}:{creds.port}"
            )
        if admin is not creds and not ctx.redis.can_login(admin):
            raise NoWorkingCredentialError(
                f"the master secret ('masterarn') does not log in to {creds.host}:{creds.port}"
            )
        pending = {**current, "password": ctx.secrets.random_password(step.policy)}
    return ctx.seal(pending, step)


def set_secret(ctx: WorkerContext, step: StepInput) -> dict[str, Any]:
    current, pending = _value(ctx, step, CURRENT), _value(ctx, step, PENDING)
    _check_pair(current, pending)
    if _kind(pending) == "iam":
        return _activate_pending_key(ctx, pending)
    creds, new = _redis(current), _redis(pending)
    if ctx.redis.can_login(new):
        return {"Outcome": "already-set"}
    ctx.redis.add_password(_redis_admin(ctx, creds), new.username, new.password)
    return {"Outcome": "password-added"}


def test_secret(ctx: WorkerContext, step: StepInput) -> dict[str, Any]:
    current, pending = _value(ctx, step, CURRENT), _value(ctx, step, PENDING)
    _check_pair(current, pending)
    if _kind(pending) == "iam":
        _expect_identity(ctx, pending)
    else:
        ctx.redis.probe(_redis(pending))
    return {"Outcome": "pending-works"}


def rollback(ctx: WorkerContext, step: StepInput) -> dict[str, Any]:
    """Undo what this rotation created; AWSCURRENT's credential is never touched."""
    current = _value(ctx, step, CURRENT)
    pending = load_secret(ctx.secrets, step, PENDING, version_id=step.token)
    if pending is None or _same_credential(current, pending):
        return {"Outcome": "nothing-to-undo"}
    if _kind(pending) == "iam":
        # Deactivated, not deleted: the pending version keeps this key's secret and cannot be
        # rewritten, so a retry of this rotation (same token) reactivates it at setSecret; the
        # next rotation with a new token deletes it as a stale key.
        keys, user, key_id = _keys(ctx), pending["username"], pending["access_key_id"]
        if key_id not in {k.key_id for k in keys.keys(user)}:
            return {"Outcome": "key-already-gone"}
        keys.set_status(user, key_id, "Inactive")
        return {"Outcome": "key-deactivated"}
    creds = _redis(current)
    ctx.redis.remove_password(_redis_admin(ctx, creds), creds.username, str(pending["password"]))
    return {"Outcome": "password-removed"}


def retire(ctx: WorkerContext, step: StepInput) -> dict[str, Any]:
    """Deactivate, verify or delete the credential of ``step.retiring_version``."""
    if not step.retiring_version or step.action not in ("deactivate", "verify", "delete"):
        raise InvalidEventError("step input fields 'RetiringVersionId' and 'Action' are required")
    raw = ctx.secrets.get_string(step.secret_arn, stage=None, version_id=step.retiring_version)
    if raw is None:
        logger.info("retiring version is gone; nothing to retire")
        return {"Outcome": "version-gone"}
    retiring = parse_secret_string(raw, what="retiring version")
    current = _value(ctx, step, CURRENT)
    pending = load_secret(ctx.secrets, step, PENDING)
    if _same_credential(current, retiring) or (pending and _same_credential(pending, retiring)):
        raise RotationStateError("the credential to retire is AWSCURRENT or AWSPENDING again")
    if _kind(retiring) == "iam":
        return _retire_access_key(ctx, retiring, step.action or "")
    return _retire_redis_password(ctx, current, retiring, step.action or "")


# --- IAM access keys --------------------------------------------------------------------------


def _keys(ctx: WorkerContext) -> Any:
    if ctx.iam_keys is None:
        raise UnsupportedEngineError("this worker has no IAM client configured")
    return ctx.iam_keys()


def _create_access_key(ctx: WorkerContext, current: dict[str, Any]) -> dict[str, Any]:
    keys, user = _keys(ctx), current["username"]
    existing = keys.keys(user)
    if current["access_key_id"] not in {k.key_id for k in existing}:
        raise RotationStateError(
            f"AWSCURRENT's access key {current['access_key_id']} is not a key of IAM user {user!r}"
        )
    # Only the holder of a working key may have a new one made: a key id is not a secret, so
    # a secret naming another user's key id with a made-up secret key must get nothing.
    try:
        _expect_identity(ctx, current)
    except CredentialNotYetValidError:
        raise NoWorkingCredentialError(
            f"STS refuses AWSCURRENT's access key {current['access_key_id']}; "
            "only a secret holding a working key can be rotated"
        ) from None
    for key in existing:
        if len(existing) >= 2 and key.key_id != current["access_key_id"]:
            # a stale key: AWSPREVIOUS past its use, or one an interrupted attempt created
            keys.delete(user, key.key_id)
    key_id, secret = keys.create(user)
    return {**current, "access_key_id": key_id, "secret_access_key": secret}


def _activate_pending_key(ctx: WorkerContext, pending: dict[str, Any]) -> dict[str, Any]:
    """CreateAccessKey made the key live; only a rolled-back (inactive) key needs setting."""
    keys, user, key_id = _keys(ctx), pending["username"], pending["access_key_id"]
    status = {k.key_id: k.status for k in keys.keys(user)}.get(key_id)
    if status is None:
        raise RotationStateError(
            f"AWSPENDING's access key {key_id} no longer exists; start a new rotation"
        )
    if status == "Active":
        return {"Outcome": "already-set"}
    keys.set_status(user, key_id, "Active")
    return {"Outcome": "key-reactivated"}


def _expect_identity(ctx: WorkerContext, creds: dict[str, Any]) -> None:
    arn = _keys(ctx).identity(creds["access_key_id"], creds["secret_access_key"])
    if arn.rsplit("/", 1)[-1] != creds["username"] or ":user/" not in arn:
        raise RotationStateError(
            f"the new access key belongs to {arn}, not to IAM user {creds['username']!r}"
        )


def _retire_access_key(ctx: WorkerContext, retiring: dict[str, Any], action: str) -> dict[str, Any]:
    keys, user, key_id = _keys(ctx), retiring["username"], retiring["access_key_id"]
    if action == "deactivate":
        if key_id not in {k.key_id for k in keys.keys(user)}:
            return {"Outcome": "key-already-gone"}
        keys.set_status(user, key_id, "Inactive")
        return {"Outcome": "key-deactivated"}
    if action == "verify":
        try:
            keys.identity(key_id, retiring["secret_access_key"])
        except CredentialNotYetValidError:
            return {"Outcome": "key-refused"}
        raise RetiredCredentialStillWorksError(
            f"access key {key_id} is still accepted after deactivation"
        )
    deleted = keys.delete(user, key_id)
    return {"Outcome": "key-deleted" if deleted else "key-already-gone"}


# --- Redis ACL passwords ----------------------------------------------------------------------


def _redis(data: dict[str, Any]) -> DatabaseCredentials:
    return DatabaseCredentials.from_redis_secret(data)


def _redis_admin(ctx: WorkerContext, creds: DatabaseCredentials) -> DatabaseCredentials:
    """The master secret's ACL user when there is one, else the user manages itself."""
    return load_master(ctx, creds, required=False) or creds


def _retire_redis_password(
    ctx: WorkerContext, current: dict[str, Any], retiring: dict[str, Any], action: str
) -> dict[str, Any]:
    creds, old = _redis(current), _redis(retiring)
    if action == "deactivate":
        ctx.redis.remove_password(_redis_admin(ctx, creds), old.username, old.password)
        return {"Outcome": "password-removed"}
    if action == "verify":
        if ctx.redis.can_login(old):
            raise RetiredCredentialStillWorksError("the retired Redis password is still accepted")
        return {"Outcome": "password-refused"}
    return {"Outcome": "nothing-to-delete"}


# --- shared -----------------------------------------------------------------------------------


def _value(ctx: WorkerContext, step: StepInput, stage: str) -> dict[str, Any]:
    version_id = step.token if stage == PENDING else None
    data = load_secret(ctx.secrets, step, stage, version_id=version_id)
    if data is None:
        raise RotationStateError(f"the secret has no {stage} value")
    secret_kind(data, what=f"{stage} secret")
    return data


def _kind(data: dict[str, Any]) -> str:
    kind = secret_kind(data)
    if kind not in ("iam", "redis"):
        raise UnsupportedEngineError(
            f"multi-credential cannot rotate engine {data.get('engine')!r}"
        )
    return kind


def _check_pair(current: dict[str, Any], pending: dict[str, Any]) -> None:
    keys = ("engine", "username", "host", "port")
    if any(current.get(k) != pending.get(k) for k in keys):
        raise RotationStateError("AWSPENDING names another identity than AWSCURRENT")


def _same_credential(a: dict[str, Any], b: dict[str, Any]) -> bool:
    if a.get("engine") == "iam":
        return bool(a.get("access_key_id") == b.get("access_key_id"))
    return bool(a.get("username") == b.get("username") and a.get("password") == b.get("password"))
