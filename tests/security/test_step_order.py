"""Attack class 5: steps out of order, and pending versions the rotation did not create.

Secrets Manager calls the router with an event anyone allowed to invoke it can forge, and a
value editor can stage a version AWSPENDING with PutSecretValue. finishSecret may move
AWSCURRENT only to a version whose testSecret passed for this token (with no rollback since);
setSecret may only make the backend accept a pending value that this rotation's createSecret
generated.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from rotator.dbservers import DatabaseServer
from tests.security.conftest import (
    REFUSAL_ERRORS,
    STEPS,
    alternating_pair,
    app_secret,
    assert_refused,
    current_version,
    database_secret,
    master_secret,
    role_state,
    router,
    unique_name,
    value_of,
)

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    "skipped",
    [("setSecret", "testSecret"), ("testSecret",)],
    ids=["create-then-finish", "set-then-finish"],
)
def test_finish_secret_refuses_a_version_whose_test_never_passed(
    runtime: Any, postgres_server: DatabaseServer, skipped: tuple[str, ...]
) -> None:
    """Attacker: may invoke the router (lambda:InvokeFunction, or a forged event through any
    path that reaches it); holds no password.

    Today: createSecret then finishSecret moves AWSCURRENT to a password no database has;
    every client reading the secret is locked out.

    Must hold: finishSecret fails with RotationStateError (or InvalidSecretError) and
    AWSCURRENT stays on its version, which still logs in when setSecret never ran; the same
    token then completes normally through testSecret and finishSecret.
    """
    server = postgres_server
    arn, user, password = app_secret(runtime, server)
    current = current_version(runtime, arn)
    token = runtime.stage_rotation(arn)
    for step in STEPS[:-1]:
        if step not in skipped:
            result = router(runtime, step, arn, token)
            assert not result.failed, result.error

    finish = router(runtime, "finishSecret", arn, token)

    assert current_version(runtime, arn) == current, "AWSCURRENT moved to an untested version"
    if "setSecret" in skipped:
        assert server.can_login(user, password)
    assert_refused(finish, "finishSecret", REFUSAL_ERRORS)
    for step in STEPS:
        result = router(runtime, step, arn, token)
        assert not result.failed, (step, result.error)
    new = value_of(runtime, arn)
    assert current_version(runtime, arn) == token
    assert server.can_login(user, new["password"])


def test_finish_before_test_does_not_lock_out_a_redis_user(
    runtime: Any, redis_server: DatabaseServer
) -> None:
    """Attacker: may invoke the router; holds no password.

    Today: createSecret then finishSecret makes a password Redis never received AWSCURRENT,
    and the retirement then removes the password clients still hold: total lockout.

    Must hold: finishSecret fails with RotationStateError (or InvalidSecretError); AWSCURRENT
    does not move; no retirement starts; the current password still logs in.
    """
    server = redis_server
    master_arn, _m, _p = master_secret(runtime, server, group=(group := unique_name("g")))
    arn, user, password = app_secret(runtime, server, master_arn=master_arn, group=group)
    current = current_version(runtime, arn)
    token = runtime.stage_rotation(arn)
    assert not router(runtime, "createSecret", arn, token).failed

    finish = router(runtime, "finishSecret", arn, token)

    assert current_version(runtime, arn) == current, "AWSCURRENT moved to an untested version"
    retirements = runtime.client("stepfunctions").list_executions(
        stateMachineArn=runtime.retirement_state_machine_arn
    )["executions"]
    assert retirements == []
    assert server.can_login(user, password)
    assert_refused(finish, "finishSecret", REFUSAL_ERRORS)


def _plant_pending(rt: Any, arn: str, value: dict[str, Any]) -> str:
    """What a value editor (PutSecretValue only, no GetSecretValue) can do: stage its own
    version AWSPENDING. Secrets Manager's next attempt rotates with that version's id."""
    token = "planted-" + unique_name("v").replace("_", "-") + "-0123456789abcdef"
    rt.client("secretsmanager").put_secret_value(
        SecretId=arn,
        ClientRequestToken=token,
        SecretString=json.dumps(value),
        VersionStages=["AWSPENDING"],
    )
    staged = rt.stage_rotation(arn, token=token)
    assert staged == token
    return token


@pytest.mark.parametrize("strategy", ["single-user", "alternating-users"])
def test_a_value_editor_cannot_choose_the_password_the_rotation_sets(
    runtime: Any, postgres_server: DatabaseServer, strategy: str
) -> None:
    """Attacker: may put secret values (PutSecretValue), cannot read them and holds no
    database password. It stages a version AWSPENDING holding a password it chose (for
    alternating users: naming the idle ``_clone`` user, as createSecret would).

    Today: the next attempt finds "the pending version already stored", setSecret makes the
    database accept the attacker's password (alternating users: the master sets it on the
    clone, which acts as the original) and finishSecret makes it current: the attacker logs in.

    Must hold: createSecret or setSecret fails with RotationStateError (or InvalidSecretError)
    before any database change: the chosen password never logs in, the users' password
    verifiers are unchanged, AWSCURRENT stays where it was and still logs in.
    """
    server = postgres_server
    if strategy == "single-user":
        arn, user, password = app_secret(runtime, server)
        target = user
        planted = database_secret(server, user, "Chosen-by-the-editor-1")
    else:
        arn, user, password, master_arn = alternating_pair(runtime, server)
        target = f"{user}_clone"
        planted = database_secret(server, target, "Chosen-by-the-editor-1", masterarn=master_arn)
    current = current_version(runtime, arn)
    users_before = {name: role_state(server, name) for name in (user, target)}
    token = _plant_pending(runtime, arn, planted)

    results = []
    for step in STEPS:
        results.append(router(runtime, step, arn, token))
        if results[-1].failed:
            break

    assert not server.can_login(target, planted["password"]), "the attacker's password works"
    assert {name: role_state(server, name) for name in (user, target)} == users_before
    assert current_version(runtime, arn) == current
    assert server.can_login(user, password)
    assert_refused(results[-1], None, REFUSAL_ERRORS)
    assert results[-1].event["Step"] in ("createSecret", "setSecret")
