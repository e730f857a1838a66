"""CloudFormation creates a state machine from DefinitionS3Location with DefinitionSubstitutions
and LoggingConfiguration, in the service that runs executions, and refuses an invalid one
(rotator.aws_local.patches.state_machine_resource)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from rotator.aws_local.patches.state_machine_resource import StateMachineResource

DEFINITION = {
    "StartAt": "Wait",
    "States": {"Wait": {"Type": "Wait", "Seconds": "${Seconds}", "End": True}},
}


def _stack(rt: Any, definition: str) -> tuple[str, str]:
    """A stack with one state machine whose definition is read from S3; (stack, machine name)."""
    name = f"fidelity-{uuid.uuid4().hex[:8]}"
    s3 = rt.client("s3")
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="machine.asl.json", Body=definition.encode())
    role = rt.spec.functions["RouterFunction"].role_arn
    template = {
        "Resources": {
            "Logs": {"Type": "AWS::Logs::LogGroup", "Properties": {"LogGroupName": name}},
            "Machine": {
                "Type": "AWS::StepFunctions::StateMachine",
                "Properties": {
                    "StateMachineName": name,
                    "RoleArn": role,
                    "DefinitionS3Location": {"Bucket": name, "Key": "machine.asl.json"},
                    "DefinitionSubstitutions": {"Seconds": 1},
                    "LoggingConfiguration": {
                        "Level": "ERROR",
                        "IncludeExecutionData": False,
                        "Destinations": [
                            {
                                "CloudWatchLogsLogGroup": {
                                    "LogGroupArn": {"Fn::GetAtt": ["Logs", "Arn"]}
                                }
                            }
                        ],
                    },
                },
            },
        }
    }
    rt.client("cloudformation").create_stack(StackName=name, TemplateBody=json.dumps(template))
    return name, f"arn:aws:states:{rt.region}:123456789012:stateMachine:{name}"


def _definition_text() -> str:
    return json.dumps(DEFINITION).replace('"${Seconds}"', "${Seconds}")


def test_the_definition_comes_from_s3_with_its_substitutions_and_logging(runtime: Any) -> None:
    _stack_name, arn = _stack(runtime, _definition_text())
    machine = runtime.client("stepfunctions").describe_state_machine(stateMachineArn=arn)
    assert json.loads(machine["definition"])["States"]["Wait"]["Seconds"] == 1
    assert machine["loggingConfiguration"]["level"] == "ERROR"
    assert machine["type"] == "STANDARD"


def test_an_invalid_definition_fails_the_stack(runtime: Any) -> None:
    with pytest.raises(Exception, match=r"ASL|definition|Definition"):
        _stack(runtime, '{"StartAt": "Nowhere", "States": {}}')


def test_moto_alone_gives_the_executing_service_no_such_state_machine(runtime: Any) -> None:
    sfn = runtime.client("stepfunctions")
    with runtime.cloud.suspended(StateMachineResource):
        _stack_name, arn = _stack(runtime, _definition_text())
        with pytest.raises(sfn.exceptions.StateMachineDoesNotExist):
            sfn.describe_state_machine(stateMachineArn=arn)
