"""CloudFormation publishes state machine versions and points the alias "live" at them
(rotator.aws_local.patches.state_machine_versions)."""

from __future__ import annotations

from typing import Any


def test_both_state_machines_have_the_alias_live_on_a_published_version(runtime: Any) -> None:
    sfn = runtime.client("stepfunctions")
    for machine in runtime.spec.state_machines.values():
        alias = sfn.describe_state_machine_alias(stateMachineAliasArn=f"{machine.arn}:live")
        (route,) = alias["routingConfiguration"]
        assert route["weight"] == 100
        assert route["stateMachineVersionArn"].startswith(f"{machine.arn}:")
        version = sfn.describe_state_machine(stateMachineArn=route["stateMachineVersionArn"])
        assert version["definition"], machine.name


def test_the_router_starts_executions_on_the_alias(runtime: Any) -> None:
    router = runtime.spec.functions["RouterFunction"]
    machine = runtime.spec.state_machines["RotationStateMachine"].arn
    assert router.environment["STATE_MACHINE_ARN"] == f"{machine}:live"
