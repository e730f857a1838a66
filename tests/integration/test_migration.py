"""Switching a secret from AWS's own rotation functions to this router: the next rotation works.

Each test builds its starting state from scratch the way AWS's templates leave it
(aws-samples/aws-secrets-manager-rotation-lambdas): the same JSON keys, ``<user>_clone`` created
by the multi-user template (PostgreSQL: ``CREATE ROLE clone WITH LOGIN PASSWORD ...`` then
``GRANT <current user> TO clone``; MySQL/MariaDB: ``CREATE USER`` then the current user's grants),
and AWSPENDING as an interrupted function leaves it. Then the secret's rotation points at the
router and Secrets Manager calls it: with the pending token (its retry of the unfinished
rotation) or a new one.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from typing import Any

import pytest

from rotator.dbservers import DatabaseServer
from tests.integration.conftest import (
    GROUP_TAGS,
    create_app_user,
    create_master,
    database_secret,
    new_password,
    secret_value,
    unique_name,
)

pytestmark = pytest.mark.integration

STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")


def _stages(rt: Any, arn: str) -> dict[str, list[str]]:
    return dict(rt.client("secretsmanager").describe_secret(SecretId=arn)["VersionIdsToStages"])


def _point_at_router(rt: Any, arn: str) -> None:
    """What a user does to switch: set the rotation function (without rotating now)."""
    rt.client("secretsmanager").rotate_secret(
        SecretId=arn, RotationLambdaARN=rt.router_function_arn, RotateImmediately=False
    )


def _steps(rt: Any, arn: str, token: str) -> list[Any]:
    """Secrets Manager calling the router step by step with ``token`` (stopping at a failure)."""
    results = []
    for step in STEPS:
        result = rt.invoke_router({"Step": step, "SecretId": arn, "ClientRequestToken": token})
        results.append(result)
        if result.failed:
            break
    return results


def _stage_foreign_pending(rt: Any, arn: str, value: dict[str, Any]) -> str:
    """AWSPENDING as an interrupted rotation function leaves it (its createSecret ran)."""
    token = str(uuid.uuid4())
    rt.client("secretsmanager").put_secret_value(
        SecretId=arn,
        ClientRequestToken=token,
        SecretString=json.dumps(value),
        VersionStages=["AWSPENDING"],
    )
    return token


def _set_password(server: DatabaseServer, username: str, password: str) -> None:
    """What the old function's setSecret did (as the user itself, or a master)."""
    with contextlib.closing(server.admin_connection()) as conn, conn.cursor() as cur:
        if server.engine == "postgres":
            from psycopg2 import sql

            cur.execute(
                sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                    sql.Identifier(username), sql.Literal(password)
                )
            )
        else:
            cur.execute("ALTER USER %s@'%%' IDENTIFIED BY %s", (username, password))


# --- single user -------------------------------------------------------------------------------


def test_a_half_finished_rotation_already_set_is_adopted_and_ends_the_lockout(
    runtime: Any, db_server: DatabaseServer
) -> None:
    """AWS's single-user function created AWSPENDING and set it, then died before finishSecret:
    clients on AWSCURRENT are locked out. The router adopts the pending version (the database
    already accepts it), tests it and moves AWSCURRENT: the lockout ends."""
    arn, username, old = create_app_user(runtime, db_server)
    pending = {**secret_value(runtime, arn), "password": new_password()}
    token = _stage_foreign_pending(runtime, arn, pending)
    _set_password(db_server, username, pending["password"])
    assert not db_server.can_login(username, old)  # the outage the old function left
    _point_at_router(runtime, arn)

    results = _steps(runtime, arn, token)

    assert not any(r.failed for r in results), [r.error for r in results if r.failed]
    assert results[0].payload["Outcome"] == "already-adopted"
    assert "AWSCURRENT" in _stages(runtime, arn)[token]
    assert db_server.can_login(username, secret_value(runtime, arn)["password"])


def test_a_half_finished_rotation_never_set_is_cleared_and_the_next_rotation_works(
    runtime: Any, db_server: DatabaseServer
) -> None:
    """AWS's function created AWSPENDING and died before setSecret: the database still takes
    AWSCURRENT. The router will not set a password it did not generate: it removes the stale
    label (nothing else changes, one alert), and the next rotation starts afresh."""
    arn, username, old = create_app_user(runtime, db_server)
    stale = {**secret_value(runtime, arn), "password": new_password()}
    token = _stage_foreign_pending(runtime, arn, stale)
    _point_at_router(runtime, arn)

    results = _steps(runtime, arn, token)

    assert results[-1].failed and results[-1].event["Step"] == "createSecret"
    assert "RotationStateError" in json.dumps(results[-1].error)
    assert _stages(runtime, arn).get(token, []) == []
    assert db_server.can_login(username, old) and not db_server.can_login(
        username, stale["password"]
    )
    assert len(runtime.alerts()) == 1

    fresh = runtime.stage_rotation(arn, str(uuid.uuid4()))
    assert not any(r.failed for r in _steps(runtime, arn, fresh))
    assert db_server.can_login(username, secret_value(runtime, arn)["password"])


# --- alternating users (AWS's multi-user template) ---------------------------------------------


