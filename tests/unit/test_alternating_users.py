"""Alternating users, the flow on an in-memory database: two users, the idle one changes."""

from __future__ import annotations

from typing import Any

import pytest

from rotation_core.exceptions import RotationStateError
from rotation_core.models import PasswordPolicy, StepInput, open_sealed_credential
from rotation_core.strategies import alternating_users
from rotation_core.strategies.common import WorkerContext
from rotation_core.vocabulary import Outcome, Step, Strategy
from tests.fakes.engine import FakeDatabase, FakeEngine
from tests.fakes.secrets import FakeSecrets

ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:app/db-AbCdEf"
MASTER_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:master-XyZ123"
TOKEN = "5f0e8b1e-3c2a-4d6f-9b7e-2a1c0d9e8f7a"
BASE = {"engine": "postgres", "host": "db", "port": 5432, "dbname": "app", "masterarn": MASTER_ARN}
MASTER = {"engine": "postgres", "host": "db", "port": 5432, "username": "admin", "password": "m"}
GROUP = {"SecretRotationGroup": "payments"}


class OpenSealer:
    def seal(self, payload: dict[str, Any], context: dict[str, str]) -> dict[str, Any]:
        return {"open": payload}


def _step(step: Step) -> StepInput:
    return StepInput(
        step, ARN, TOKEN, Strategy.ALTERNATING_USERS, "postgres", policy=PasswordPolicy()
    )


def _world(db: FakeDatabase, current: dict[str, Any], **versions: Any) -> WorkerContext:
    store = FakeSecrets(
        {"v-current": (["AWSCURRENT"], {**BASE, **current}), **versions},
        others={MASTER_ARN: ({"SecretRotationMaster": "stack", **GROUP}, MASTER)},
        tags=GROUP,
    )
    return WorkerContext(
        secrets=store,
        sealer=OpenSealer(),  # type: ignore[arg-type]
        engines=lambda _e: FakeEngine(db),
    )


def _create(ctx: WorkerContext) -> dict[str, Any]:
    sealed = alternating_users.create_secret(ctx, _step(Step.CREATE)).sealed
    assert sealed is not None
    return open_sealed_credential(sealed["open"])


def test_the_first_rotation_creates_the_clone_and_leaves_the_original_alone() -> None:
    db = FakeDatabase(passwords={"app": "app-pw", "admin": "m"})
    ctx = _world(db, {"username": "app", "password": "app-pw"})
    credential = _create(ctx)
    assert credential["username"] == "app_clone"
    ctx.secrets.versions[TOKEN] = (["AWSPENDING"], {**BASE, **credential})  # type: ignore[attr-defined]

    assert alternating_users.set_secret(ctx, _step(Step.SET)).outcome == Outcome.CLONE_UPDATED
    assert alternating_users.test_secret(ctx, _step(Step.TEST)).outcome == Outcome.PENDING_WORKS
    assert db.passwords == {"app": "app-pw", "admin": "m", "app_clone": credential["password"]}


def test_the_second_rotation_changes_the_original_once_an_earlier_version_proves_it() -> None:
    db = FakeDatabase(passwords={"app": "app-pw", "app_clone": "clone-pw", "admin": "m"})
    ctx = _world(
        db,
        {"username": "app_clone", "password": "clone-pw"},
        **{"v-previous": (["AWSPREVIOUS"], {**BASE, "username": "app", "password": "app-pw"})},
    )
    credential = _create(ctx)
    ctx.secrets.versions[TOKEN] = (["AWSPENDING"], {**BASE, **credential})  # type: ignore[attr-defined]

    assert alternating_users.set_secret(ctx, _step(Step.SET)).outcome == Outcome.ORIGINAL_UPDATED
    assert db.passwords["app"] == credential["password"] and db.passwords["app_clone"] == "clone-pw"


def test_the_original_is_not_reset_without_a_version_that_logs_in_as_it() -> None:
    db = FakeDatabase(passwords={"app": "someone-elses", "app_clone": "clone-pw", "admin": "m"})
    ctx = _world(db, {"username": "app_clone", "password": "clone-pw"})
    with pytest.raises(RotationStateError, match="never held"):
        _create(ctx)
    assert db.password_changes == 0


def test_a_pending_version_naming_another_user_is_refused() -> None:
    db = FakeDatabase(passwords={"app": "app-pw", "admin": "m", "boss": "b"})
    ctx = _world(db, {"username": "app", "password": "app-pw"})
    ctx.secrets.versions[TOKEN] = (["AWSPENDING"], {**BASE, "username": "boss", "password": "x"})  # type: ignore[attr-defined]
    with pytest.raises(RotationStateError, match="partner"):
        alternating_users.set_secret(ctx, _step(Step.SET))
    assert db.passwords["boss"] == "b"


@pytest.mark.parametrize(
    ("tags", "stack"),
    [
        (GROUP, None),  # a sibling application's secret of the same group: no master tag
        ({"SecretRotationMaster": "another-stack", **GROUP}, "stack"),
    ],
)
def test_masterarn_naming_a_secret_that_is_not_this_stack_s_master_is_refused(
    tags: dict[str, str], stack: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The workers may read every secret the stack rotates; editing ``masterarn`` to name a
    sibling's secret must not make that application act as this one's master."""
    from rotation_core.exceptions import InvalidSecretError

    if stack is not None:
        monkeypatch.setenv("STACK_NAME", stack)
    db = FakeDatabase(passwords={"app": "app-pw", "admin": "m"})
    ctx = _world(db, {"username": "app", "password": "app-pw"})
    ctx.secrets.others[MASTER_ARN] = (tags, MASTER)  # type: ignore[attr-defined]

    with pytest.raises(InvalidSecretError, match="SecretRotationMaster"):
        alternating_users.create_secret(ctx, _step(Step.CREATE))
    assert db.passwords == {"app": "app-pw", "admin": "m"}
