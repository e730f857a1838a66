"""Single-user rotation end to end: RotateSecret -> router -> state machine -> workers -> database.

Every test here runs against servers that enforce passwords, and (through the ``runtime``
fixture) ends with a scan of every execution history, log line and alert for any password.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest

from rotator.checks import eventually
from rotator.dbservers import DatabaseServer
from tests.integration.conftest import (
    all_logins,
    create_app_user,
    database_secret,
    new_password,
    secret_value,
    unique_name,
)

pytestmark = pytest.mark.integration

HOSTILE_USERNAMES = ["app-user", "O'Brien", 'a"b', "x; DROP ROLE y"]


def _stages(rt: Any, arn: str) -> dict[str, list[str]]:
    return dict(rt.client("secretsmanager").describe_secret(SecretId=arn)["VersionIdsToStages"])


def _stored_verifier(server: DatabaseServer, username: str) -> str:
    """What the server stores for the password (PostgreSQL salts it afresh on every change)."""
    assert server.engine == "postgres"
    with contextlib.closing(server.admin_connection()) as conn, conn.cursor() as cur:
        cur.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (username,))
        return str(cur.fetchone()[0])


def _worker_outcomes(rt: Any, logical_id: str) -> list[str]:
    name = rt.spec.functions[logical_id].name
    return [
        inv.payload.get("Outcome")
        for inv in rt.host.invocations
        if inv.function == name and not inv.failed
    ]


def _router(rt: Any, step: str, arn: str, token: str) -> Any:
    return rt.invoke_router({"Step": step, "SecretId": arn, "ClientRequestToken": token})


def test_the_test_servers_refuse_a_wrong_password(db_server: DatabaseServer) -> None:
    username, password = unique_name(), new_password()
    db_server.create_login(username, password)
    assert db_server.can_login(username, password)
    assert not db_server.can_login(username, password + "x")


def test_a_rotation_changes_the_password_and_moves_the_labels(
    runtime: Any, db_server: DatabaseServer
) -> None:
    arn, username, old = create_app_user(runtime, db_server)
    first_version = next(iter(_stages(runtime, arn)))

    outcome = runtime.rotate(arn)

    assert outcome.succeeded, outcome.error
    new = secret_value(runtime, arn)["password"]
    assert new != old
    assert db_server.can_login(username, new)
    assert not db_server.can_login(username, old)
    stages = _stages(runtime, arn)
    assert stages[outcome.token] == ["AWSCURRENT"]
    assert stages[first_version] == ["AWSPREVIOUS"]
    assert secret_value(runtime, arn, VersionStage="AWSPREVIOUS")["password"] == old
    steps = [inv.event["Step"] for inv in outcome.steps]
    assert steps == ["createSecret", "setSecret", "testSecret", "finishSecret"]
    # finishSecret's execution records the step and is not awaited (it has no work)
    assert eventually(lambda: [e["status"] for e in runtime.executions()] == ["SUCCEEDED"] * 4, 10)


def test_rotating_three_times_in_a_row_keeps_one_working_password(
    runtime: Any, db_server: DatabaseServer
) -> None:
    arn, username, _old = create_app_user(runtime, db_server)
    seen = []
    for _ in range(3):
        assert runtime.rotate(arn).succeeded
        seen.append(secret_value(runtime, arn)["password"])
        assert db_server.can_login(username, seen[-1])
    assert len(set(seen)) == 3
    assert not any(db_server.can_login(username, p) for p in seen[:-1])


def test_each_step_twice_with_the_same_token_makes_one_version_and_one_change(
    runtime: Any, db_server: DatabaseServer
) -> None:
    arn, username, _old = create_app_user(runtime, db_server)
    token = runtime.stage_rotation(arn)
    for step in ("createSecret", "setSecret", "testSecret", "finishSecret"):
        first = _router(runtime, step, arn, token)
        second = _router(runtime, step, arn, token)
        assert not first.failed and not second.failed, (first.error, second.error)
    assert len(_stages(runtime, arn)) == 2
    # the second setSecret runs again (a rollback could have undone the first) and finds the
    # password already set; the second createSecret and finishSecret start nothing
    assert _worker_outcomes(runtime, "SingleUserSetSecretFunction") == ["changed", "already-set"]
    assert sorted(e["name"].split("-")[0] for e in runtime.executions()) == [
        "createSecret",
        "finishSecret",
        "setSecret",
        "setSecret",
        "testSecret",
        "testSecret",
    ]
    assert db_server.can_login(username, secret_value(runtime, arn)["password"])


def test_the_set_worker_run_again_finds_the_password_set_and_changes_nothing(
    runtime: Any, postgres_server: DatabaseServer
) -> None:
    arn, username, _old = create_app_user(runtime, postgres_server)
    token = runtime.stage_rotation(arn)
    assert not _router(runtime, "createSecret", arn, token).failed
    assert not _router(runtime, "setSecret", arn, token).failed
    stored = _stored_verifier(postgres_server, username)
    # the worker itself, invoked again as a Step Functions retry would
    worker = runtime.spec.functions["SingleUserSetSecretFunction"]
    step_input = json.loads(
        runtime.client("stepfunctions").describe_execution(
            executionArn=runtime.executions()[0]["executionArn"]
        )["input"]
    )
    again = runtime.host.invoke(worker, {**step_input, "Step": "setSecret"})
    # nothing changed, so no change time (the outage-window metric starts at a change)
    assert again.payload == {"Outcome": "already-set", "ChangedAt": None}
    assert _stored_verifier(postgres_server, username) == stored


def test_set_secret_finds_the_pending_password_already_in_the_database(
    runtime: Any, db_server: DatabaseServer
) -> None:
    arn, username, _old = create_app_user(runtime, db_server)
    token = runtime.stage_rotation(arn)
    assert not _router(runtime, "createSecret", arn, token).failed
    pending = secret_value(runtime, arn, VersionId=token, VersionStage="AWSPENDING")["password"]
    _set_password_as_admin(db_server, username, pending)

    for step in ("setSecret", "testSecret", "finishSecret"):
        assert not _router(runtime, step, arn, token).failed

    assert _worker_outcomes(runtime, "SingleUserSetSecretFunction") == ["already-set"]
    assert secret_value(runtime, arn)["password"] == pending
    assert db_server.can_login(username, pending)


def test_a_crash_between_set_and_finish_is_completed_by_the_next_rotation(
    runtime: Any, db_server: DatabaseServer
) -> None:
    arn, username, old = create_app_user(runtime, db_server)
    crashed = []

    def crash_before_finish(spec: Any, event: Any) -> None:
        if (
            spec.logical_id == "RouterFunction"
            and event.get("Step") == "finishSecret"
            and not crashed
        ):
            crashed.append(True)
            raise RuntimeError("router crashed before finishSecret")

    runtime.host.before_invoke.append(crash_before_finish)
    first = runtime.rotate(arn)
    assert not first.succeeded and first.failed_step == "finishSecret"
    pending = secret_value(runtime, arn, VersionId=first.token, VersionStage="AWSPENDING")[
        "password"
    ]
    # the database already has the new password; AWSPENDING holds it (invariant 4)
    assert db_server.can_login(username, pending) and not db_server.can_login(username, old)
    assert secret_value(runtime, arn)["password"] == old

    second = runtime.retry_rotation(arn)

    assert second.succeeded and second.reattempt and second.token == first.token
    assert secret_value(runtime, arn)["password"] == pending
    assert db_server.can_login(username, pending)
    # the retry runs setSecret again, which finds the password already set
    assert _worker_outcomes(runtime, "SingleUserSetSecretFunction") == ["changed", "already-set"]
    assert len([e for e in runtime.executions() if e["name"].startswith("finishSecret")]) == 1


def test_a_wrong_current_password_fails_once_and_changes_nothing(
    runtime: Any, db_server: DatabaseServer
) -> None:
    username, real = unique_name(), new_password()
    db_server.create_login(username, real)
    wrong = database_secret(db_server, username, new_password())
    arn = runtime.client("secretsmanager").create_secret(
        Name=f"it/{unique_name()}", SecretString=json.dumps(wrong)
    )["ARN"]
    current_version = next(iter(_stages(runtime, arn)))

    outcome = runtime.rotate(arn)

    # refused at createSecret: no new password is even generated
    assert not outcome.succeeded and outcome.failed_step == "createSecret"
    assert "NoWorkingCredentialError" in outcome.error["errorMessage"]
    with pytest.raises(runtime.client("secretsmanager").exceptions.ResourceNotFoundException):
        runtime.client("secretsmanager").get_secret_value(SecretId=arn, VersionId=outcome.token)
    assert _stages(runtime, arn)[current_version] == ["AWSCURRENT"]
    assert secret_value(runtime, arn)["password"] == wrong["password"]
    assert db_server.can_login(username, real)
    alerts = runtime.alerts()
    assert len(alerts) == 1
    assert alerts[0].message["error"] == "NoWorkingCredentialError"
    # a permanent error is not retried, and the alert says so
    assert alerts[0].message["retries_allowed"] == 0
    assert alerts[0].message["step"] == "createSecret" and alerts[0].message["secret_arn"] == arn


@pytest.mark.parametrize(
    ("change", "field"),
    [({"engine": "oracle"}, "engine"), ({"port": "five"}, "port"), ({"host": ""}, "host")],
)
def test_a_bad_secret_writes_no_version_and_leaves_the_database_alone(
    runtime: Any, db_server: DatabaseServer, change: dict[str, Any], field: str
) -> None:
    username, password = unique_name(), new_password()
    db_server.create_login(username, password)
    secret = {**database_secret(db_server, username, password), **change}
    arn = runtime.client("secretsmanager").create_secret(
        Name=f"it/{unique_name()}", SecretString=json.dumps(secret)
    )["ARN"]

    outcome = runtime.rotate(arn)

    assert not outcome.succeeded and outcome.failed_step == "createSecret"
    assert (
        outcome.error["errorType"] == "InvalidSecretError"
        and f"'{field}'" in outcome.error["errorMessage"]
    )
    with pytest.raises(runtime.client("secretsmanager").exceptions.ResourceNotFoundException):
        runtime.client("secretsmanager").get_secret_value(SecretId=arn, VersionId=outcome.token)
    assert runtime.executions() == []
    assert db_server.can_login(username, password)


@pytest.mark.parametrize("username", HOSTILE_USERNAMES)
def test_hostile_usernames_rotate_and_harm_nothing_else(
    runtime: Any, db_server: DatabaseServer, username: str
) -> None:
    # a user literally named "y" must survive "x; DROP ROLE y"
    bystander, bystander_password = unique_name("y"), new_password()
    db_server.create_login(bystander, bystander_password)
    unique = f"{username}{unique_name('')}"[:30]
    arn, _user, old = create_app_user(runtime, db_server, username=unique)
    before = all_logins(db_server)

    assert runtime.rotate(arn).succeeded

    new = secret_value(runtime, arn)["password"]
    assert db_server.can_login(unique, new) and not db_server.can_login(unique, old)
    assert all_logins(db_server) == before
    assert db_server.can_login(bystander, bystander_password)


def _set_password_as_admin(server: DatabaseServer, username: str, password: str) -> None:
    with contextlib.closing(server.admin_connection()) as conn, conn.cursor() as cur:
        if server.engine == "postgres":
            from psycopg2 import sql

            cur.execute(
                sql.SQL("ALTER ROLE {} PASSWORD %s").format(sql.Identifier(username)), (password,)
            )
        else:
            cur.execute("ALTER USER %s@'%%' IDENTIFIED BY %s", (username, password))


def test_passwords_full_of_quotes_and_backslashes_rotate(
    runtime: Any, db_server: DatabaseServer
) -> None:
    import string

    keep = "aA1'\"\\%;"
    excluded = "".join(c for c in string.printable if c not in keep and not c.isspace())
    username, old = unique_name(), "Old'\"\\%;-" + new_password()
    db_server.create_login(username, old)
    arn = runtime.client("secretsmanager").create_secret(
        Name=f"it/{unique_name()}",
        SecretString=json.dumps(database_secret(db_server, username, old)),
        Tags=[
            {"Key": "RotationExcludeCharacters", "Value": excluded},
            {"Key": "RotationPasswordLength", "Value": "64"},
        ],
    )["ARN"]
    for _ in range(2):
        assert runtime.rotate(arn).succeeded
        new = secret_value(runtime, arn)["password"]
        assert set(new) <= set(keep) and {"'", '"', "\\"} & set(new)
        assert db_server.can_login(username, new) and not db_server.can_login(username, old)
        old = new


def test_a_new_token_after_a_stuck_rotation_finds_the_stale_password_and_completes(
    runtime: Any, db_server: DatabaseServer
) -> None:
    import uuid

    arn, username, old = create_app_user(runtime, db_server)

    def crash_before_finish(spec: Any, event: Any) -> None:
        if spec.logical_id == "RouterFunction" and event.get("Step") == "finishSecret":
            raise RuntimeError("router crashed before finishSecret")

    runtime.host.before_invoke.append(crash_before_finish)
    stuck = runtime.rotate(arn)
    runtime.host.before_invoke.remove(crash_before_finish)
    stale = secret_value(runtime, arn, VersionId=stuck.token)["password"]
    assert db_server.can_login(username, stale) and not db_server.can_login(username, old)

    # Secrets Manager (or an operator testing the function) invokes the router with a new token
    token = runtime.stage_rotation(arn, str(uuid.uuid4()))
    for step in ("createSecret", "setSecret", "testSecret", "finishSecret"):
        result = _router(runtime, step, arn, token)
        assert not result.failed, result.error

    new = secret_value(runtime, arn)["password"]
    assert db_server.can_login(username, new) and not db_server.can_login(username, stale)
    stages = _stages(runtime, arn)
    # invoked directly, not through RotateSecret: Secrets Manager's own clean-up of AWSPENDING
    # after a successful rotation does not happen (the function only moves AWSCURRENT)
    assert stages.get(stuck.token, []) == [] and set(stages[token]) == {"AWSCURRENT", "AWSPENDING"}
    assert _worker_outcomes(runtime, "SingleUserSetSecretFunction") == ["changed", "changed"]


def test_the_password_policy_tags_reach_the_worker(
    runtime: Any, postgres_server: DatabaseServer
) -> None:
    excluded = "aeiouAEIOU01234"
    username, old = unique_name(), new_password()
    postgres_server.create_login(username, old)
    arn = runtime.client("secretsmanager").create_secret(
        Name=f"it/{unique_name()}",
        SecretString=json.dumps(database_secret(postgres_server, username, old)),
        Tags=[
            {"Key": "RotationPasswordLength", "Value": "20"},
            {"Key": "RotationExcludeCharacters", "Value": excluded},
        ],
    )["ARN"]
    assert runtime.rotate(arn).succeeded
    password = secret_value(runtime, arn)["password"]
    assert len(password) == 20 and not set(password) & set(excluded)