def _aws_multi_user_state(
    rt: Any, server: DatabaseServer, *, rotations: int
) -> tuple[str, str, dict[str, str]]:
    """A user, its clone and the secret as AWS's multi-user template leaves them after
    ``rotations`` rotations (1: AWSCURRENT is the clone, AWSPREVIOUS the original; 2: back to
    the original). Returns (secret ARN, original user, password by user)."""
    master_arn = create_master(rt, server)
    original, clone = unique_name("aws"), None
    passwords = {original: new_password()}
    server.create_login(original, passwords[original])
    clone = f"{original}_clone"
    passwords[clone] = new_password()
    with contextlib.closing(server.admin_connection()) as conn, conn.cursor() as cur:
        if server.engine == "postgres":
            from psycopg2 import sql

            cur.execute(
                sql.SQL("CREATE ROLE {} WITH LOGIN PASSWORD {}").format(
                    sql.Identifier(clone), sql.Literal(passwords[clone])
                )
            )
            cur.execute(
                sql.SQL("GRANT {} TO {}").format(sql.Identifier(original), sql.Identifier(clone))
            )
        else:
            # AWS's MySQL/MariaDB multi-user template: CREATE USER, then every grant of the
            # current user (SHOW GRANTS) applied to the clone
            cur.execute("CREATE USER %s@'%%' IDENTIFIED BY %s", (clone, passwords[clone]))
            cur.execute("SHOW GRANTS FOR %s@'%%'", (original,))
            for (grant,) in cur.fetchall():
                if " IDENTIFIED BY " not in grant:
                    cur.execute(grant.replace(f"`{original}`@`%`", f"`{clone}`@`%`"))
    sm = rt.client("secretsmanager")
    order = [original, clone, original][: rotations + 1]
    arn = sm.create_secret(
        Name=f"it/aws-multi/{unique_name()}",
        SecretString=json.dumps(
            database_secret(server, order[0], passwords[order[0]], masterarn=master_arn)
        ),
        Tags=GROUP_TAGS,
    )["ARN"]
    for user in order[1:]:
        if user == original:  # AWS's template set a new password on the idle user
            passwords[user] = new_password()
            _set_password(server, user, passwords[user])
        sm.put_secret_value(
            SecretId=arn,
            SecretString=json.dumps(
                database_secret(server, user, passwords[user], masterarn=master_arn)
            ),
        )
    return arn, original, passwords


@pytest.mark.parametrize("rotations", [1, 2], ids=["clone-current", "original-current"])
def test_a_secret_rotated_by_aws_multi_user_template_keeps_rotating(
    runtime: Any, db_server: DatabaseServer, rotations: int
) -> None:
    arn, original, _passwords = _aws_multi_user_state(runtime, db_server, rotations=rotations)
    _point_at_router(runtime, arn)

    for _ in range(3):
        before = secret_value(runtime, arn)
        outcome = runtime.rotate(arn)
        assert outcome.succeeded, outcome.error
        current = secret_value(runtime, arn)
        assert current["username"] != before["username"]
        assert {current["username"], before["username"]} == {original, f"{original}_clone"}
        assert db_server.can_login(current["username"], current["password"])
        assert db_server.can_login(before["username"], before["password"])


# --- rotator migrate --dry-run ------------------------------------------------------------------


def _plan(rt: Any, arn: str) -> Any:
    from rotator.migrate import plan

    return plan(
        rt.client("secretsmanager"),
        rt.client("iam"),
        arn,
        stack_name=rt.stack_name,
        router_arn=rt.router_function_arn,
    )


def test_migrate_reports_an_untagged_master_and_group_as_blocking(
    runtime: Any, postgres_server: DatabaseServer
) -> None:
    sm = runtime.client("secretsmanager")
    username, password = unique_name("aws"), new_password()
    postgres_server.create_login(username, password)
    master = sm.create_secret(
        Name=f"it/aws-master/{unique_name()}",
        SecretString=json.dumps(database_secret(postgres_server, "admin", new_password())),
    )["ARN"]
    arn = sm.create_secret(
        Name=f"it/aws-multi/{unique_name()}",
        SecretString=json.dumps(
            database_secret(postgres_server, username, password, masterarn=master)
        ),
    )["ARN"]
    before = _stages(runtime, arn)

    result = _plan(runtime, arn)

    blocking = {f.subject for f in result.findings if f.level == "block"}
    assert result.strategy == "alternating-users" and blocking == {"master", "group"}
    assert password not in result.to_json()
    assert _stages(runtime, arn) == before  # a dry run changes nothing


def test_migrate_says_an_unfinished_rotation_will_be_adopted_or_cleared(
    runtime: Any, db_server: DatabaseServer
) -> None:
    arn, _username, _old = create_app_user(runtime, db_server)
    _stage_foreign_pending(runtime, arn, {**secret_value(runtime, arn), "password": new_password()})

    result = _plan(runtime, arn)

    pending = next(f for f in result.findings if f.subject == "AWSPENDING")
    assert pending.level == "note" and "adopts it" in pending.text and not result.blocked


def test_migrate_passes_a_secret_ready_for_the_router(
    runtime: Any, db_server: DatabaseServer
) -> None:
    arn, _original, _passwords = _aws_multi_user_state(runtime, db_server, rotations=1)
    result = _plan(runtime, arn)
    assert not result.blocked, result.text()
