"""CloudFormation creates and updates a state machine from ``DefinitionS3Location`` with its
``DefinitionSubstitutions`` and ``LoggingConfiguration``, in the service that runs executions.

AWS: ``AWS::StepFunctions::StateMachine`` takes the definition inline (``Definition``,
``DefinitionString``) or from S3 (``DefinitionS3Location``); ``DefinitionSubstitutions`` replace
``${key}`` placeholders in it; ``LoggingConfiguration`` and ``StateMachineType`` are passed on;
Step Functions validates the definition and the stack fails when it is invalid.
https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-stepfunctions-statemachine.html

moto 5.2 reads only ``DefinitionString`` (a packaged SAM template has ``DefinitionS3Location``,
so the state machine would get an empty definition), ignores substitutions, logging and type,
and creates the machine in the plain Step Functions backend, not in the executing one the API
serves under ``execute_state_machine``; its update handler looks the machine up in the plain
backend (``StateMachineDoesNotExist``) and takes ``DefinitionString`` only. The patch replaces the
resource's create and update handlers.
"""

from __future__ import annotations

import json
import re
from typing import Any

from rotator.aws_local.patches import MotoPatch

_PLACEHOLDER = re.compile(r"\$\{([^}]+)\}")


def definition_of(properties: dict[str, Any], account_id: str, region_name: str) -> str:
    """The definition text CloudFormation would hand to CreateStateMachine."""
    from moto.s3.models import s3_backends
    from moto.utilities.utils import get_partition

    if "Definition" in properties:
        text = json.dumps(properties["Definition"])
    elif "DefinitionS3Location" in properties:
        location = properties["DefinitionS3Location"]
        s3 = s3_backends[account_id][get_partition(region_name)]
        key = s3.get_object(location["Bucket"], location["Key"], location.get("Version"))
        if key is None:
            raise ValueError(f"no definition at s3://{location['Bucket']}/{location['Key']}")
        text = key.value.decode("utf-8")
    else:
        text = properties.get("DefinitionString", "")
    substitutions = {
        k: str(v) for k, v in (properties.get("DefinitionSubstitutions") or {}).items()
    }
    # Placeholders without a substitution stay as they are (and then fail validation).
    return _PLACEHOLDER.sub(lambda m: substitutions.get(m.group(1), m.group(0)), text)


def _api_shape(value: Any) -> Any:
    """CloudFormation's PascalCase property names as the API's camelCase ones."""
    if isinstance(value, dict):
        return {key[:1].lower() + key[1:]: _api_shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_api_shape(item) for item in value]
    return value


def _create_from_cloudformation_json(
    cls: Any,
    resource_name: str,
    cloudformation_json: Any,
    account_id: str,
    region_name: str,
    **kwargs: Any,
) -> Any:
    from moto.stepfunctions.responses import get_backend
    from moto.stepfunctions.utils import cfn_to_api_tags

    properties = cloudformation_json["Properties"]
    backend = get_backend(account_id, region_name)  # the one the API (and executions) use
    return backend.create_state_machine(
        properties.get("StateMachineName", resource_name),
        definition_of(properties, account_id, region_name),
        properties.get("RoleArn", ""),
        tags=cfn_to_api_tags(properties.get("Tags", [])),
        loggingConfiguration=_api_shape(properties.get("LoggingConfiguration")),
        tracingConfiguration=_api_shape(properties.get("TracingConfiguration")),
        sm_type=properties.get("StateMachineType", "STANDARD"),
    )


def _update_from_cloudformation_json(
    cls: Any,
    original_resource: Any,
    new_resource_name: str,
    cloudformation_json: Any,
    account_id: str,
    region_name: str,
) -> Any:
    """A stack update changes the definition (from S3, substituted), role, logging and tracing
    in place, in the executing backend; a new StateMachineName replaces the machine."""
    from moto.stepfunctions.responses import get_backend

    properties = cloudformation_json["Properties"]
    name = properties.get("StateMachineName", original_resource.name)
    if name != original_resource.name:
        replacement = _create_from_cloudformation_json(
            cls, name, cloudformation_json, account_id, region_name
        )
        get_backend(account_id, region_name).delete_state_machine(original_resource.arn)
        return replacement
    return get_backend(account_id, region_name).update_state_machine(
        original_resource.arn,
        definition=definition_of(properties, account_id, region_name),
        role_arn=properties.get("RoleArn"),
        logging_configuration=_api_shape(properties.get("LoggingConfiguration")),
        tracing_configuration=_api_shape(properties.get("TracingConfiguration")),
    )


class StateMachineResource(MotoPatch):
    aws_doc = "https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-stepfunctions-statemachine.html"

    def replacements(self) -> list[tuple[type, str, Any]]:
        from moto.stepfunctions.models import StateMachine

        return [
            (
                StateMachine,
                "create_from_cloudformation_json",
                classmethod(_create_from_cloudformation_json),
            ),
            (
                StateMachine,
                "update_from_cloudformation_json",
                classmethod(_update_from_cloudformation_json),
            ),
        ]
