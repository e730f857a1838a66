"""Multi-credential rotation, the shared flow, on both backends (fakes under the real adapters)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from rotation_core.exceptions import (
    CredentialNotYetValidError,
    NoWorkingCredentialError,
    RetiredCredentialStillWorksError,
    RotationStateError,
)
from rotation_core.models import PasswordPolicy, StepInput, open_sealed_credential
from rotation_core.strategies import multi_credential
from rotation_core.strategies.common import WorkerContext
from rotation_core.vocabulary import Outcome, RetireAction, Step, Strategy
from tests.fakes.credentials import FakeIam, FakeRedisBackend, FakeRedisServer, iam_backend
from tests.fakes.secrets import FakeSecrets

ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:svc-AbCdEf"
TOKEN = "5f0e8b1e-3c2a-4d6f-9b7e-2a1c0d9e8f7a"


class OpenSealer:
    def seal(self, payload: dict[str, Any], context: dict[str, str]) -> dict[str, Any]:
        return {"open": payload}


def _step(step: Step, engine: str, **extra: Any) -> StepInput:
    return StepInput(
        step=step,
        secret_arn=ARN,
        token=TOKEN,
        strategy=Strategy.MULTI_CREDENTIAL,
        engine=engine,
        policy=PasswordPolicy(length=24),
        **extra,
    )


def _sealed(result: Any) -> dict[str, str]:
    return open_sealed_credential(result.sealed["open"])


# --- IAM access keys ---------------------------------------------------------------------------


def _iam_world(iam: FakeIam, **secrets: Any) -> tuple[WorkerContext, dict[str, Any]]:
    key_id, secret = iam.new_key("svc")
    current = {
        "engine": "iam",
        "username": "svc",
        "access_key_id": key_id,
        "secret_access_key": secret,
    }
    store = FakeSecrets({"v1": (["AWSCURRENT"], current)}, **secrets)
    ctx = WorkerContext(
        secrets=store,
        sealer=OpenSealer(),  # type: ignore[arg-type]
        credentials=lambda _engine: iam_backend(iam),
        retire_after_seconds=60,
    )
    return ctx, current


def test_iam_create_makes_one_new_key_for_the_holder_of_a_working_one() -> None:
    iam = FakeIam()
    ctx, current = _iam_world(iam)
    credential = _sealed(multi_credential.create_secret(ctx, _step(Step.CREATE, "iam")))
    assert set(credential) == {"username", "access_key_id", "secret_access_key"}
    assert set(iam.keys["svc"]) == {current["access_key_id"], credential["access_key_id"]}


def test_iam_create_refuses_a_key_id_with_a_made_up_secret_and_makes_nothing() -> None:
    iam = FakeIam()
    ctx, current = _iam_world(iam)
    current["secret_access_key"] = "made-up"
    with pytest.raises(NoWorkingCredentialError):
        multi_credential.create_secret(ctx, _step(Step.CREATE, "iam"))
    assert len(iam.keys["svc"]) == 1


def test_iam_create_deletes_a_stale_third_key_never_the_current_one() -> None:
    iam = FakeIam()
    ctx, current = _iam_world(iam)
    stale, _secret = iam.new_key("svc")
    credential = _sealed(multi_credential.create_secret(ctx, _step(Step.CREATE, "iam")))
    assert stale not in iam.keys["svc"] and current["access_key_id"] in iam.keys["svc"]
    assert credential["access_key_id"] in iam.keys["svc"]


def _iam_pending(iam: FakeIam) -> tuple[WorkerContext, dict[str, Any], dict[str, Any]]:
    ctx, current = _iam_world(iam)
    key_id, secret = iam.new_key("svc")
    pending = {**current, "access_key_id": key_id, "secret_access_key": secret}
    ctx.secrets.versions[TOKEN] = (["AWSPENDING"], pending)  # type: ignore[attr-defined]
    return ctx, current, pending


def test_iam_set_reactivates_a_rolled_back_key_and_test_then_passes() -> None:
    iam = FakeIam()
    ctx, _current, pending = _iam_pending(iam)
    assert (
        multi_credential.rollback(ctx, _step(Step.TEST, "iam")).outcome == Outcome.KEY_DEACTIVATED
    )
    with pytest.raises(CredentialNotYetValidError):
        multi_credential.test_secret(ctx, _step(Step.TEST, "iam"))
    assert (
        multi_credential.set_secret(ctx, _step(Step.SET, "iam")).outcome == Outcome.KEY_REACTIVATED
    )
    assert (
        multi_credential.test_secret(ctx, _step(Step.TEST, "iam")).outcome == Outcome.PENDING_WORKS
    )
    assert iam.keys["svc"][pending["access_key_id"]][1] == "Active"


def test_iam_retirement_deactivates_verifies_then_deletes_only_a_deactivated_key() -> None:
    iam = FakeIam()
    ctx, current = _iam_world(iam, last_rotated=datetime.now(UTC) - timedelta(hours=1))
    old = dict(current)
    key_id, secret = iam.new_key("svc")
    ctx.secrets.versions = {  # type: ignore[attr-defined]
        "v1": (["AWSPREVIOUS"], old),
        "v2": (["AWSCURRENT"], {**old, "access_key_id": key_id, "secret_access_key": secret}),
    }

    def retire(action: RetireAction) -> Any:
        step = _step(Step.FINISH, "iam", retiring_version="v1", action=action)
        return multi_credential.retire(ctx, step).outcome

    with pytest.raises(RotationStateError, match="still active"):
        retire(RetireAction.DELETE)
    assert retire(RetireAction.DEACTIVATE) == Outcome.KEY_DEACTIVATED
    assert retire(RetireAction.VERIFY) == Outcome.KEY_REFUSED
    assert retire(RetireAction.DELETE) == Outcome.KEY_DELETED
    assert list(iam.keys["svc"]) == [key_id]


# --- Redis ACL users ---------------------------------------------------------------------------

REDIS = {"engine": "redis", "host": "cache", "port": 6379, "username": "app"}


def _redis_world(server: FakeRedisServer) -> WorkerContext:
    store = FakeSecrets(
        {"v1": (["AWSCURRENT"], {**REDIS, "password": "current-pw"})},
        last_rotated=datetime.now(UTC) - timedelta(hours=1),
    )
    backend = FakeRedisBackend(server)
    return WorkerContext(
        secrets=store,
        sealer=OpenSealer(),  # type: ignore[arg-type]
        credentials=lambda _engine: backend,
        retire_after_seconds=60,
    )


def test_redis_rotation_adds_the_new_password_beside_the_current_one() -> None:
    server = FakeRedisServer(users={"app": {"current-pw"}})
    ctx = _redis_world(server)
    credential = _sealed(multi_credential.create_secret(ctx, _step(Step.CREATE, "redis")))
    assert set(credential) == {"username", "password"} and server.users["app"] == {"current-pw"}
    ctx.secrets.versions[TOKEN] = (["AWSPENDING"], {**REDIS, **credential})  # type: ignore[attr-defined]

    assert (
        multi_credential.set_secret(ctx, _step(Step.SET, "redis")).outcome == Outcome.PASSWORD_ADDED
    )
    assert multi_credential.set_secret(ctx, _step(Step.SET, "redis")).outcome == Outcome.ALREADY_SET
    assert (
        multi_credential.test_secret(ctx, _step(Step.TEST, "redis")).outcome
        == Outcome.PENDING_WORKS
    )
    assert server.users["app"] == {"current-pw", credential["password"]}


def test_redis_create_refuses_a_guessed_password_and_touches_no_user() -> None:
    server = FakeRedisServer(users={"app": {"real-pw"}})
    ctx = _redis_world(server)
    with pytest.raises(NoWorkingCredentialError):
        multi_credential.create_secret(ctx, _step(Step.CREATE, "redis"))
    assert server.commands == []


def test_redis_rollback_removes_only_the_password_this_rotation_added() -> None:
    server = FakeRedisServer(users={"app": {"current-pw", "new-pw"}})
    ctx = _redis_world(server)
    ctx.secrets.versions[TOKEN] = (["AWSPENDING"], {**REDIS, "password": "new-pw"})  # type: ignore[attr-defined]
    assert (
        multi_credential.rollback(ctx, _step(Step.TEST, "redis")).outcome
        == Outcome.PASSWORD_REMOVED
    )
    assert server.users["app"] == {"current-pw"}
    # run again (the state machine retries; an operator reset the password): nothing to undo
    assert (
        multi_credential.rollback(ctx, _step(Step.TEST, "redis")).outcome == Outcome.NOTHING_TO_UNDO
    )
    assert server.users["app"] == {"current-pw"}


def test_redis_retirement_verify_fails_while_the_old_password_still_works() -> None:
    server = FakeRedisServer(users={"app": {"old-pw", "current-pw"}})
    ctx = _redis_world(server)
    ctx.secrets.versions["v0"] = (["AWSPREVIOUS"], {**REDIS, "password": "old-pw"})  # type: ignore[attr-defined]
    step = _step(Step.FINISH, "redis", retiring_version="v0", action=RetireAction.VERIFY)
    with pytest.raises(RetiredCredentialStillWorksError):
        multi_credential.retire(ctx, step)
    deactivate = _step(Step.FINISH, "redis", retiring_version="v0", action=RetireAction.DEACTIVATE)
    assert multi_credential.retire(ctx, deactivate).outcome == Outcome.PASSWORD_REMOVED
    assert multi_credential.retire(ctx, step).outcome == Outcome.PASSWORD_REFUSED
