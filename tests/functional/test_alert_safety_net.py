"""Exactly one alert per failed rotation, whichever part failed.

The state machine announces its own failures; Secrets Manager's RotationFailed event reaches
the safety net for every failed rotation, which announces only what no execution announced.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from rotation_core.recovery import ALERT_SCHEMA_VERSION
from rotator.checks import eventually
from tests.functional.conftest import UNREACHABLE, create_secret


def _safety_net_outcomes(rt: Any) -> list[str]:
    name = rt.spec.functions["AlertSafetyNetFunction"].name
    return [
        inv.payload.get("Outcome")
        for inv in rt.host.invocations
        if inv.function == name and not inv.failed
    ]


def test_a_failure_the_state_machine_announced_is_not_announced_again(runtime: Any) -> None:
    arn = create_secret(runtime, "app/db", UNREACHABLE)
    outcome = runtime.rotate(arn)
    assert outcome.failed_step == "createSecret"
    alerts = runtime.alerts()
    assert len(alerts) == 1 and alerts[0].message["error"] == "DatabaseUnavailableError"
    assert alerts[0].message["schema_version"] == ALERT_SCHEMA_VERSION
    assert _safety_net_outcomes(runtime) == ["already-announced"]


def test_a_failure_before_any_execution_is_announced_by_the_safety_net(runtime: Any) -> None:
    arn = create_secret(runtime, "app/bad", {**UNREACHABLE, "port": "not-a-port"})
    outcome = runtime.rotate(arn)
    assert outcome.failed_step == "createSecret" and runtime.executions() == []
    alerts = runtime.alerts()
    assert len(alerts) == 1
    assert alerts[0].message["secret_arn"] == arn and alerts[0].message["error"] == "RotationFailed"
    assert "outside the state machine" in alerts[0].subject
    assert alerts[0].message["schema_version"] == ALERT_SCHEMA_VERSION
    assert _safety_net_outcomes(runtime) == ["announced"]


def test_an_execution_whose_alert_could_not_be_sent_is_announced_by_the_safety_net(
    runtime: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto.sns.models import SNSBackend

    real_publish, refused = SNSBackend.publish, []

    def refuse_the_first(self: Any, *args: Any, **kwargs: Any) -> Any:
        # the state machine's alert and its plain fallback, each with three retries
        if len(refused) < 8:
            refused.append(1)
            raise RuntimeError("SNS is down")
        return real_publish(self, *args, **kwargs)

    monkeypatch.setattr(SNSBackend, "publish", refuse_the_first)
    arn = create_secret(runtime, "app/db", UNREACHABLE)
    assert runtime.rotate(arn).failed_step == "createSecret"
    alerts = runtime.alerts()
    assert len(alerts) == 1 and alerts[0].message["error"] == "RotationFailed"
    assert alerts[0].message["failed_executions"], "the alert points at the failed execution"


def test_successful_rotations_raise_no_alert(runtime: Any) -> None:
    iam = runtime.client("iam")
    iam.create_user(UserName="svc", Tags=[{"Key": "SecretRotation", "Value": runtime.stack_name}])
    key = iam.create_access_key(UserName="svc")["AccessKey"]
    arn = create_secret(
        runtime,
        "iam/svc",
        {
            "engine": "iam",
            "username": "svc",
            "access_key_id": key["AccessKeyId"],
            "secret_access_key": key["SecretAccessKey"],
        },
    )
    assert runtime.rotate(arn).succeeded
    assert runtime.alerts() == [] and _safety_net_outcomes(runtime) == []


def test_the_alarm_feed_announces_only_retirements_that_sent_no_alert(runtime: Any) -> None:
    safety_net = runtime.spec.functions["AlertSafetyNetFunction"]
    alarm = {
        "Records": [
            {
                "EventSource": "aws:sns",
                "Sns": {"Message": json.dumps({"AlarmName": "FailedRetirementExecutionsAlarm"})},
            }
        ]
    }
    first = runtime.host.invoke(safety_net, alarm)
    assert first.payload == {"Outcome": "already-announced", "Announced": 0}
    assert runtime.alerts() == []


def test_a_failed_retirement_sends_its_own_alert(runtime: Any) -> None:
    import time

    iam = runtime.client("iam")
    iam.create_user(UserName="svc", Tags=[{"Key": "SecretRotation", "Value": runtime.stack_name}])
    key = iam.create_access_key(UserName="svc")["AccessKey"]
    arn = create_secret(
        runtime,
        "iam/svc",
        {
            "engine": "iam",
            "username": "svc",
            "access_key_id": key["AccessKeyId"],
            "secret_access_key": key["SecretAccessKey"],
        },
    )
    assert runtime.rotate(arn).succeeded
    # the IAM user disappears before the retirement runs: deactivating the old key fails
    for k in iam.list_access_keys(UserName="svc")["AccessKeyMetadata"]:
        iam.delete_access_key(UserName="svc", AccessKeyId=k["AccessKeyId"])
    iam.delete_user(UserName="svc")
    deadline = time.monotonic() + 30
    alerts: list[Any] = []
    while not alerts and time.monotonic() < deadline:
        alerts = runtime.alerts(wait_seconds=1)
    assert len(alerts) == 1
    assert alerts[0].message["step"] == "retirement" and alerts[0].subject.startswith(
        "Credential retirement failed"
    )


def test_an_earlier_rotations_alert_does_not_silence_a_later_failure(
    runtime: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rotation_core.adapters.credentials.iam_keys import IamAccessKeys as IamKeys
    from rotation_core.exceptions import RotationStateError
    from tests.functional.conftest import iam_secret

    arn, _value = iam_secret(runtime)
    real_create = IamKeys.create

    def refuse(self: Any, user: str) -> Any:
        raise RotationStateError("injected: IAM refuses")

    monkeypatch.setattr(IamKeys, "create", refuse)
    assert runtime.rotate(arn).failed_step == "createSecret"  # rotation 1 fails and alerts
    monkeypatch.setattr(IamKeys, "create", real_create)
    assert runtime.retry_rotation(arn).succeeded  # Secrets Manager's retry completes it
    runtime.client("secretsmanager").tag_resource(
        SecretId=arn, Tags=[{"Key": "RotationStrategy", "Value": "rainbow"}]
    )
    third = runtime.rotate(arn)  # rotation 3: the router refuses the secret, no execution
    assert third.failed_step == "createSecret"
    alerts = runtime.alerts()
    assert [a.message["error"] for a in alerts] == ["RotationStateError", "RotationFailed"]


def test_a_router_that_gave_up_waiting_leaves_the_announcement_to_its_execution(
    runtime: Any,
) -> None:
    import threading

    from tests.functional.conftest import iam_secret

    arn, _value = iam_secret(runtime)
    token = runtime.stage_rotation(arn)
    gate = threading.Event()

    def hold(spec: Any, _event: Any) -> None:
        if spec.logical_id == "IamKeysCreateSecretFunction":
            gate.wait(20)

    runtime.host.before_invoke.append(hold)
    caller = threading.Thread(
        target=runtime.invoke_router,
        args=({"Step": "createSecret", "SecretId": arn, "ClientRequestToken": token},),
    )
    caller.start()
    try:
        assert eventually(lambda: any(e["status"] == "RUNNING" for e in runtime.executions()), 10)
        safety_net = runtime.spec.functions["AlertSafetyNetFunction"]
        event = {
            "source": "aws.secretsmanager",
            "detail": {"eventName": "RotationFailed", "additionalEventData": {"SecretId": arn}},
        }
        assert runtime.host.invoke(safety_net, event).payload == {"Outcome": "still-running"}
    finally:
        gate.set()
        caller.join(30)
    assert runtime.alerts() == []


def test_a_second_alarm_notification_does_not_announce_the_same_retirement_again(
    runtime: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import UTC, datetime, timedelta

    from moto.sns.models import SNSBackend

    from tests.functional.conftest import iam_secret

    arn, value = iam_secret(runtime)
    assert runtime.rotate(arn).succeeded
    real_publish = SNSBackend.publish
    monkeypatch.setattr(
        SNSBackend, "publish", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("SNS is down"))
    )
    iam = runtime.client("iam")  # the retirement fails, and so does its own alert
    for key in iam.list_access_keys(UserName=value["username"])["AccessKeyMetadata"]:
        iam.delete_access_key(UserName=value["username"], AccessKeyId=key["AccessKeyId"])
    iam.delete_user(UserName=value["username"])
    retirement = runtime.retirement_state_machine_arn
    sfn = runtime.client("stepfunctions")
    assert eventually(
        lambda: sfn.list_executions(stateMachineArn=retirement, statusFilter="FAILED")[
            "executions"
        ],
        30,
    )
    monkeypatch.setattr(SNSBackend, "publish", real_publish)

    def alarm(at: datetime) -> dict[str, Any]:
        message = {
            "AlarmName": "FailedRetirementExecutionsAlarm",
            "StateChangeTime": at.isoformat(),
            "Trigger": {"Period": 300, "EvaluationPeriods": 1},
        }
        return {"Records": [{"EventSource": "aws:sns", "Sns": {"Message": json.dumps(message)}}]}

    safety_net = runtime.spec.functions["AlertSafetyNetFunction"]
    now = datetime.now(UTC)
    assert runtime.host.invoke(safety_net, alarm(now)).payload["Announced"] == 1
    assert (
        runtime.host.invoke(safety_net, alarm(now + timedelta(minutes=15))).payload["Announced"]
        == 0
    )
    assert len(runtime.alerts()) == 1
