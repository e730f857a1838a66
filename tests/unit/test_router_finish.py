"""finishSecret moves AWSCURRENT only to a version whose test passed, with nothing since."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from rotation_core.exceptions import RotationStateError
from rotation_core.ports import Execution
from rotation_core.router import Router, RouterConfig, execution_name

ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:app/db-AbCdEf"
MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:rotator-rotation"
TOKEN = "5f0e8b1e-3c2a-4d6f-9b7e-2a1c0d9e8f7a"
T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


class FakeStepFunctions:
    """The ExecutionRunner port over a dict of executions."""

    def __init__(self) -> None:
        self.executions: dict[str, Execution] = {}

    def execution_arn(self, machine: str, name: str) -> str:
        return machine.replace(":stateMachine:", ":execution:") + ":" + name

    def add(self, step: str, attempt: int, status: str, started: datetime) -> None:
        arn = self.execution_arn(MACHINE, execution_name(step, TOKEN, ARN, attempt))
        body = json.dumps({**STEP_INPUT, "Step": step}, sort_keys=True, separators=(",", ":"))
        self.executions[arn] = Execution(arn=arn, status=status, started=started, input=body)

    def describe(self, arn: str) -> Execution | None:
        return self.executions.get(arn)

    def start(self, machine: str, name: str, body: str) -> bool:
        raise AssertionError("not started in these tests")


STEP_INPUT = {"Step": "finishSecret", "SecretArn": ARN, "Token": TOKEN, "Strategy": "single-user"}


def _check(sfn: FakeStepFunctions) -> None:
    router = Router(None, sfn, None, RouterConfig(state_machine_arn=MACHINE))  # type: ignore[arg-type]
    router._require_tested(STEP_INPUT)


def test_finish_without_any_test_is_refused() -> None:
    sfn = FakeStepFunctions()
    sfn.add("setSecret", 1, "SUCCEEDED", T0)
    with pytest.raises(RotationStateError, match="testSecret for this token never ran"):
        _check(sfn)


def test_finish_after_a_failed_test_is_refused() -> None:
    sfn = FakeStepFunctions()
    sfn.add("setSecret", 1, "SUCCEEDED", T0)
    sfn.add("testSecret", 1, "FAILED", T0 + timedelta(seconds=1))
    with pytest.raises(RotationStateError, match="ended FAILED"):
        _check(sfn)


def test_finish_after_a_passed_test_then_a_failed_retry_is_refused() -> None:
    sfn = FakeStepFunctions()
    sfn.add("testSecret", 1, "SUCCEEDED", T0)
    sfn.add("testSecret", 2, "FAILED", T0 + timedelta(seconds=5))
    with pytest.raises(RotationStateError, match="ended FAILED"):
        _check(sfn)


def test_finish_after_set_ran_again_since_the_passed_test_is_refused() -> None:
    sfn = FakeStepFunctions()
    sfn.add("setSecret", 1, "SUCCEEDED", T0)
    sfn.add("testSecret", 1, "SUCCEEDED", T0 + timedelta(seconds=1))
    sfn.add("setSecret", 2, "SUCCEEDED", T0 + timedelta(seconds=9))
    with pytest.raises(RotationStateError, match="setSecret ran again"):
        _check(sfn)


def test_finish_after_set_then_a_passed_test_is_allowed() -> None:
    sfn = FakeStepFunctions()
    sfn.add("setSecret", 1, "SUCCEEDED", T0)
    sfn.add("testSecret", 1, "SUCCEEDED", T0 + timedelta(seconds=1))
    _check(sfn)


# --- executions someone else started under the router's names ----------------------------------


class StartingStepFunctions(FakeStepFunctions):
    """Starting an execution makes it succeed at once with a fixed output."""

    def __init__(self, output: str = "{}") -> None:
        super().__init__()
        self.output = output
        self.started: list[str] = []

    def squat(self, step_input: dict[str, Any], attempt: int, status: str = "SUCCEEDED") -> None:
        arn = self.execution_arn(MACHINE, execution_name(step_input["Step"], TOKEN, ARN, attempt))
        self.executions[arn] = Execution(
            arn=arn,
            status=status,
            started=T0,
            input='{"Step": "' + step_input["Step"] + '", "PasswordPolicy": {"PasswordLength": 8}}',
            output='{"Sealed": {"Ciphertext": "attacker"}}',
        )

    def start(self, machine: str, name: str, body: str) -> bool:
        arn = self.execution_arn(machine, name)
        if arn in self.executions:
            return False
        self.started.append(name)
        self.executions[arn] = Execution(
            arn=arn, status="SUCCEEDED", started=T0, input=body, output=self.output
        )
        return True


def test_a_squatted_create_execution_with_another_input_is_never_reused() -> None:
    sfn = StartingStepFunctions(output='{"Sealed": {"Ciphertext": "ours"}}')
    step_input = {
        "Step": "createSecret",
        "SecretArn": ARN,
        "Token": TOKEN,
        "Strategy": "single-user",
    }
    sfn.squat(step_input, attempt=1)
    router = Router(None, sfn, None, RouterConfig(state_machine_arn=MACHINE))  # type: ignore[arg-type]
    arn, output = router.run_step(step_input, lambda: 60.0)
    assert output == {"Sealed": {"Ciphertext": "ours"}}
    assert arn.endswith(execution_name("createSecret", TOKEN, ARN, 2))


def test_a_squatted_passed_test_does_not_open_finish() -> None:
    sfn = StartingStepFunctions()
    step_input = {
        "Step": "finishSecret",
        "SecretArn": ARN,
        "Token": TOKEN,
        "Strategy": "single-user",
    }
    sfn.squat({**step_input, "Step": "testSecret"}, attempt=1)
    router = Router(None, sfn, None, RouterConfig(state_machine_arn=MACHINE))  # type: ignore[arg-type]
    with pytest.raises(RotationStateError, match="never ran"):
        router._require_tested(step_input)
