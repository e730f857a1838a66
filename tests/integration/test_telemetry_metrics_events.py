"""Metrics (EMF on stdout) and the "Secret rotated" event, from real rotations on the local runtime.

The functions print their EMF records to stdout (Powertools); the tests read them back from
pytest's capture. The event goes through moto's EventBridge: a rule on the default bus that
matches the stack's source and ``Secret rotated`` delivers to an SQS queue the test reads.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from typing import Any

import pytest

from rotator.dbservers import DatabaseServer
from tests.conftest import assert_no_value_in
from tests.integration.conftest import create_app_user, new_password

pytestmark = pytest.mark.integration


def _emf_records(text: str) -> list[dict[str, Any]]:
    records = []
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("{") or '"_aws"' not in line:
            continue
        records.append(json.loads(line))
    return records


def _value(record: dict[str, Any], name: str) -> float:
    """A metric's value in a record (Powertools writes each as a one-element list)."""
    value = record[name]
    assert isinstance(value, list) and len(value) == 1
    return float(value[0])


def _metrics(records: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    """Every record holding metric ``name`` (the record carries its dimensions' values)."""
    found = []
    for record in records:
        for directive in record["_aws"]["CloudWatchMetrics"]:
            if any(m["Name"] == name for m in directive["Metrics"]):
                found.append(record)
    return found


@pytest.fixture
def inbox(runtime: Any) -> Iterator[str]:
    """An SQS queue behind a rule on the default bus for this stack's "Secret rotated" events."""
    events, sqs = runtime.client("events"), runtime.client("sqs")
    name = f"rotated-{secrets.token_hex(4)}"
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    events.put_rule(
        Name=name,
        EventPattern=json.dumps(
            {"source": [runtime.stack_name], "detail-type": ["Secret rotated"]}
        ),
    )
    events.put_targets(Rule=name, Targets=[{"Id": "inbox", "Arn": arn}])
    try:
        yield url
    finally:
        events.remove_targets(Rule=name, Ids=["inbox"])
        events.delete_rule(Name=name)
        sqs.delete_queue(QueueUrl=url)


def _received(runtime: Any, url: str) -> list[dict[str, Any]]:
    sqs = runtime.client("sqs")
    found = []
    while True:
        batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not batch:
            return found
        for message in batch:
            found.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def test_a_rotation_reports_its_metrics_by_strategy_and_engine_without_values(
    runtime: Any, db_server: DatabaseServer, capsys: pytest.CaptureFixture[str]
) -> None:
    arn, _, _ = create_app_user(runtime, db_server)
    capsys.readouterr()

    outcome = runtime.rotate(arn)

    assert outcome.succeeded, outcome.error
    out = capsys.readouterr().out
    records = _emf_records(out)
    engine = json.loads(
        runtime.client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"]
    )["engine"]
    done = _metrics(records, "RotationSucceeded")
    assert len(done) == 1
    rotation = done[0]
    assert rotation["_aws"]["CloudWatchMetrics"][0]["Namespace"] == runtime.stack_name
    assert rotation["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [
        ["Strategy", "Engine", "service"]
    ]
    assert (rotation["Strategy"], rotation["Engine"]) == ("single-user", engine)
    assert _value(rotation, "RotationSucceeded") == 1
    duration, outage = _value(rotation, "RotationDuration"), _value(rotation, "OutageWindow")
    # the password changed in setSecret and AWSCURRENT moved in finishSecret, after the test
    assert 0 < outage < duration
    steps = {r["Step"]: r for r in _metrics(records, "StepSucceeded")}
    assert set(steps) == {"createSecret", "setSecret", "testSecret", "finishSecret"}
    for record in steps.values():
        assert (record["Strategy"], record["Engine"]) == ("single-user", engine)
        assert _value(record, "StepDuration") > 0 and _value(record, "StepAttempts") == 1
    assert not _metrics(records, "RotationFailed")
    assert_no_value_in(out, runtime.secret_values())


def test_a_failed_rotation_counts_as_failed_and_reports_no_outage(
    runtime: Any, db_server: DatabaseServer, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a secret whose password the database no longer accepts (changed behind its back)
    arn, username, _ = create_app_user(runtime, db_server)
    db_server.drop_login(username)
    db_server.create_login(username, new_password())
    capsys.readouterr()

    outcome = runtime.rotate(arn)

    assert not outcome.succeeded
    out = capsys.readouterr().out
    records = _emf_records(out)
    failed = _metrics(records, "RotationFailed")
    assert failed and all(r["Strategy"] == "single-user" for r in failed)
    assert {r["Step"] for r in _metrics(records, "StepFailed")} == {outcome.failed_step}
    assert not _metrics(records, "RotationSucceeded") and not _metrics(records, "OutageWindow")
    assert_no_value_in(out, runtime.secret_values())


def test_each_successful_rotation_sends_one_secret_rotated_event(
    runtime: Any, postgres_server: DatabaseServer, inbox: str
) -> None:
    arn, _, _ = create_app_user(runtime, postgres_server)

    first = runtime.rotate(arn)
    second = runtime.rotate(arn)

    assert first.succeeded and second.succeeded
    received = _received(runtime, inbox)
    assert [e["detail"]["VersionId"] for e in received] == [first.token, second.token]
    for event in received:
        assert event["source"] == runtime.stack_name
        assert event["detail-type"] == "Secret rotated"
        assert event["resources"] == [arn]
        assert event["detail"]["SecretArn"] == arn
        assert event["detail"]["Strategy"] == "single-user"
        assert event["detail"]["DurationSeconds"] > 0
        assert set(event["detail"]) == {"SecretArn", "VersionId", "Strategy", "DurationSeconds"}
    assert_no_value_in(json.dumps(received), runtime.secret_values())


def test_a_failed_rotation_sends_no_event(
    runtime: Any, postgres_server: DatabaseServer, inbox: str
) -> None:
    arn, username, _ = create_app_user(runtime, postgres_server)
    postgres_server.drop_login(username)
    postgres_server.create_login(username, new_password())

    outcome = runtime.rotate(arn)

    assert not outcome.succeeded
    assert _received(runtime, inbox) == []
