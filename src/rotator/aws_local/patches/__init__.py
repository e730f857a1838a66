"""Where moto differs from AWS: one module per AWS behaviour the local runtime restores.

Each module holds one :class:`MotoPatch` subclass: a docstring naming the AWS documentation it
restores, the narrowest patch that restores it, and (in ``tests/fidelity/``) a test that fails
without it. :class:`~rotator.aws_local.cloud.LocalCloud` starts them all; a test can suspend one
(``cloud.suspended(SomePatch)``) to show moto's own behaviour.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar
from unittest import mock

if TYPE_CHECKING:
    from rotator.aws_local.contracts import Cloud


class MotoPatch:
    """Replaces attributes of moto's classes while started."""

    #: the AWS documentation page whose behaviour the patch restores
    aws_doc: ClassVar[str] = ""

    def __init__(self, cloud: Cloud) -> None:
        self.cloud = cloud
        self._patchers: list[Any] = []

    def replacements(self) -> list[tuple[type, str, Callable[..., Any]]]:
        """(moto class, attribute, replacement) triples."""
        raise NotImplementedError

    def start(self) -> None:
        self._patchers = [
            mock.patch.object(owner, name, replacement)
            for owner, name, replacement in self.replacements()
        ]
        for patcher in self._patchers:
            patcher.start()

    def stop(self) -> None:
        for patcher in reversed(self._patchers):
            patcher.stop()
        self._patchers = []


def all_patches() -> list[type[MotoPatch]]:
    """Every patch, in the order the cloud starts them."""
    from rotator.aws_local.patches.choice_timestamps import ChoiceComparesRfc3339Timestamps
    from rotator.aws_local.patches.definition_cache import ParsedDefinitionsAreCached
    from rotator.aws_local.patches.lambda_invoke import InvokeRunsTheHandler
    from rotator.aws_local.patches.lambda_permission_resource import (
        PermissionResourceAddsAStatement,
    )
    from rotator.aws_local.patches.lambda_qualified_policies import (
        QualifiedPermissionsAreTheirOwn,
    )
    from rotator.aws_local.patches.lambda_unknown import UntypedLambdaErrorsAreLambdaUnknown
    from rotator.aws_local.patches.lambda_versions import CloudFormationPublishesLambdaVersions
    from rotator.aws_local.patches.layer_version_ref import LayerVersionRefIsItsArn
    from rotator.aws_local.patches.math_random import MathRandomExcludesItsEnd
    from rotator.aws_local.patches.no_value_in_lists import NoValueDropsListItems
    from rotator.aws_local.patches.role_managed_policies import RoleAttachesManagedPolicies
    from rotator.aws_local.patches.rotate_secret import RotateSecretRunsTheSteps
    from rotator.aws_local.patches.secret_current_version import CurrentLabelPicksTheValue
    from rotator.aws_local.patches.sns_lambda_permission import SnsInvokesLambdaOnlyWithPermission
    from rotator.aws_local.patches.stack_update_order import StackUpdateInDependencyOrder
    from rotator.aws_local.patches.start_execution_version import StartExecutionRunsTheVersion
    from rotator.aws_local.patches.state_machine_resource import StateMachineResource
    from rotator.aws_local.patches.state_machine_versions import (
        CloudFormationPublishesStateMachineVersions,
    )
    from rotator.aws_local.patches.sts_key_state import StsRefusesUnusableKeys
    from rotator.aws_local.patches.sts_signature import StsChecksSignatures

    return [
        StackUpdateInDependencyOrder,
        StateMachineResource,
        CloudFormationPublishesLambdaVersions,
        LayerVersionRefIsItsArn,
        CloudFormationPublishesStateMachineVersions,
        StartExecutionRunsTheVersion,
        NoValueDropsListItems,
        RoleAttachesManagedPolicies,
        PermissionResourceAddsAStatement,
        QualifiedPermissionsAreTheirOwn,
        InvokeRunsTheHandler,
        SnsInvokesLambdaOnlyWithPermission,
        RotateSecretRunsTheSteps,
        CurrentLabelPicksTheValue,
        StsRefusesUnusableKeys,
        StsChecksSignatures,
        MathRandomExcludesItsEnd,
        ChoiceComparesRfc3339Timestamps,
        UntypedLambdaErrorsAreLambdaUnknown,
        ParsedDefinitionsAreCached,
    ]
