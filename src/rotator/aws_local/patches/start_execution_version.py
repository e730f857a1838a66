"""``StartExecution`` on a version or alias ARN runs that version's definition, and the execution
belongs to the state machine.

AWS: "If you provide a qualified state machine ARN that refers to a version ARN or an alias ARN,
the request starts execution for that version or alias"; through an alias, Step Functions
associates the execution with the alias and the version it points to at the start, and the
execution keeps that version to its end (a later update of the state machine or the alias does
not change it). The execution is the state machine's: execution names are unique per state
machine, ``DescribeExecution`` and ``ListExecutions`` (on the unqualified ARN) find it.
https://docs.aws.amazon.com/step-functions/latest/apireference/API_StartExecution.html
https://docs.aws.amazon.com/step-functions/latest/dg/execution-alias-version-associate.html

moto 5.2 accepts a version ARN but then fails (a version has no executions of its own) and
refuses an alias ARN. The patch resolves the alias to its version (all the weight on one version,
as the stack routes it) and starts the execution on the state machine with the version's
definition and role, snapshotted as moto snapshots any execution's machine.
"""

from __future__ import annotations

import threading
from typing import Any

from rotator.aws_local.patches import MotoPatch

_LOCK = threading.Lock()


def resolve(backend: Any, arn: str) -> tuple[Any, Any | None]:
    """(the state machine, the version the ARN designates, or None for the unqualified ARN)."""
    parts = arn.split(":")
    if len(parts) <= 7:
        return backend.describe_state_machine(arn), None
    machine = backend.describe_state_machine(":".join(parts[:7]))
    qualifier = parts[7]
    if qualifier.isdigit():
        return machine, backend.describe_state_machine(arn)
    alias = backend.describe_state_machine_alias(arn)
    routes = sorted(alias.routing_configuration, key=lambda r: -int(r["weight"]))
    return machine, backend.describe_state_machine(routes[0]["stateMachineVersionArn"])


class StartExecutionRunsTheVersion(MotoPatch):
    aws_doc = "https://docs.aws.amazon.com/step-functions/latest/dg/execution-alias-version-associate.html"

    def replacements(self) -> list[tuple[Any, str, Any]]:
        from moto.stepfunctions.parser.models import StepFunctionsParserBackend

        original = StepFunctionsParserBackend.start_execution

        def start_execution(
            backend: Any,
            state_machine_arn: str,
            name: Any = None,
            execution_input: Any = None,
            trace_header: Any = None,
        ) -> Any:
            machine, version = resolve(backend, state_machine_arn)
            if version is None:
                return original(backend, state_machine_arn, name, execution_input, trace_header)
            # moto snapshots the machine it starts (a deep copy): hand it the version's
            # definition and role for that moment only
            with _LOCK:
                kept = machine.definition, machine.roleArn
                machine.definition, machine.roleArn = version.definition, version.roleArn
                try:
                    execution = original(backend, machine.arn, name, execution_input, trace_header)
                finally:
                    machine.definition, machine.roleArn = kept
            return execution

        return [(StepFunctionsParserBackend, "start_execution", start_execution)]
