"""Step Functions (the ExecutionRunner port, and what the safety net reads). Client injected."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from rotation_core.adapters.aws_errors import aws_errors, error_code
from rotation_core.ports import Execution

if TYPE_CHECKING:
    from mypy_boto3_stepfunctions import SFNClient


def unqualified(machine: str) -> str:
    """The state machine's own ARN, without a version number or alias name after its name.

    The router starts executions on the state machine's alias (``...:stateMachine:<name>:live``)
    so that each runs the version the alias points to when it starts; Step Functions associates
    the execution with that alias and version, but the execution belongs to the state machine:
    its ARN is ``...:execution:<name>:<execution name>`` and execution names are unique per state
    machine, whichever version ran them. Listing by the unqualified ARN returns every execution;
    a version or alias ARN would return only those started through it.
    https://docs.aws.amazon.com/step-functions/latest/dg/execution-alias-version-associate.html
    https://docs.aws.amazon.com/step-functions/latest/apireference/API_ListExecutions.html
    """
    return ":".join(machine.split(":")[:7])


class StepFunctionsRunner:
    def __init__(self, client: SFNClient) -> None:
        self._client = client

    def execution_arn(self, machine: str, name: str) -> str:
        # An execution's ARN is its state machine's with "execution" for "stateMachine" and
        # the name appended (Step Functions API reference, DescribeExecution / StartExecution)
        base = unqualified(machine).replace(":stateMachine:", ":execution:", 1)
        return f"{base}:{name}"

    def start(self, machine: str, name: str, body: str) -> bool:
        try:
            with aws_errors("StartExecution"):
                self._client.start_execution(stateMachineArn=machine, name=name, input=body)
        except Exception as exc:
            if error_code(exc) == "ExecutionAlreadyExists":
                return False
            raise
        return True

    def describe(self, arn: str) -> Execution | None:
        try:
            with aws_errors("DescribeExecution"):
                found: Any = self._client.describe_execution(executionArn=arn)
        except Exception as exc:
            if error_code(exc) == "ExecutionDoesNotExist":
                return None
            raise
        started = found.get("startDate")
        return Execution(
            arn=arn,
            status=str(found["status"]),
            started=started if isinstance(started, datetime) else datetime.now(UTC),
            input=str(found.get("input") or ""),
            output=str(found.get("output") or ""),
            error=found.get("error"),
            cause=found.get("cause"),
        )

    # --- what the safety net reads ------------------------------------------------------------

    def executions(self, machine: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        with aws_errors("ListExecutions"):
            for page in self._client.get_paginator("list_executions").paginate(
                stateMachineArn=unqualified(machine)
            ):
                found.extend(dict(e) for e in page["executions"])
        return found

    def published_alert(self, execution_arn: str) -> bool:
        """True when the execution's ``Publish alert`` task (an SNS publish) succeeded."""
        with aws_errors("GetExecutionHistory"):
            pages = self._client.get_paginator("get_execution_history").paginate(
                executionArn=execution_arn
            )
            for page in pages:
                for event in page["events"]:
                    details: Any = event.get("taskSucceededEventDetails") or {}
                    if (
                        details.get("resourceType") == "sns"
                        and details.get("resource") == "publish"
                    ):
                        return True
        return False
