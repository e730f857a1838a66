"""Single-user steps against an in-memory database: idempotent, falls back, never guesses."""

from __future__ import annotations

from typing import Any

import pytest

from rotation_core.exceptions import (
    DatabaseUnavailableError,
    InvalidSecretError,
    NoWorkingCredentialError,
    PrivilegeError,
    RotationStateError,
    SealingError,
)
from rotation_core.models import PasswordPolicy, StepInput
from rotation_core.strategies import single_user
from rotation_core.strategies.common import WorkerContext
from tests.fakes.engine import FakeDatabase, FakeEngine
from tests.fakes.secrets import FakeSecrets

TOKEN = "5f0e8b1e-3c2a-4d6f-9b7e-2a1c0d9e8f7a"
BASE = {"engine": "postgres", "host": "db", "port": 5432, "username": "app"}


def _step(name: str) -> StepInput:
    return StepInput(
        step=name,
        secret_arn="arn:aws:secretsmanager:us-east-1:1:secret:x",
        token=TOKEN,
        strategy="single-user",
        engine="postgres",
        policy=PasswordPolicy(length=24),
    )


def _world(db_password: str, *, previous: str | None = None) -> tuple[WorkerContext, FakeDatabase]:
    versions: dict[str, tuple[list[str], dict[str, Any] | None]] = {
        "v-current": (["AWSCURRENT"], {**BASE, "password": "current-pw"}),
        TOKEN: (["AWSPENDING"], {**BASE, "password": "pending-pw"}),
    }
    if previous is not None:
        versions["v-previous"] = (["AWSPREVIOUS"], {**BASE, "password": previous})
    database = FakeDatabase(passwords={"app": db_password})
    ctx = WorkerContext(secrets=FakeSecrets(versions), engines=lambda _e: FakeEngine(database))
    return ctx, database


def test_set_secret_changes_the_password_logged_in_as_current() -> None:
    ctx, db = _world("current-pw")
    assert single_user.set_secret(ctx, _step("setSecret")).payload()["LoggedInWith"] == "AWSCURRENT"
    assert db.passwords["app"] == "pending-pw" and db.password_changes == 1


def test_set_secret_twice_changes_the_password_once() -> None:
    ctx, db = _world("current-pw")
    single_user.set_secret(ctx, _step("setSecret")).payload()
    assert single_user.set_secret(ctx, _step("setSecret")).payload() == {"Outcome": "already-set"}
    assert db.password_changes == 1


def test_set_secret_with_the_pending_password_already_in_place_changes_nothing() -> None:
    ctx, db = _world("pending-pw")
    assert single_user.set_secret(ctx, _step("setSecret")).payload() == {"Outcome": "already-set"}
    assert db.password_changes == 0


def test_set_secret_falls_back_to_the_previous_version() -> None:
    ctx, db = _world("old-pw", previous="old-pw")
    assert (
        single_user.set_secret(ctx, _step("setSecret")).payload()["LoggedInWith"] == "AWSPREVIOUS"
    )
    assert db.passwords["app"] == "pending-pw"


def test_set_secret_with_no_working_credential_says_so_and_changes_nothing() -> None:
    ctx, db = _world("someone-else-changed-it", previous="old-pw")
    with pytest.raises(NoWorkingCredentialError) as caught:
        single_user.set_secret(ctx, _step("setSecret")).payload()
    assert db.password_changes == 0
    assert "pw" not in str(caught.value)


def test_set_secret_propagates_an_unavailable_database_for_retry() -> None:
    ctx, db = _world("current-pw")
    db.down = True
    with pytest.raises(DatabaseUnavailableError):
        single_user.set_secret(ctx, _step("setSecret")).payload()


def test_set_secret_refuses_a_pending_version_for_another_user() -> None:
    ctx, db = _world("current-pw")
    stages, value = ctx.secrets.versions[TOKEN]  # type: ignore[attr-defined]
    ctx.secrets.versions[TOKEN] = (stages, {**value, "username": "postgres"})  # type: ignore[attr-defined]
    with pytest.raises(RotationStateError, match="different"):
        single_user.set_secret(ctx, _step("setSecret")).payload()
    assert db.password_changes == 0


