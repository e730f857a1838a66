"""``rotator local serve`` driven by plain boto3, as a user with their own databases would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from rotator.checks import access_key_works, eventually
from rotator.dbservers import DatabaseServer
from tests.conftest import assert_no_value_in
from tests.integration.conftest import database_secret, new_password, unique_name

pytestmark = pytest.mark.integration


SEEN_VALUES: dict[str, str] = {}


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """``rotator local serve --json`` in a subprocess; at the end its stderr (the function
    logs) is scanned for every secret value the tests saw."""
    command = [sys.executable, "-m", "rotator.cli", "local", "serve", "--json"]
    log_path = tmp_path_factory.mktemp("serve") / "stderr.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            cwd=Path(__file__).resolve().parents[2],
        )
        try:
            line = process.stdout.readline() if process.stdout else ""
            assert line, "serve exited before printing its ready line"
            yield json.loads(line)
        finally:
            process.terminate()
            process.wait(timeout=20)
    assert process.returncode == 0
    logged = log_path.read_text()
    if SEEN_VALUES:  # this worker ran rotations (xdist may give it only the ready-line test)
        assert '"rotation_step"' in logged and '"level":"INFO"' in logged, "serve logged nothing"
    assert_no_value_in(logged, SEEN_VALUES)


def _client(ready: dict[str, Any], service: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=ready["endpoint_url"],
        region_name="us-east-1",
        aws_access_key_id="anything",
        aws_secret_access_key="anything",
    )


def test_the_ready_line_names_what_a_client_needs(endpoint: dict[str, Any]) -> None:
    assert endpoint["endpoint_url"].startswith("http://127.0.0.1:")
    assert endpoint["router_function_arn"].endswith(":function:rotator-router")
    assert "RotationStateMachine" in endpoint["state_machine_arns"]
    assert endpoint["alert_queue_url"]


def test_plain_boto3_rotates_a_user_created_outside_the_project(
    endpoint: dict[str, Any], db_server: DatabaseServer
) -> None:
    username, old = unique_name("outside"), new_password()
    db_server.create_login(username, old)
    sm = _client(endpoint, "secretsmanager")
    arn = sm.create_secret(
        Name=f"serve/{username}", SecretString=json.dumps(database_secret(db_server, username, old))
    )["ARN"]

    sm.rotate_secret(SecretId=arn, RotationLambdaARN=endpoint["router_function_arn"])

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

    sm.rotate_secret(SecretId=arn, RotationLambdaARN=endpoint["router_function_arn"])

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
        Tags=[{"Key": "SecretRotationMaster", "Value": "rotator"}],
    )["ARN"]
    original, password = unique_name("alt"), new_password()
    db_server.create_login(original, password)
    secret = database_secret(db_server, original, password, masterarn=master_arn)
    arn = sm.create_secret(Name=f"serve/{original}", SecretString=json.dumps(secret))["ARN"]
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
        sm.rotate_secret(SecretId=arn, RotationLambdaARN=endpoint["router_function_arn"])
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
    iam.create_user(UserName=user)
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
        sm.rotate_secret(SecretId=arn, RotationLambdaARN=endpoint["router_function_arn"])
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
