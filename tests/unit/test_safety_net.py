"""The safety net over a fake execution history: which RotationFailed events it announces."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from rotation_core.router import execution_name
from rotation_core.safety_net import SafetyNet, SafetyNetConfig
from tests.fakes.secrets import FakeSecrets

ARN = "arn:aws:secretsmanager:us-east-1:111111111111:secret:app/db-AbCdEf"
MACHINE = "arn:aws:states:us-east-1:111111111111:stateMachine:rotation"
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


class FakeHistory:
    def __init__(self, executions: list[dict[str, Any]], announced: set[str]) -> None:
        self._executions, self._announced = executions, announced

    def executions(self, machine: str) -> list[dict[str, Any]]:
        return list(self._executions) if machine == MACHINE else []

    def published_alert(self, execution_arn: str) -> bool:
        return execution_arn in self._announced


def _execution(token: str, stopped: datetime, *, attempt: int = 1) -> dict[str, Any]:
    name = execution_name("createSecret", token, ARN, attempt)
    return {
        "executionArn": f"{MACHINE}:{name}".replace(":stateMachine:", ":execution:"),
        "name": name,
        "status": "FAILED",
        "startDate": stopped - timedelta(seconds=20),
        "stopDate": stopped,
    }


def _net(executions: list[dict[str, Any]], announced: set[str], token: str) -> tuple[Any, list]:
    published: list[tuple[str, dict[str, Any]]] = []
    secrets = FakeSecrets({"v1": (["AWSCURRENT"], {}), token: (["AWSPENDING"], None)})
    config = SafetyNetConfig(
        alert_topic_arn="arn:aws:sns:us-east-1:111111111111:alerts",
        rotation_state_machine_arn=MACHINE,
        retirement_state_machine_arn=MACHINE + "-retire",
        router_log_group="/aws/lambda/router",
        region="us-east-1",
    )
    net = SafetyNet(
        FakeHistory(executions, announced), lambda s, b: published.append((s, b)), secrets, config
    )
    return net, published


def _rotation_failed() -> dict[str, Any]:
    return {"source": "aws.secretsmanager", "detail": {"additionalEventData": {"SecretId": ARN}}}


def test_a_retry_hours_after_the_announced_failure_is_not_announced_again() -> None:
    # Secrets Manager's retries of one token may come long after the first failure: the token
    # names the rotation, so the first execution's alert covers them whatever the look-back
    token = "6f1e9a6c-0000-4000-8000-000000000001"
    first = _execution(token, NOW - timedelta(hours=5))
    net, published = _net([first], {first["executionArn"]}, token)
    assert net.handle(_rotation_failed(), NOW)["Outcome"] == "already-announced"
    assert published == []


def test_an_old_alert_about_another_token_does_not_cover_this_rotation() -> None:
    token, earlier = "6f1e9a6c-0000-4000-8000-000000000002", "6f1e9a6c-0000-4000-8000-000000000003"
    old = _execution(earlier, NOW - timedelta(hours=5))
    net, published = _net([old], {old["executionArn"]}, token)
    assert net.handle(_rotation_failed(), NOW)["Outcome"] == "announced"
    assert len(published) == 1 and published[0][1]["secret_arn"] == ARN
