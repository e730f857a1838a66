"""``!Ref AWS::NoValue`` in a list, directly or chosen by ``Fn::If``, removes the item
(rotator.aws_local.patches.no_value_in_lists)."""

from __future__ import annotations

import json
import uuid
from typing import Any

from rotator.aws_local.patches.no_value_in_lists import NoValueDropsListItems

NO_VALUE = {"Ref": "AWS::NoValue"}


def _statement(sid: str) -> dict[str, Any]:
    return {"Sid": sid, "Effect": "Allow", "Action": "sns:Publish", "Resource": "*"}


def _stack(rt: Any) -> str:
    """A role whose inline policy lists statements kept and removed by conditions; its name."""
    name = f"fidelity-{uuid.uuid4().hex[:8]}"
    template = {
        "Conditions": {
            "Yes": {"Fn::Equals": ["a", "a"]},
            "No": {"Fn::Equals": ["a", "b"]},
        },
        "Resources": {
            "Role": {
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "RoleName": name,
                    "AssumeRolePolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Principal": {"Service": "lambda.amazonaws.com"},
                                "Action": "sts:AssumeRole",
                            }
                        ],
                    },
                    "Policies": [
                        {
                            "PolicyName": "conditional",
                            "PolicyDocument": {
                                "Version": "2012-10-17",
                                "Statement": [
                                    _statement("Always"),
                                    {"Fn::If": ["Yes", _statement("WhenYes"), NO_VALUE]},
                                    {"Fn::If": ["No", _statement("WhenNo"), NO_VALUE]},
                                    {"Fn::If": ["Yes", NO_VALUE, _statement("UnlessYes")]},
                                ],
                            },
                        }
                    ],
                },
            }
        },
    }
    rt.client("cloudformation").create_stack(StackName=name, TemplateBody=json.dumps(template))
    return name


def _statements(rt: Any, role: str, policy_name: str = "conditional") -> list[Any]:
    """The statements of the role's inline policy as moto holds them (what the IAM checker
    reads; moto's GetRolePolicy answers a CloudFormation-made policy with its Python repr)."""
    from moto.iam.models import iam_backends

    document = iam_backends["123456789012"]["aws"].get_role(role).policies[policy_name]
    if isinstance(document, str):
        document = json.loads(document)
    statements: list[Any] = document["Statement"]
    return statements


def test_an_item_that_is_no_value_leaves_the_list(runtime: Any) -> None:
    statements = _statements(runtime, _stack(runtime))
    assert [s["Sid"] for s in statements] == ["Always", "WhenYes"]


def test_moto_alone_keeps_a_null_in_the_list(runtime: Any) -> None:
    with runtime.cloud.suspended(NoValueDropsListItems):
        role = _stack(runtime)
    statements = _statements(runtime, role)
    assert None in statements


def test_the_deployed_router_role_has_no_null_statement(runtime: Any) -> None:
    # SecretsKmsKeyArns is empty by default: the KMS statement of the router's policy goes.
    role = runtime.spec.functions["RouterFunction"].role_arn.rsplit("/", 1)[-1]
    statements = _statements(runtime, role, "rotate")
    assert None not in statements
    assert "EncryptNewVersionsThroughSecretsManager" not in {s.get("Sid") for s in statements}
