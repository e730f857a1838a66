"""Run a small state machine on the local cloud's Step Functions (for the fidelity tests of
Step Functions behaviours)."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any


@dataclass
class Ran:
    status: str
    output: Any
    error: str | None
    cause: str | None
    history: list[dict[str, Any]]

    def entered(self) -> list[str]:
        """The names of the states entered, in order."""
        return [
            h["stateEnteredEventDetails"]["name"]
            for h in self.history
            if "stateEnteredEventDetails" in h
        ]


def run(
    rt: Any, definition: dict[str, Any], payload: Any = None, *, name: str | None = None
) -> Ran:
    """Create a machine with ``definition``, run it once with ``payload``, wait for its end."""
    sfn = rt.client("stepfunctions")
    machine = sfn.create_state_machine(
        name=f"fidelity-{uuid.uuid4().hex[:12]}",
        definition=json.dumps(definition),
        roleArn=rt.spec.functions["RouterFunction"].role_arn,
    )["stateMachineArn"]
    arn = sfn.start_execution(
        stateMachineArn=machine,
        name=name or uuid.uuid4().hex,
        input=json.dumps(payload if payload is not None else {}),
    )["executionArn"]
    deadline = time.monotonic() + 30
    while (described := sfn.describe_execution(executionArn=arn))["status"] == "RUNNING":
        assert time.monotonic() < deadline, "the execution did not end"
        time.sleep(0.05)
    history = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
    output = json.loads(described["output"]) if described.get("output") else None
    return Ran(described["status"], output, described.get("error"), described.get("cause"), history)
