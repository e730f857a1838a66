"""CloudFormation's AWS::Lambda::Permission adds the statement AddPermission adds: no
FunctionName element, SourceArn/SourceAccount as conditions
(rotator.aws_local.patches.lambda_permission_resource)."""

from __future__ import annotations

import json
import uuid
from typing import Any

from rotator.aws_local.patches.lambda_permission_resource import (
    PermissionResourceAddsAStatement,
)


def _statements(rt: Any, function: str) -> list[dict[str, Any]]:
    policy = rt.client("lambda").get_policy(FunctionName=function)["Policy"]
    statements: list[dict[str, Any]] = json.loads(policy)["Statement"]
    return statements


def _permission_stack(rt: Any, function_arn: str) -> str:
    """A stack granting events.amazonaws.com Invoke on ``function_arn`` for one rule; its Sid."""
    name = f"fidelity-{uuid.uuid4().hex[:8]}"
    template = {
        "Resources": {
            "Permission": {
                "Type": "AWS::Lambda::Permission",
                "Properties": {
                    "FunctionName": function_arn,
                    "Action": "lambda:InvokeFunction",
                    "Principal": "events.amazonaws.com",
                    "SourceArn": f"arn:aws:events:us-east-1:123456789012:rule/{name}",
                    "SourceAccount": "123456789012",
                },
            }
        }
    }
    rt.client("cloudformation").create_stack(StackName=name, TemplateBody=json.dumps(template))
    return name


def test_the_deployed_statements_are_what_add_permission_writes(runtime: Any) -> None:
    router = runtime.router_function_arn
    (statement,) = _statements(runtime, router)
    assert set(statement) == {"Sid", "Effect", "Principal", "Action", "Resource", "Condition"}
    assert statement["Principal"] == {"Service": "secretsmanager.amazonaws.com"}
    assert statement["Resource"] == router
    assert statement["Condition"] == {"StringEquals": {"AWS:SourceAccount": "123456789012"}}


def test_source_arn_becomes_a_condition(runtime: Any) -> None:
    # A throwaway function: the pooled stack's own policies stay as deployed.
    function = runtime.client("lambda").create_function(
        FunctionName=f"fidelity-{uuid.uuid4().hex[:8]}",
        Runtime="python3.11",
        Role=runtime.spec.functions["RouterFunction"].role_arn,
        Handler="app.handler",
        Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18},
    )["FunctionArn"]
    try:
        rule = _permission_stack(runtime, function)
        (statement,) = _statements(runtime, function)
        assert "FunctionName" not in statement
        assert statement["Condition"]["ArnLike"] == {
            "AWS:SourceArn": f"arn:aws:events:us-east-1:123456789012:rule/{rule}"
        }
        with runtime.cloud.suspended(PermissionResourceAddsAStatement):
            _permission_stack(runtime, function)
        moto_only = _statements(runtime, function)[1]
        assert moto_only["FunctionName"] == function
    finally:
        runtime.client("lambda").delete_function(FunctionName=function)
