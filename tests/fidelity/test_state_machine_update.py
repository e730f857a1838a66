"""A stack update changes a state machine's definition in place (in the service that runs
executions), publishes the new revision as a new version and moves the alias to it; the old
version stays (rotator.aws_local.patches.state_machine_resource, state_machine_versions and
stack_update_order)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from botocore.parsers import ResponseParserError

from rotator.aws_local.patches.state_machine_resource import StateMachineResource


def _template(rt: Any, name: str, seconds: int) -> str:
    definition = {
        "StartAt": "Wait",
        "States": {"Wait": {"Type": "Wait", "Seconds": seconds, "End": True}},
    }
    return json.dumps(
        {
            "Resources": {
                "Machine": {
                    "Type": "AWS::StepFunctions::StateMachine",
                    "Properties": {
                        "StateMachineName": name,
                        "RoleArn": rt.spec.functions["RouterFunction"].role_arn,
                        "DefinitionString": json.dumps(definition),
                    },
                },
                # as SAM's AutoPublishAlias generates them
                "MachineVersion": {
                    "Type": "AWS::StepFunctions::StateMachineVersion",
                    "DeletionPolicy": "Retain",
                    "Properties": {
                        "StateMachineArn": {"Ref": "Machine"},
                        "StateMachineRevisionId": {
                            "Fn::GetAtt": ["Machine", "StateMachineRevisionId"]
                        },
                    },
                },
                "MachineAliaslive": {
                    "Type": "AWS::StepFunctions::StateMachineAlias",
                    "Properties": {
                        "Name": "live",
                        "DeploymentPreference": {
                            "Type": "ALL_AT_ONCE",
                            "StateMachineVersionArn": {"Ref": "MachineVersion"},
                        },
                    },
                },
            }
        }
    )


def _deploy_and_update(rt: Any) -> str:
    cfn, name = rt.client("cloudformation"), f"fidelity-{uuid.uuid4().hex[:8]}"
    cfn.create_stack(StackName=name, TemplateBody=_template(rt, name, 1))
    cfn.update_stack(StackName=name, TemplateBody=_template(rt, name, 2))
    return f"arn:aws:states:{rt.region}:123456789012:stateMachine:{name}"


def test_an_update_publishes_the_new_definition_behind_the_alias(runtime: Any) -> None:
    sfn = runtime.client("stepfunctions")
    machine = _deploy_and_update(runtime)
    alias = sfn.describe_state_machine_alias(stateMachineAliasArn=f"{machine}:live")
    (route,) = alias["routingConfiguration"]
    assert route["stateMachineVersionArn"] == f"{machine}:2"
    seconds = {
        version: json.loads(
            sfn.describe_state_machine(stateMachineArn=f"{machine}:{version}")["definition"]
        )["States"]["Wait"]["Seconds"]
        for version in (1, 2)
    }
    assert seconds == {1: 1, 2: 2}  # the old version keeps its definition (running executions)


def test_moto_alone_updates_a_machine_the_executing_service_does_not_have(runtime: Any) -> None:
    # (moto answers UpdateStack with its Step Functions error, which botocore cannot even parse)
    with (
        runtime.cloud.suspended(StateMachineResource),
        pytest.raises(ResponseParserError, match="StateMachineDoesNotExist"),
    ):
        _deploy_and_update(runtime)