def test_set_secret_without_a_pending_version_is_a_state_error() -> None:
    ctx, _db = _world("current-pw")
    del ctx.secrets.versions[TOKEN]  # type: ignore[attr-defined]
    with pytest.raises(RotationStateError, match="AWSPENDING"):
        single_user.set_secret(ctx, _step("setSecret")).payload()


def test_test_secret_logs_in_with_the_pending_password() -> None:
    ctx, db = _world("pending-pw")
    assert single_user.test_secret(ctx, _step("testSecret")).payload() == {
        "Outcome": "pending-works"
    }
    assert db.logins == 1


def test_test_secret_fails_when_the_pending_password_is_refused() -> None:
    ctx, _db = _world("current-pw")
    with pytest.raises(Exception, match="login refused"):
        single_user.test_secret(ctx, _step("testSecret")).payload()


def test_create_secret_needs_a_sealing_key() -> None:
    ctx, _db = _world("current-pw")
    with pytest.raises(SealingError):
        single_user.create_secret(ctx, _step("createSecret")).payload()


def test_test_secret_refuses_a_pending_version_for_another_user() -> None:
    ctx, db = _world("pending-pw")
    stages, value = ctx.secrets.versions[TOKEN]  # type: ignore[attr-defined]
    ctx.secrets.versions[TOKEN] = (stages, {**value, "username": "postgres"})  # type: ignore[attr-defined]
    with pytest.raises(RotationStateError, match="different"):
        single_user.test_secret(ctx, _step("testSecret")).payload()
    assert db.logins == 0


def test_rollback_puts_the_current_password_back_using_the_pending_one() -> None:
    ctx, db = _world("pending-pw")
    assert (
        single_user.rollback(ctx, _step("testSecret")).payload()["Outcome"] == "password-restored"
    )
    assert db.passwords["app"] == "current-pw"


def test_rollback_when_current_still_works_changes_nothing() -> None:
    ctx, db = _world("current-pw")
    assert single_user.rollback(ctx, _step("testSecret")).payload() == {
        "Outcome": "current-still-works"
    }
    assert db.password_changes == 0


def test_rollback_with_no_way_in_says_so() -> None:
    ctx, db = _world("somebody-else")
    with pytest.raises(NoWorkingCredentialError, match="rollback"):
        single_user.rollback(ctx, _step("testSecret")).payload()
    assert db.password_changes == 0


def test_set_secret_logs_in_with_a_superseded_unlabeled_version_when_the_database_holds_it() -> (
    None
):
    ctx, db = _world("stale-pending-pw", previous="old-pw")
    ctx.secrets.versions["v-stale"] = ([], {**BASE, "password": "stale-pending-pw"})  # type: ignore[attr-defined]
    result = single_user.set_secret(ctx, _step("setSecret")).payload()
    assert result["LoggedInWith"] == "unlabeled version"
    assert db.passwords["app"] == "pending-pw"


# --- set by the master (tag SecretRotationSetBy=master) --------------------------------------

MASTER_ARN = "arn:aws:secretsmanager:us-east-1:111111111111:secret:master-AbCdEf"
MASTER = {"engine": "postgres", "host": "db", "port": 5432, "username": "master"}
GROUP = {"SecretRotationGroup": "team-a"}


