"""CloudFormation publishes state machine versions and creates aliases.

AWS: ``AWS::StepFunctions::StateMachineVersion`` publishes the state machine's current revision
(``Ref`` returns the version ARN, ``<machine>:<n>``); ``AWS::StepFunctions::StateMachineAlias``
routes a name to a version, through ``RoutingConfiguration`` or a ``DeploymentPreference``
(``ALL_AT_ONCE`` shifts all traffic to ``StateMachineVersionArn``; ``Ref`` returns the alias
ARN, ``<machine>:<name>``). ``Fn::GetAtt <machine>.StateMachineRevisionId`` is the revision the
version publishes. SAM's ``AutoPublishAlias`` on ``AWS::Serverless::StateMachine`` generates
the version and the alias.
https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-stepfunctions-statemachineversion.html
https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-stepfunctions-statemachinealias.html
https://docs.aws.amazon.com/serverless-application-model/latest/developerguide/sam-resource-statemachine.html#sam-statemachine-autopublishalias

moto 5.2's Step Functions API has versions and aliases, but its CloudFormation skips both types
and has no ``StateMachineRevisionId`` attribute. The patch creates them through the API's
backend (the executing one); a stack update that changes the revision publishes a new version
(``StateMachineRevisionId``: update requires replacement), and an update of the alias moves it
to the new version.
"""

from __future__ import annotations

from typing import Any

from rotator.aws_local.patches import MotoPatch
from rotator.aws_local.patches.lambda_versions import StackResource, with_resource_types


def _backend(account_id: str, region_name: str) -> Any:
    from moto.stepfunctions.responses import get_backend

    return get_backend(account_id, region_name)


class StateMachineVersionResource(StackResource):
    """``AWS::StepFunctions::StateMachineVersion`` for moto's CloudFormation."""

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::StepFunctions::StateMachineVersion"

    @classmethod
    def create_from_cloudformation_json(
        cls,
        resource_name: str,
        cloudformation_json: Any,
        account_id: str,
        region_name: str,
        **_: Any,
    ) -> StateMachineVersionResource:
        properties = cloudformation_json["Properties"]
        machine = _backend(account_id, region_name).describe_state_machine(
            properties["StateMachineArn"]
        )
        machine.publish(properties.get("Description"))
        return cls(machine.latest_version.arn)

    @classmethod
    def update_from_cloudformation_json(
        cls,
        original_resource: Any,
        new_resource_name: str,
        cloudformation_json: Any,
        account_id: str,
        region_name: str,
    ) -> StateMachineVersionResource:
        """A new ``StateMachineRevisionId`` replaces the version: the revision is published as
        a new version (the old one stays; running executions keep it)."""
        return cls.create_from_cloudformation_json(
            new_resource_name, cloudformation_json, account_id, region_name
        )


def _routing(properties: dict[str, Any]) -> list[dict[str, Any]]:
    routes = properties.get("RoutingConfiguration")
    if routes:
        return [
            {"stateMachineVersionArn": r["StateMachineVersionArn"], "weight": int(r["Weight"])}
            for r in routes
        ]
    preference = properties["DeploymentPreference"]
    # ALL_AT_ONCE (what SAM generates) shifts everything to the new version at once
    return [{"stateMachineVersionArn": preference["StateMachineVersionArn"], "weight": 100}]


class StateMachineAliasResource(StackResource):
    """``AWS::StepFunctions::StateMachineAlias`` for moto's CloudFormation."""

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::StepFunctions::StateMachineAlias"

    @classmethod
    def create_from_cloudformation_json(
        cls,
        resource_name: str,
        cloudformation_json: Any,
        account_id: str,
        region_name: str,
        **_: Any,
    ) -> StateMachineAliasResource:
        properties = cloudformation_json["Properties"]
        alias = _backend(account_id, region_name).create_state_machine_alias(
            properties["Name"], _routing(properties), properties.get("Description")
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
    ) -> Any:
        properties = cloudformation_json["Properties"]
        _backend(account_id, region_name).update_state_machine_alias(
            original_resource.physical_resource_id,
            properties.get("Description"),
            _routing(properties),
        )
        return original_resource


def _state_machine_attribute(original: Any) -> Any:
    def get_cfn_attribute(machine: Any, name: str) -> Any:
        if name == "StateMachineRevisionId":
            # a revision changes with the definition and configuration; its update date does
            return machine.update_date.isoformat()
        return original(machine, name)

    return get_cfn_attribute


class CloudFormationPublishesStateMachineVersions(MotoPatch):
    aws_doc = "https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-stepfunctions-statemachinealias.html"

    def replacements(self) -> list[tuple[Any, str, Any]]:
        from moto.cloudformation import parsing
        from moto.stepfunctions.models import StateMachine

        return [
            (
                parsing,
                "resource_class_from_type",
                with_resource_types(
                    parsing.resource_class_from_type,
                    {
                        "AWS::StepFunctions::StateMachineVersion": StateMachineVersionResource,
                        "AWS::StepFunctions::StateMachineAlias": StateMachineAliasResource,
                    },
                ),
            ),
            (
                StateMachine,
                "get_cfn_attribute",
                _state_machine_attribute(StateMachine.get_cfn_attribute),
            ),
        ]
