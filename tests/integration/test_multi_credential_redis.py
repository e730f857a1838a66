"""Multi-credential rotation of a Redis ACL user: the new password joins the current one."""

from __future__ import annotations

import json
from typing import Any

import pytest

from rotator.checks import eventually
from rotator.dbservers import DatabaseServer
from tests.integration.conftest import (
    GROUP_TAGS,
    create_master,
    database_secret,
    new_password,
    secret_value,
    unique_name,
)

pytestmark = pytest.mark.integration


def _redis_secret(rt: Any, server: DatabaseServer, *, master: bool) -> tuple[str, str, str]:
    username, password = unique_name("cache"), new_password()
    server.create_login(username, password)
    extra = {"masterarn": create_master(rt, server)} if master else {}
    secret = database_secret(server, username, password, **extra)
    arn = rt.client("secretsmanager").create_secret(
        Name=f"it/redis/{unique_name()}",
        SecretString=json.dumps(secret),
        Tags=GROUP_TAGS,
    )["ARN"]
    return arn, username, password


@pytest.mark.parametrize("master", [True, False], ids=["with-master", "self-managed"])
def test_both_passwords_work_until_the_old_one_is_retired(
    runtime: Any, redis_server: DatabaseServer, master: bool
) -> None:
    arn, username, old = _redis_secret(runtime, redis_server, master=master)

    outcome = runtime.rotate(arn)

    assert outcome.succeeded, outcome.error
    new = secret_value(runtime, arn)["password"]
    assert redis_server.can_login(username, new) and redis_server.can_login(username, old)
    assert eventually(lambda: not redis_server.can_login(username, old))
    assert redis_server.can_login(username, new)


def test_each_step_twice_adds_one_password(runtime: Any, redis_server: DatabaseServer) -> None:
    arn, username, _old = _redis_secret(runtime, redis_server, master=True)
    token = runtime.stage_rotation(arn)
    for step in ("createSecret", "setSecret", "testSecret", "finishSecret"):
        for _ in range(2):
            result = runtime.invoke_router(
                {"Step": step, "SecretId": arn, "ClientRequestToken": token}
            )
            assert not result.failed, result.error
    admin = redis_server.admin_connection()
    try:
        rules = admin.execute_command("ACL", "GETUSER", username)
    finally:
        admin.close()
    assert len(rules["passwords"]) == 2  # the current one and the new one, hashed


def test_a_rotation_of_an_unknown_acl_user_creates_no_user(
    runtime: Any, redis_server: DatabaseServer
) -> None:
    master_arn = create_master(runtime, redis_server)
    ghost = unique_name("ghost")
    secret = database_secret(redis_server, ghost, new_password(), masterarn=master_arn)
    arn = runtime.client("secretsmanager").create_secret(
        Name=f"it/{unique_name()}",
        SecretString=json.dumps(secret),
        Tags=GROUP_TAGS,
    )["ARN"]
    outcome = runtime.rotate(arn)
    assert not outcome.succeeded
    admin = redis_server.admin_connection()
    try:
        assert ghost not in admin.acl_users()
    finally:
        admin.close()


@pytest.mark.parametrize("username", ["app-user", "O'Brien", 'a"b', "back`tick%"])
def test_hostile_acl_user_names_rotate(
    runtime: Any, redis_server: DatabaseServer, username: str
) -> None:
    unique = f"{username}-{unique_name('')}"
    password = new_password()
    redis_server.create_login(unique, password)
    secret = database_secret(redis_server, unique, password)
    arn = runtime.client("secretsmanager").create_secret(
        Name=f"it/{unique_name()}",
        SecretString=json.dumps(secret),
        Tags=GROUP_TAGS,
    )["ARN"]
    assert runtime.rotate(arn).succeeded
    new = secret_value(runtime, arn)["password"]
    assert redis_server.can_login(unique, new) and redis_server.can_login(unique, password)


def test_a_guessed_password_and_a_master_add_nothing_to_someone_elses_user(
    runtime: Any, redis_server: DatabaseServer
) -> None:
    victim, victim_password = unique_name("victim"), new_password()
    redis_server.create_login(victim, victim_password)
    master_arn = create_master(runtime, redis_server)
    secret = database_secret(redis_server, victim, "wrong-guess", masterarn=master_arn)
    arn = runtime.client("secretsmanager").create_secret(
        Name=f"it/{unique_name()}",
        SecretString=json.dumps(secret),
        Tags=GROUP_TAGS,
    )["ARN"]

    outcome = runtime.rotate(arn)

    assert (
        outcome.failed_step == "createSecret"
        and "NoWorkingCredentialError" in outcome.error["errorMessage"]
    )
    admin = redis_server.admin_connection()
    try:
        assert len(admin.execute_command("ACL", "GETUSER", victim)["passwords"]) == 1
    finally:
        admin.close()
    assert redis_server.can_login(victim, victim_password)
