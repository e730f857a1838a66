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

from rotator.dbservers import DatabaseServer
from tests.conftest import assert_no_value_in
from tests.integration.conftest import database_secret, new_password, unique_name

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def endpoint() -> Iterator[dict[str, Any]]:
    command = [sys.executable, "-m", "rotator.cli", "local", "serve", "--json"]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        line = process.stdout.readline() if process.stdout else ""
        assert line, "serve exited before printing its ready line"
        ready = json.loads(line)
        yield ready
    finally:
        process.terminate()
        process.wait(timeout=20)
    assert process.returncode == 0


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
