"""CloudFormation attaches the managed policies an ``AWS::IAM::Role`` lists in
``ManagedPolicyArns``.

AWS: ``ManagedPolicyArns`` is "a list of Amazon Resource Names (ARNs) of the IAM managed
policies that you want to attach to the role"; CloudFormation attaches each one
(``iam:AttachRolePolicy``) when it creates the role, and the stack fails when a policy does not
exist ("Policy ... does not exist or is not attachable"). SAM writes every ``Policies`` entry of
a function that names a managed policy (``!Ref`` of an ``AWS::IAM::ManagedPolicy``, or an AWS
managed policy such as ``AWSLambdaBasicExecutionRole``) into this property of the role it
generates.
https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-iam-role.html
https://docs.aws.amazon.com/IAM/latest/APIReference/API_AttachRolePolicy.html

moto 5.2 creates the role and its inline ``Policies`` and ignores ``ManagedPolicyArns``: every
role CloudFormation creates on moto has no managed policy, so a role's permissions as moto holds
them (what the local IAM checker reads) lack most of the template's statements. The patch wraps
only the role's create handler: after moto created the role, it attaches each listed policy
through moto's own ``attach_role_policy``. AWS managed policies are loaded into moto on demand
from moto's own snapshot of them (moto loads none unless told to load all of them); an ARN
that is neither the account's nor in the snapshot fails the stack, as on AWS.
"""

from __future__ import annotations

import json
from typing import Any

from rotator.aws_local.patches import MotoPatch

AWS_MANAGED = ":iam::aws:policy"


def _ensure_aws_managed_policy(backend: Any, arn: str, account_id: str, region_name: str) -> None:
    """Make an AWS managed policy attachable in moto (from moto's snapshot of AWS's policies)."""
    from moto.iam.aws_managed_policies import aws_managed_policies_data
    from moto.iam.models import AWSManagedPolicy

    if arn in backend.managed_policies or AWS_MANAGED not in arn:
        return
    name = arn.rsplit("/", 1)[-1]
    data = json.loads(aws_managed_policies_data).get(name)
    if data is None:
        return  # attach_role_policy refuses it as AWS would: it does not exist
    policy = AWSManagedPolicy.from_data(name, account_id, region_name, data)
    if policy.arn == arn:
        backend.managed_policies[arn] = policy


class RoleAttachesManagedPolicies(MotoPatch):
    aws_doc = "https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-iam-role.html"

    def replacements(self) -> list[tuple[type, str, Any]]:
        from moto.iam.models import Role, iam_backends
        from moto.utilities.utils import get_partition

        original = Role.create_from_cloudformation_json  # bound to Role

        def create_from_cloudformation_json(
            cls: Any,
            resource_name: str,
            cloudformation_json: dict[str, Any],
            account_id: str,
            region_name: str,
            **kwargs: Any,
        ) -> Any:
            role = original(resource_name, cloudformation_json, account_id, region_name, **kwargs)
            backend = iam_backends[account_id][get_partition(region_name)]
            for arn in cloudformation_json.get("Properties", {}).get("ManagedPolicyArns") or []:
                _ensure_aws_managed_policy(backend, str(arn), account_id, region_name)
                backend.attach_role_policy(str(arn), role.name)
            return role

        return [
            (Role, "create_from_cloudformation_json", classmethod(create_from_cloudformation_json))
        ]
