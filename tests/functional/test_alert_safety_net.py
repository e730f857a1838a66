"""Exactly one alert per failed rotation, whichever part failed.

The state machine announces its own failures; Secrets Manager's RotationFailed event reaches
the safety net for every failed rotation, which announces only what no execution announced.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

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
    assert _safety_net_outcomes(runtime) == ["already-announced"]


def test_a_failure_before_any_execution_is_announced_by_the_safety_net(runtime: Any) -> None:
    arn = create_secret(runtime, "app/bad", {**UNREACHABLE, "port": "not-a-port"})
    outcome = runtime.rotate(arn)
    assert outcome.failed_step == "createSecret" and runtime.executions() == []
    alerts = runtime.alerts()
    assert len(alerts) == 1
    assert alerts[0].message["secret_arn"] == arn and alerts[0].message["error"] == "RotationFailed"
    assert "outside the state machine" in alerts[0].subject
    assert _safety_net_outcomes(runtime) == ["announced"]


def test_an_execution_whose_alert_could_not_be_sent_is_announced_by_the_safety_net(
    runtime: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto.sns.models import SNSBackend

    real_publish, refused = SNSBackend.publish, []

    def refuse_the_first(self: Any, *args: Any, **kwargs: Any) -> Any:
        if len(refused) < 4:  # the state machine's publish and its three retries
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
    iam.create_user(UserName="svc")
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
    iam.create_user(UserName="svc")
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
