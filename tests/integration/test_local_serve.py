"""``rotator local serve`` driven by plain boto3, as a user with their own databases would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from rotator.checks import access_key_works, eventually
from rotator.dbservers import DatabaseServer
from tests.conftest import assert_no_value_in
from tests.integration.conftest import GROUP_TAGS, database_secret, new_password, unique_name
from tests.support.serve import Served, serve

pytestmark = pytest.mark.integration


SEEN_VALUES: dict[str, str] = {}


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Served]:
    """``rotator local serve --json`` in a subprocess, trusting the test CA; at the end its
    stderr (the function logs) is scanned for every secret value the tests saw."""
    test_ca = request.getfixturevalue("test_ca")
    log_path = tmp_path_factory.mktemp("serve") / "stderr.log"
    with serve(log_path, test_ca.directory) as running:
        yield running
    assert running.process.returncode == 0
    logged = log_path.read_text()
    if SEEN_VALUES:  # this worker ran rotations (xdist may give it only the ready-line test)
        assert '"rotation_step"' in logged and '"level":"INFO"' in logged, "serve logged nothing"
    assert_no_value_in(logged, SEEN_VALUES)


@pytest.fixture(scope="module")
def endpoint(served: Served) -> dict[str, Any]:
    return served.ready


def _client(ready: dict[str, Any], service: str) -> Any:
    """Signed with the key pair serve minted for this run (printed in its ready line)."""
    return boto3.client(
        service,
        endpoint_url=ready["endpoint_url"],
        region_name="us-east-1",
        aws_access_key_id=ready["aws_access_key_id"],
        aws_secret_access_key=ready["aws_secret_access_key"],
    )


def _rotate(ready: dict[str, Any], arn: str) -> None:
    """RotateSecret, then wait until that rotation has ended (it runs asynchronously, as on
    AWS): its version holds AWSCURRENT and no longer AWSPENDING, or an alert came."""
    sm = _client(ready, "secretsmanager")
    token = sm.rotate_secret(SecretId=arn, RotationLambdaARN=ready["router_function_arn"])[
        "VersionId"
    ]

    def ended() -> bool:
        stages = sm.describe_secret(SecretId=arn)["VersionIdsToStages"].get(token, [])
        return stages == ["AWSCURRENT"] or _alert_waiting(ready, arn)

    assert eventually(ended, timeout=90), "the rotation did not end"


def _alert_waiting(ready: dict[str, Any], arn: str) -> bool:
    """An alert about this secret is on the queue (peeked: it stays for whoever reads it)."""
    messages = (
        _client(ready, "sqs")
        .receive_message(
            QueueUrl=ready["alert_queue_url"], MaxNumberOfMessages=10, VisibilityTimeout=0
        )
        .get("Messages", [])
    )
    return any(arn in message["Body"] for message in messages)


def test_the_ready_line_names_what_a_client_needs(endpoint: dict[str, Any]) -> None:
    assert endpoint["endpoint_url"].startswith("http://127.0.0.1:")
    # what a user sets as the rotation function: the router's alias
    assert endpoint["router_function_arn"].endswith(":function:rotator-router:live")
    assert "RotationStateMachine" in endpoint["state_machine_arns"]
    assert endpoint["alert_queue_url"] in _client(endpoint, "sqs").list_queues()["QueueUrls"]
    assert endpoint["aws_access_key_id"] and endpoint["aws_secret_access_key"]


def test_plain_boto3_rotates_a_user_created_outside_the_project(
    endpoint: dict[str, Any], db_server: DatabaseServer
) -> None:
    username, old = unique_name("outside"), new_password()
    db_server.create_login(username, old)
    sm = _client(endpoint, "secretsmanager")
    arn = sm.create_secret(
        Name=f"serve/{username}", SecretString=json.dumps(database_secret(db_server, username, old))
    )["ARN"]

    _rotate(endpoint, arn)

    new = json.loads(sm.get_secret_value(SecretId=arn)["SecretString"])["password"]
    SEEN_VALUES.update({f"{username} old": old, f"{username} new": new})
    assert (
        new != old and db_server.can_login(username, new) and not db_server.can_login(username, old)
    )
    sfn = _client(endpoint, "stepfunctions")
    machine = endpoint["state_machine_arns"]["RotationStateMachine"]
    mine = [
        e
        for e in sfn.list_executions(stateMachineArn=machine)["executions"]
        if e["status"] == "SUCCEEDED"
    ]
    histories = json.dumps(
        [sfn.get_execution_history(executionArn=e["executionArn"]) for e in mine], default=str
    )
    assert len(mine) >= 4
    assert_no_value_in(histories, {"old": old, "new": new})


def test_a_rotation_that_must_fail_leaves_everything_and_sends_one_alert(
    endpoint: dict[str, Any], postgres_server: DatabaseServer
) -> None:
    username, real = unique_name("wrongpw"), new_password()
    postgres_server.create_login(username, real)
    sm, sqs = _client(endpoint, "secretsmanager"), _client(endpoint, "sqs")
    sqs.purge_queue(QueueUrl=endpoint["alert_queue_url"])
    wrong = database_secret(postgres_server, username, new_password())
    SEEN_VALUES.update({f"{username} real": real, f"{username} stored": wrong["password"]})
    arn = sm.create_secret(Name=f"serve/{username}", SecretString=json.dumps(wrong))["ARN"]
    current = sm.get_secret_value(SecretId=arn)["VersionId"]

    _rotate(endpoint, arn)

    assert sm.get_secret_value(SecretId=arn)["VersionId"] == current
    assert postgres_server.can_login(username, real)
    messages = sqs.receive_message(
        QueueUrl=endpoint["alert_queue_url"], MaxNumberOfMessages=10, WaitTimeSeconds=1
    ).get("Messages", [])
    assert len(messages) == 1
    alert = json.loads(json.loads(messages[0]["Body"])["Message"])
    assert alert["secret_arn"] == arn and alert["error"] == "NoWorkingCredentialError"
    assert_no_value_in(messages[0]["Body"], {"real": real, "stored": wrong["password"]})


def test_plain_boto3_alternates_users_three_times_with_a_master_secret(
    endpoint: dict[str, Any], db_server: DatabaseServer
) -> None:
    import contextlib

    sm = _client(endpoint, "secretsmanager")
    master, master_password = unique_name("master"), new_password()
    db_server.create_login(master, master_password, superuser=True)
    master_arn = sm.create_secret(
        Name=f"serve/{master}",
        SecretString=json.dumps(database_secret(db_server, master, master_password)),
        Tags=[{"Key": "SecretRotationMaster", "Value": "rotator"}, *GROUP_TAGS],
    )["ARN"]
    original, password = unique_name("alt"), new_password()
    db_server.create_login(original, password)
    secret = database_secret(db_server, original, password, masterarn=master_arn)
    arn = sm.create_secret(
        Name=f"serve/{original}", SecretString=json.dumps(secret), Tags=GROUP_TAGS
    )["ARN"]
    with (
        contextlib.closing(
            db_server.admin_connection("app" if db_server.engine == "postgres" else None)
        ) as conn,
        conn.cursor() as cur,
    ):
        if db_server.engine == "postgres":
            cur.execute(f'CREATE SCHEMA "{original}" AUTHORIZATION "{original}"')
        else:
            cur.execute(f"GRANT ALL ON `app`.* TO '{original}'@'%'")
    table = f'"{original}".t' if db_server.engine == "postgres" else f"app.`{original}`"
    with (
        contextlib.closing(db_server.connect(original, password, "app")) as conn,
        conn.cursor() as cur,
    ):
        cur.execute(f"CREATE TABLE {table} (n INT)")

    for expected in (f"{original}_clone", original, f"{original}_clone"):
        before = json.loads(sm.get_secret_value(SecretId=arn)["SecretString"])
        _rotate(endpoint, arn)
        current = json.loads(sm.get_secret_value(SecretId=arn)["SecretString"])
        SEEN_VALUES[f"{expected} {current['password'][:4]}"] = current["password"]
        assert current["username"] == expected
        assert db_server.can_login(current["username"], current["password"])
        assert db_server.can_login(before["username"], before["password"])
        with (
            contextlib.closing(
                db_server.connect(current["username"], current["password"], "app")
            ) as conn,
            conn.cursor() as cur,
        ):
            cur.execute(f"INSERT INTO {table} VALUES (1)")
            cur.execute(f"SELECT count(*) FROM {table}")
            assert cur.fetchone()[0] >= 1


def test_plain_boto3_rotates_iam_keys_twice_and_retires_the_old_one(
    endpoint: dict[str, Any],
) -> None:
    iam, sm = _client(endpoint, "iam"), _client(endpoint, "secretsmanager")
    user = unique_name("svc")
    iam.create_user(UserName=user, Tags=[{"Key": "SecretRotation", "Value": "rotator"}])
    key = iam.create_access_key(UserName=user)["AccessKey"]
    value = {
        "engine": "iam",
        "username": user,
        "access_key_id": key["AccessKeyId"],
        "secret_access_key": key["SecretAccessKey"],
    }
    arn = sm.create_secret(Name=f"serve/iam/{user}", SecretString=json.dumps(value))["ARN"]

    def works(creds: dict[str, Any]) -> bool:
        return access_key_works(creds, "us-east-1", endpoint_url=endpoint["endpoint_url"])

    for _ in range(2):
        previous = json.loads(sm.get_secret_value(SecretId=arn)["SecretString"])
        _rotate(endpoint, arn)
        current = json.loads(sm.get_secret_value(SecretId=arn)["SecretString"])
        SEEN_VALUES[f"{user} {current['access_key_id']}"] = current["secret_access_key"]
        assert current["access_key_id"] != previous["access_key_id"]
        assert len(iam.list_access_keys(UserName=user)["AccessKeyMetadata"]) <= 2
        assert works(current) and works(previous)
    eventually(lambda: not works(previous))
    statuses = {
        k["AccessKeyId"]: k["Status"]
        for k in iam.list_access_keys(UserName=user)["AccessKeyMetadata"]
    }
    assert not works(previous) and statuses.get(previous["access_key_id"], "Deleted") != "Active"
    assert works(current)


def test_rotator_migrate_dry_run_reports_through_the_endpoint(
    endpoint: dict[str, Any], postgres_server: DatabaseServer
) -> None:
    username, password = unique_name("mig"), new_password()
    postgres_server.create_login(username, password)
    sm = _client(endpoint, "secretsmanager")
    name = f"serve/{username}"
    sm.create_secret(
        Name=name, SecretString=json.dumps(database_secret(postgres_server, username, password))
    )
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": endpoint["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": endpoint["aws_secret_access_key"],
    }
    command = [sys.executable, "-m", "rotator.cli", "migrate", name, "--dry-run", "--json"]
    command += ["--endpoint-url", endpoint["endpoint_url"], "--region", "us-east-1"]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)

    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["strategy"] == "single-user" and report["blocked"] is False
    assert password not in done.stdout + done.stderr
    assert "RotationLambdaARN" not in sm.describe_secret(SecretId=name)  # dry run: unchanged


def test_rotator_status_and_plan_report_through_the_endpoint(
    endpoint: dict[str, Any], postgres_server: DatabaseServer
) -> None:
    """The operator commands as a user runs them: a separate process, the served endpoint, the
    probe function of the served stack; exit codes as documented, no value in the output."""
    username, password = unique_name("ops"), new_password()
    postgres_server.create_login(username, password)
    SEEN_VALUES[f"{username} password"] = password
    sm = _client(endpoint, "secretsmanager")
    name = f"serve/{username}"
    sm.create_secret(
        Name=name, SecretString=json.dumps(database_secret(postgres_server, username, password))
    )
    sm.rotate_secret(
        SecretId=name, RotationLambdaARN=endpoint["router_function_arn"], RotateImmediately=False
    )
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": endpoint["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": endpoint["aws_secret_access_key"],
    }
    where = ["--endpoint-url", endpoint["endpoint_url"], "--region", "us-east-1"]

    def rotator(*argv: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "rotator.cli", *argv, *where]
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
        assert password not in done.stdout + done.stderr
        return done

    planned = rotator("plan", name, "--json")
    assert planned.returncode == 0, planned.stderr
    assert json.loads(planned.stdout)["details"]["probe"]["Statements"] == [
        f"ALTER ROLE \"{username}\" PASSWORD '<redacted>'"
    ]
    _rotate(endpoint, name)
    rotated = json.loads(sm.get_secret_value(SecretId=name)["SecretString"])["password"]
    SEEN_VALUES[f"{username} rotated password"] = rotated
    status = rotator("status", name)
    assert status.returncode == 0, status.stderr
    assert "AWSCURRENT" in status.stdout and "finishSecret SUCCEEDED" in status.stdout
    assert rotated not in status.stdout + status.stderr
    missing = rotator("status", "serve/no-such-secret")
    assert missing.returncode == 1 and missing.stderr.startswith("rotator: ")
