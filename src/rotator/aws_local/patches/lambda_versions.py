"""CloudFormation publishes Lambda versions and creates aliases: ``Ref`` of a version is its
ARN, ``Fn::GetAtt <version>.Version`` its number, ``Ref`` of an alias the alias ARN.

AWS: ``AWS::Lambda::Version`` publishes a version of the function's current code and
configuration (``Ref`` returns the version ARN, ``Fn::GetAtt Version`` the version number);
``AWS::Lambda::Alias`` points a name at a version (``Ref`` returns the alias ARN). SAM's
``AutoPublishAlias`` generates both for each function.
https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-lambda-version.html
https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-lambda-alias.html
https://docs.aws.amazon.com/serverless-application-model/latest/developerguide/sam-resource-function.html#sam-function-autopublishalias

moto 5.2 publishes the version but gives it no physical id (``Ref`` yields the logical id, so a
state machine would be handed ``FooFunctionVersion1a2b3c4d5e`` as a function ARN) and no
``Version`` attribute, and skips ``AWS::Lambda::Alias`` (creates nothing). The patch answers
both through moto's own Lambda backend (``PublishVersion``, ``CreateAlias``).
"""

from __future__ import annotations

from typing import Any, ClassVar

from rotator.aws_local.patches import MotoPatch


class StackResource:
    """What moto's CloudFormation asks of a resource model besides create and update (duck-typed:
    a subclass of moto's ``CloudFormationModel`` would join moto's model map for good, patch on
    or off)."""

    physical_resource_id: str
    #: the ``Fn::GetAtt`` attribute that answers the resource's ARN
    arn_attribute: ClassVar[str] = "Arn"

    def __init__(self, arn: str) -> None:
        self.physical_resource_id = arn

    def get_cfn_attribute(self, name: str) -> Any:
        from moto.cloudformation.exceptions import UnformattedGetAttTemplateException

        if name == self.arn_attribute:
            return self.physical_resource_id
        raise UnformattedGetAttTemplateException()

    @staticmethod
    def cloudformation_name_type() -> str:
        return ""

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return True

    def is_created(self) -> bool:
        return True

    @classmethod
    def delete_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str
    ) -> None:
        """Versions are kept (SAM marks them ``Retain``); an alias goes with its function."""


class _PublishedVersion(StackResource):
    """What CloudFormation knows of a published version."""

    def __init__(self, function_arn: str, version: str) -> None:
        self.function_arn, self.version = function_arn, version
        self.physical_resource_id = f"{function_arn}:{version}"

    def get_cfn_attribute(self, name: str) -> Any:
        from moto.cloudformation.exceptions import UnformattedGetAttTemplateException

        if name == "Version":
            return self.version
        if name == "FunctionArn":
            return self.function_arn
        raise UnformattedGetAttTemplateException()


def _publish_version(
    cls: Any,
    resource_name: str,
    cloudformation_json: Any,
    account_id: str,
    region_name: str,
    **_: Any,
) -> _PublishedVersion:
    from moto.awslambda.models import lambda_backends

    backend = lambda_backends[account_id][region_name]
    properties = cloudformation_json["Properties"]
    published = backend.publish_version(
        properties["FunctionName"], properties.get("Description", "")
    )
    if published is None:
        raise ValueError(f"cannot publish a version of {properties['FunctionName']}")
    unqualified = published.function_arn.rsplit(":", 1)[0]
    return _PublishedVersion(unqualified, str(published.version))


class LambdaAliasResource(StackResource):
    """``AWS::Lambda::Alias`` for moto's CloudFormation (no moto model exists)."""

    arn_attribute = "AliasArn"

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::Lambda::Alias"

    @classmethod
    def create_from_cloudformation_json(
        cls,
        resource_name: str,
        cloudformation_json: Any,
        account_id: str,
        region_name: str,
        **_: Any,
    ) -> LambdaAliasResource:
        from moto.awslambda.models import lambda_backends

        properties = cloudformation_json["Properties"]
        alias = lambda_backends[account_id][region_name].create_alias(
            name=properties["Name"],
            function_name=properties["FunctionName"],
            function_version=str(properties["FunctionVersion"]),
            description=properties.get("Description", ""),
            routing_config=properties.get("RoutingConfig"),
        )
        return cls(alias.arn)

    @classmethod
    def update_from_cloudformation_json(
        cls,
        original_resource: Any,
        new_resource_name: str,
        cloudformation_json: Any,
        account_id: str,
        region_name: str,
    ) -> LambdaAliasResource:
        from moto.awslambda.models import lambda_backends

        properties = cloudformation_json["Properties"]
        lambda_backends[account_id][region_name].update_alias(
            name=properties["Name"],
            function_name=properties["FunctionName"],
            function_version=str(properties["FunctionVersion"]),
            description=properties.get("Description", ""),
            routing_config=properties.get("RoutingConfig"),
        )
        return original_resource


def with_resource_types(original: Any, extra: dict[str, Any]) -> Any:
    """``resource_class_from_type`` that also knows ``extra`` (type -> class)."""

    def resource_class_from_type(resource_type: str) -> Any:
        return extra.get(resource_type) or original(resource_type)

    return resource_class_from_type


class CloudFormationPublishesLambdaVersions(MotoPatch):
    aws_doc = "https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-lambda-version.html"

    def replacements(self) -> list[tuple[Any, str, Any]]:
        from moto.awslambda.models import LambdaVersion
        from moto.cloudformation import parsing

        return [
            (LambdaVersion, "create_from_cloudformation_json", classmethod(_publish_version)),
            (
                parsing,
                "resource_class_from_type",
                with_resource_types(
                    parsing.resource_class_from_type, {"AWS::Lambda::Alias": LambdaAliasResource}
                ),
            ),
        ]
