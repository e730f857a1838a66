"""The Step Functions adapter addresses executions the same way whether the router starts them
on the state machine, one of its versions or its alias."""

from __future__ import annotations

from typing import Any

import pytest

from rotation_core.adapters.stepfunctions import StepFunctionsRunner, unqualified

MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:rotator-rotation"


class RecordingClient:
    """Answers ListExecutions with one empty page and keeps the ARN it was asked for."""

    def __init__(self) -> None:
        self.listed: list[str] = []

    def get_paginator(self, name: str) -> Any:
        assert name == "list_executions"
        client = self

        class Pages:
            def paginate(self, stateMachineArn: str) -> list[dict[str, Any]]:
                client.listed.append(stateMachineArn)
                return [{"executions": []}]

        return Pages()


@pytest.mark.parametrize("qualifier", ["", ":live", ":7"])
def test_an_execution_arn_never_carries_the_alias_or_version(qualifier: str) -> None:
    runner = StepFunctionsRunner(RecordingClient())  # type: ignore[arg-type]
    arn = runner.execution_arn(MACHINE + qualifier, "createSecret-abc")
    assert (
        arn == "arn:aws:states:us-east-1:123456789012:execution:rotator-rotation:createSecret-abc"
    )


def test_the_safety_net_lists_every_execution_of_the_state_machine_not_only_the_alias() -> None:
    client = RecordingClient()
    StepFunctionsRunner(client).executions(MACHINE + ":live")  # type: ignore[arg-type]
    assert client.listed == [MACHINE]


def test_an_unqualified_arn_stays_as_it_is() -> None:
    assert unqualified(MACHINE) == MACHINE
