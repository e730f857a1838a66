"""The ASL and exceptions.py name the same errors: transient ones are retried, all are caught."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import rotation_core
from rotation_core import exceptions

from rotator.template import build_stack_spec, load_template

CORE = Path(rotation_core.__file__).parent
# Modules that run inside the router only (and the definitions); the rest runs in workers.
ROUTER_ONLY = {"router.py", "handlers.py", "exceptions.py"}
LAMBDA_SERVICE_ERRORS = {
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
}


def _taxonomy() -> dict[str, type[exceptions.RotationError]]:
    return {
        name: cls
        for name, cls in vars(exceptions).items()
        if isinstance(cls, type)
        and issubclass(cls, exceptions.RotationError)
        and cls
        not in (exceptions.RotationError, exceptions.TransientError, exceptions.PermanentError)
    }


def _worker_raised() -> set[str]:
    """Every taxonomy class a worker module constructs (raised or returned for raising)."""
    names = set(_taxonomy())
    found: set[str] = set()
    for path in CORE.rglob("*.py"):
        if path.name in ROUTER_ONLY:
            continue
        found |= {m for m in re.findall(r"\b(\w+Error)\(", path.read_text()) if m in names}
    return found


def _worker_tasks() -> list[tuple[str, dict[str, Any]]]:
    spec = build_stack_spec(
        load_template(),
        stack_name="t",
        region="us-east-1",
        account="123456789012",
        kms_key=("k", "arn:aws:kms:us-east-1:123456789012:key/k"),
    )
    tasks = []
    for machine in spec.state_machines.values():
        for name, state in json.loads(machine.definition)["States"].items():
            if state.get("Type") == "Task" and "lambda:invoke" in state.get("Resource", ""):
                tasks.append((name, state))
    assert tasks, "no worker tasks found in the state machine"
    return tasks


def test_every_class_is_either_transient_or_permanent() -> None:
    listed = {c.__name__ for c in (*exceptions.TRANSIENT_ERRORS, *exceptions.PERMANENT_ERRORS)}
    assert listed == set(_taxonomy())
    for cls in exceptions.TRANSIENT_ERRORS:
        assert cls.transient and issubclass(cls, exceptions.TransientError)
    for cls in exceptions.PERMANENT_ERRORS:
        assert not cls.transient and issubclass(cls, exceptions.PermanentError)


def test_the_scan_finds_the_errors_workers_raise() -> None:
    # guards the scan itself: these are certainly raised by worker code
    assert {
        "NoWorkingCredentialError",
        "AuthenticationFailedError",
        "DatabaseUnavailableError",
    } <= _worker_raised()


@pytest.mark.parametrize(("state_name", "state"), _worker_tasks())
def test_transient_errors_and_only_those_are_retried(
    state_name: str, state: dict[str, Any]
) -> None:
    retried = {e for retrier in state.get("Retry", []) for e in retrier["ErrorEquals"]}
    transient = {c.__name__ for c in exceptions.TRANSIENT_ERRORS} & _worker_raised()
    assert retried - LAMBDA_SERVICE_ERRORS == transient, state_name
    assert retried >= LAMBDA_SERVICE_ERRORS, state_name
    for retrier in state["Retry"]:
        assert retrier.get("JitterStrategy") == "FULL" and retrier.get("MaxDelaySeconds"), (
            state_name
        )


@pytest.mark.parametrize(("state_name", "state"), _worker_tasks())
def test_every_raised_error_is_caught_by_name(state_name: str, state: dict[str, Any]) -> None:
    caught = {e for catcher in state.get("Catch", []) for e in catcher["ErrorEquals"]}
    missing = _worker_raised() - caught
    assert not missing, f"{state_name} does not catch {sorted(missing)}"
    assert "States.ALL" in caught, f"{state_name} lets unexpected errors escape the alert"
