"""Single-user rotation by the master (tag ``SecretRotationSetBy=master``), on real servers.

For users who may not change their own password, the secret's master (``masterarn``, same
``SecretRotationGroup``) sets it. The master acts only for an account a stored version of this
secret already logs in as; whoever can edit the secret gains nothing: no other role touched,
not the master's own, and nothing is written when it refuses.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from rotator.dbservers import DatabaseServer
from tests.integration.conftest import (
    create_app_user,
    create_master,
    database_secret,
    new_password,
    secret_value,
    unique_name,
)

pytestmark = pytest.mark.integration

#: a secret naming a master rotates with alternating users unless it asks for single-user
SINGLE_USER = {"Key": "RotationStrategy", "Value": "single-user"}
SET_BY_MASTER = [SINGLE_USER, {"Key": "SecretRotationSetBy", "Value": "master"}]


def _set_by_master(rt: Any, arn: str) -> None:
    rt.client("secretsmanager").tag_resource(SecretId=arn, Tags=SET_BY_MASTER)


def _outputs(rt: Any, logical_id: str) -> list[dict[str, Any]]:
    name = rt.spec.functions[logical_id].name
    return [inv.payload for inv in rt.host.invocations if inv.function == name and not inv.failed]


def _no_new_version(rt: Any, arn: str, token: str) -> None:
    with pytest.raises(rt.client("secretsmanager").exceptions.ResourceNotFoundException):
        rt.client("secretsmanager").get_secret_value(SecretId=arn, VersionId=token)


def test_the_master_sets_the_users_password(runtime: Any, db_server: DatabaseServer) -> None:
    master = create_master(runtime, db_server)
    arn, username, old = create_app_user(runtime, db_server, masterarn=master)
    _set_by_master(runtime, arn)
    master_password = secret_value(runtime, master)["password"]

    outcome = runtime.rotate(arn)

    assert outcome.succeeded, outcome.error
    new = secret_value(runtime, arn)["password"]
    assert new != old
    assert db_server.can_login(username, new)
    assert not db_server.can_login(username, old)
    # the master did it, proven by the stored AWSCURRENT; the master itself is untouched
    changed = [out for out in _outputs(runtime, "SingleUserSetSecretFunction") if out]
    assert changed[-1]["LoggedInWith"] == "master" and changed[-1]["ProvenBy"] == "AWSCURRENT"
    assert db_server.can_login(secret_value(runtime, master)["username"], master_password)


def test_without_the_tag_the_user_changes_its_own(runtime: Any, db_server: DatabaseServer) -> None:
    master = create_master(runtime, db_server)
    arn, _username, _old = create_app_user(runtime, db_server, masterarn=master)
    runtime.client("secretsmanager").tag_resource(SecretId=arn, Tags=[SINGLE_USER])

    assert runtime.rotate(arn).succeeded
    outputs = _outputs(runtime, "SingleUserSetSecretFunction")
    assert outputs and all(out.get("LoggedInWith") != "master" for out in outputs)


def test_an_edited_secret_naming_another_user_gets_nothing(
    runtime: Any, db_server: DatabaseServer
) -> None:
    """The attacker can edit the secret but holds no password of the victim: the master must
    not reset the victim's password (it would hand the attacker the victim's login)."""
    master = create_master(runtime, db_server)
    victim, victim_password = unique_name("victim"), new_password()
    db_server.create_login(victim, victim_password)
    forged = database_secret(db_server, victim, new_password(), masterarn=master)
    arn = runtime.client("secretsmanager").create_secret(
        Name=f"it/{unique_name()}",
        SecretString=json.dumps(forged),
        Tags=[{"Key": "SecretRotationGroup", "Value": "it-group"}, *SET_BY_MASTER],
    )["ARN"]

    outcome = runtime.rotate(arn)

    assert not outcome.succeeded and outcome.failed_step == "createSecret"
    assert "NoWorkingCredentialError" in outcome.error["errorMessage"]
    _no_new_version(runtime, arn, outcome.token)
    assert db_server.can_login(victim, victim_password)


def test_a_secret_naming_the_master_itself_is_refused(
    runtime: Any, db_server: DatabaseServer
) -> None:
    """Even holding the master's password, the secret cannot make the master reset its own
    password (that would lock the master secret out)."""
    master = create_master(runtime, db_server)
    master_value = secret_value(runtime, master)
    own = database_secret(
        db_server, master_value["username"], master_value["password"], masterarn=master
    )
    arn = runtime.client("secretsmanager").create_secret(
        Name=f"it/{unique_name()}",
        SecretString=json.dumps(own),
        Tags=[{"Key": "SecretRotationGroup", "Value": "it-group"}, *SET_BY_MASTER],
    )["ARN"]

    outcome = runtime.rotate(arn)

    assert not outcome.succeeded and outcome.failed_step == "createSecret"
    assert "own" in outcome.error["errorMessage"]
    _no_new_version(runtime, arn, outcome.token)
    assert db_server.can_login(master_value["username"], master_value["password"])


def test_a_master_of_another_group_is_refused(runtime: Any, db_server: DatabaseServer) -> None:
    master = create_master(runtime, db_server, group="another-group")
    arn, username, old = create_app_user(runtime, db_server, masterarn=master)
    _set_by_master(runtime, arn)

    outcome = runtime.rotate(arn)

    assert not outcome.succeeded and outcome.failed_step == "createSecret"
    assert "SecretRotationGroup" in outcome.error["errorMessage"]
    _no_new_version(runtime, arn, outcome.token)
    assert db_server.can_login(username, old)


def test_a_bad_tag_value_names_the_tag(runtime: Any, db_server: DatabaseServer) -> None:
    master = create_master(runtime, db_server)
    arn, username, old = create_app_user(runtime, db_server, masterarn=master)
    runtime.client("secretsmanager").tag_resource(
        SecretId=arn, Tags=[SINGLE_USER, {"Key": "SecretRotationSetBy", "Value": "root"}]
    )

    outcome = runtime.rotate(arn)

    assert not outcome.succeeded and outcome.failed_step == "createSecret"
    assert "InvalidSecretError" in outcome.error["errorMessage"]
    assert "SecretRotationSetBy" in outcome.error["errorMessage"]
    _no_new_version(runtime, arn, outcome.token)
    assert db_server.can_login(username, old)