def _master_world(
    db: dict[str, str], *, current: str = "app", pending: str = "app", set_by: str = "master"
) -> tuple[WorkerContext, FakeDatabase]:
    """A secret whose user may not change its own password; its master may."""
    versions: dict[str, tuple[list[str], dict[str, Any] | None]] = {
        "v-current": (
            ["AWSCURRENT"],
            {**BASE, "username": current, "password": "current-pw", "masterarn": MASTER_ARN},
        ),
        TOKEN: (
            ["AWSPENDING"],
            {**BASE, "username": pending, "password": "pending-pw", "masterarn": MASTER_ARN},
        ),
    }
    secrets = FakeSecrets(
        versions,
        others={
            MASTER_ARN: (
                {"SecretRotationMaster": "stack", **GROUP},
                {**MASTER, "password": "master-pw"},
            )
        },
        tags={**GROUP, "SecretRotationSetBy": set_by},
    )
    database = FakeDatabase(passwords={"master": "master-pw", **db}, no_self_change={"app"})
    return WorkerContext(secrets=secrets, engines=lambda _e: FakeEngine(database)), database


def test_a_user_that_may_not_change_its_own_password_is_set_by_the_master() -> None:
    ctx, db = _master_world({"app": "current-pw"})
    result = single_user.set_secret(ctx, _step("setSecret")).payload()
    assert result == {"Outcome": "changed", "LoggedInWith": "master", "ProvenBy": "AWSCURRENT"}
    assert db.passwords == {"master": "master-pw", "app": "pending-pw"}
    assert single_user.set_secret(ctx, _step("setSecret")).payload() == {"Outcome": "already-set"}


def test_without_the_tag_such_a_user_fails_and_nothing_changes() -> None:
    ctx, db = _master_world({"app": "current-pw"}, set_by="self")
    with pytest.raises(PrivilegeError):
        single_user.set_secret(ctx, _step("setSecret"))
    assert db.password_changes == 0


def test_the_master_resets_no_user_this_secret_does_not_hold() -> None:
    # an application that can edit its secret names another application's user: no stored
    # version logs in as it, so the master touches nothing
    ctx, db = _master_world(
        {"app": "current-pw", "victim": "victims-pw"}, current="victim", pending="victim"
    )
    with pytest.raises(NoWorkingCredentialError, match="holds"):
        single_user.set_secret(ctx, _step("setSecret"))
    assert db.passwords["victim"] == "victims-pw" and db.password_changes == 0


def test_the_master_never_resets_its_own_password() -> None:
    # the secret holds the master's password and names the master's user: refused
    ctx, db = _master_world({}, current="master", pending="master")
    ctx.secrets.versions["v-current"][1]["password"] = "master-pw"  # type: ignore[attr-defined]
    with pytest.raises(RotationStateError, match="master's own user"):
        single_user.set_secret(ctx, _step("setSecret"))
    assert db.passwords == {"master": "master-pw"} and db.password_changes == 0


def test_an_unknown_set_by_tag_value_is_refused_naming_the_tag() -> None:
    ctx, db = _master_world({"app": "current-pw"}, set_by="root")
    with pytest.raises(InvalidSecretError, match="SecretRotationSetBy"):
        single_user.set_secret(ctx, _step("setSecret"))
    assert db.password_changes == 0


def test_rollback_by_the_master_restores_the_current_password() -> None:
    ctx, db = _master_world({"app": "pending-pw"})
    result = single_user.rollback(ctx, _step("testSecret")).payload()
    assert result == {"Outcome": "password-restored", "LoggedInWith": "master"}
    assert db.passwords["app"] == "current-pw"


def test_the_rollback_master_resets_only_a_user_a_stored_version_logs_in_as() -> None:
    # AWSCURRENT and AWSPENDING name a victim whose password no version holds (the app wrote
    # AWSCURRENT itself): without proof the master would hand the victim to the app
    ctx, db = _master_world(
        {"app": "current-pw", "victim": "victims-pw"},
        current="victim",
        pending="victim",
        set_by="self",
    )
    ctx.secrets.versions["v-previous"] = (["AWSPREVIOUS"], {**BASE, "password": "current-pw"})  # type: ignore[attr-defined]
    with pytest.raises(NoWorkingCredentialError):
        single_user.rollback(ctx, _step("testSecret"))
    assert db.passwords["victim"] == "victims-pw" and db.password_changes == 0
