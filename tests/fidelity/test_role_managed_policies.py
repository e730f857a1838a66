"""CloudFormation attaches a role's ManagedPolicyArns: the stack's own managed policies and AWS
managed policies (rotator.aws_local.patches.role_managed_policies)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from rotator.aws_local.patches.role_managed_policies import RoleAttachesManagedPolicies

BASIC = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}


def _stack(rt: Any, managed_policy_arns: list[Any]) -> str:
    """A stack with a managed policy and a role listing ``managed_policy_arns``; the role name."""
    name = f"fidelity-{uuid.uuid4().hex[:8]}"
    template = {
        "Resources": {
            "Describe": {
                "Type": "AWS::IAM::ManagedPolicy",
                "Properties": {
                    "ManagedPolicyName": f"{name}-describe",
                    "PolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Action": "secretsmanager:DescribeSecret",
                                "Resource": "*",
                            }
                        ],
                    },
                },
            },
            "Role": {
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "RoleName": name,
                    "AssumeRolePolicyDocument": TRUST,
                    "ManagedPolicyArns": managed_policy_arns,
                },
            },
        }
    }
    rt.client("cloudformation").create_stack(StackName=name, TemplateBody=json.dumps(template))
    return name


def _attached(rt: Any, role: str) -> set[str]:
    listed = rt.client("iam").list_attached_role_policies(RoleName=role)["AttachedPolicies"]
    return {p["PolicyArn"] for p in listed}


def test_the_role_gets_its_own_and_aws_managed_policies(runtime: Any) -> None:
    role = _stack(runtime, [BASIC, {"Ref": "Describe"}])
    mine = f"arn:aws:iam::123456789012:policy/{role}-describe"
    assert _attached(runtime, role) == {BASIC, mine}
    version = runtime.client("iam").get_policy(PolicyArn=BASIC)["Policy"]["DefaultVersionId"]
    document = runtime.client("iam").get_policy_version(PolicyArn=BASIC, VersionId=version)
    assert "logs:PutLogEvents" in json.dumps(document["PolicyVersion"]["Document"])


def test_a_policy_that_does_not_exist_fails_the_stack(runtime: Any) -> None:
    with pytest.raises(Exception, match="does not exist or is not attachable"):
        _stack(runtime, ["arn:aws:iam::aws:policy/NoSuchPolicyAnywhere"])


def test_moto_alone_attaches_nothing(runtime: Any) -> None:
    with runtime.cloud.suspended(RoleAttachesManagedPolicies):
        role = _stack(runtime, [BASIC, {"Ref": "Describe"}])
    assert _attached(runtime, role) == set()


def test_the_deployed_stack_s_roles_hold_the_template_s_managed_policies(runtime: Any) -> None:
    router_role = runtime.spec.functions["RouterFunction"].role_arn.rsplit("/", 1)[-1]
    prefix = runtime.stack_name
    assert _attached(runtime, router_role) == {
        BASIC,
        # Tracing: Active (the router's role is written out: SAM adds nothing to it)
        "arn:aws:iam::aws:policy/AWSXRayDaemonWriteAccess",
        f"arn:aws:iam::123456789012:policy/{prefix}-describe-rotated-secrets",
        f"arn:aws:iam::123456789012:policy/{prefix}-read-rotated-secrets",
    }
