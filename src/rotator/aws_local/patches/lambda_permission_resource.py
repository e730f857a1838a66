"""CloudFormation's ``AWS::Lambda::Permission`` adds the statement ``AddPermission`` adds.

AWS: CloudFormation creates the resource with Lambda's ``AddPermission``, whose ``FunctionName``
names the function to change (a URI parameter) and is not part of the statement: the function's
resource-based policy (``GetPolicy``) then holds ``Sid``, ``Effect``, ``Principal``, ``Action``,
``Resource`` and, from ``SourceArn``/``SourceAccount``/``PrincipalOrgID``, a ``Condition``.
https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-lambda-permission.html
https://docs.aws.amazon.com/lambda/latest/api/API_AddPermission.html

moto 5.2 hands the resource's whole property map to the policy, so every statement made by
CloudFormation carries a ``FunctionName`` element no policy statement has (a policy reader such
as the local IAM checker refuses the document, as IAM's grammar would). The patch replaces only
the resource's create handler: the statement is built from the properties ``AddPermission``
takes in its body, by moto's own ``add_statement``.
"""

from __future__ import annotations

import json
from typing import Any

from rotator.aws_local.patches import MotoPatch

#: the properties that go into AddPermission's request body (FunctionName is in its URI)
STATEMENT_PROPERTIES = (
    "Action",
    "Principal",
    "SourceArn",
    "SourceAccount",
    "EventSourceToken",
    "PrincipalOrgID",
    "FunctionUrlAuthType",
)


def _create_from_cloudformation_json(
    cls: Any,
    resource_name: str,
    cloudformation_json: Any,
    account_id: str,
    region_name: str,
    **kwargs: Any,
) -> Any:
    from moto.awslambda.utils import get_backend

    properties = cloudformation_json["Properties"]
    body = {key: properties[key] for key in STATEMENT_PROPERTIES if key in properties}
    # AddPermission itself: a version or alias ARN adds to that version's or alias's policy
    # (rotator.aws_local.patches.lambda_qualified_policies)
    get_backend(account_id, region_name).add_permission(
        properties["FunctionName"],
        None,  # type: ignore[arg-type]  # AddPermission's Qualifier is optional
        json.dumps(body),
    )
    return cls(region=region_name)


class PermissionResourceAddsAStatement(MotoPatch):
    aws_doc = "https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-lambda-permission.html"

    def replacements(self) -> list[tuple[type, str, Any]]:
        from moto.awslambda.models import Permission

        return [
            (
                Permission,
                "create_from_cloudformation_json",
                classmethod(_create_from_cloudformation_json),
            )
        ]
