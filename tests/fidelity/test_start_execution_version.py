"""StartExecution through an alias runs the version the alias points to, to its end, and the
execution belongs to the state machine (rotator.aws_local.patches.start_execution_version)."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest

from rotator.aws_local.patches.start_execution_version import StartExecutionRunsTheVersion


def _definition(result: str) -> str:
    return json.dumps(
        {
            "StartAt": "Say",
            "States": {"Say": {"Type": "Pass", "Result": {"said": result}, "End": True}},
        }
    )


def _machine_with_two_versions(rt: Any) -> tuple[str, str]:
    """A state machine whose version 1 says "v1", its latest revision "v2"; (arn, alias v1)."""
    sfn = rt.client("stepfunctions")
    role = rt.spec.functions["RouterFunction"].role_arn
    name = f"fidelity-{uuid.uuid4().hex[:8]}"
    machine = sfn.create_state_machine(
        name=name, definition=_definition("v1"), roleArn=role, publish=True
    )
    version = machine["stateMachineVersionArn"]
    sfn.create_state_machine_alias(
        name="live", routingConfiguration=[{"stateMachineVersionArn": version, "weight": 100}]
    )
    sfn.update_state_machine(
        stateMachineArn=machine["stateMachineArn"], definition=_definition("v2")
    )
    return machine["stateMachineArn"], f"{machine['stateMachineArn']}:live"


def _output(sfn: Any, arn: str) -> Any:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        found = sfn.describe_execution(executionArn=arn)
        if found["status"] != "RUNNING":
            assert found["status"] == "SUCCEEDED", found.get("error")
            return json.loads(found["output"])
        time.sleep(0.05)
    raise AssertionError("the execution did not end")


def test_an_execution_started_on_the_alias_runs_the_aliased_version(runtime: Any) -> None:
    sfn = runtime.client("stepfunctions")
    machine, alias = _machine_with_two_versions(runtime)
    started = sfn.start_execution(stateMachineArn=alias, name="through-the-alias", input="{}")
    name = machine.rsplit(":", 1)[-1]
    assert started["executionArn"].endswith(f":execution:{name}:through-the-alias")
    assert _output(sfn, started["executionArn"]) == {"said": "v1"}
    listed = sfn.list_executions(stateMachineArn=machine)["executions"]
    assert [e["executionArn"] for e in listed] == [started["executionArn"]]


def test_moto_alone_refuses_to_start_on_an_alias(runtime: Any) -> None:
    sfn = runtime.client("stepfunctions")
    _machine, alias = _machine_with_two_versions(runtime)
    with (
        runtime.cloud.suspended(StartExecutionRunsTheVersion),
        pytest.raises(sfn.exceptions.StateMachineDoesNotExist),
    ):
        sfn.start_execution(stateMachineArn=alias, name="refused", input="{}")
