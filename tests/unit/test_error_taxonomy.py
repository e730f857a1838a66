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
GRACE_LOOP = "Plan the next test"


def _taxonomy() -> dict[str, type[exceptions.RotationError]]:
    abstract = (exceptions.RotationError, exceptions.TransientError, exceptions.PermanentError)
    return {
        name: cls
        for name, cls in vars(exceptions).items()
        if isinstance(cls, type)
        and issubclass(cls, exceptions.RotationError)
        and cls not in abstract
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


TRANSIENT = {c.__name__ for c in exceptions.TRANSIENT_ERRORS}


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
                tasks.append((f"{machine.logical_id}: {name}", state))
    assert len(tasks) >= 5, "worker tasks missing from the state machines"
    return tasks


def _retried(state: dict[str, Any]) -> set[str]:
    return {e for retrier in state.get("Retry", []) for e in retrier["ErrorEquals"]}


def _caught(state: dict[str, Any], next_state: str | None = None) -> set[str]:
    return {
        e
        for catcher in state.get("Catch", [])
        if next_state is None or catcher["Next"] == next_state
        for e in catcher["ErrorEquals"]
    }


def test_every_class_is_either_transient_or_permanent() -> None:
    listed = {c.__name__ for c in (*exceptions.TRANSIENT_ERRORS, *exceptions.PERMANENT_ERRORS)}
    assert listed == set(_taxonomy())
    for cls in exceptions.TRANSIENT_ERRORS:
        assert cls.transient and issubclass(cls, exceptions.TransientError)
    for cls in exceptions.PERMANENT_ERRORS:
        assert not cls.transient and issubclass(cls, exceptions.PermanentError)


def test_the_scan_finds_the_errors_workers_raise() -> None:
    # guards the scan itself: these are certainly raised by worker code
    expected = {"NoWorkingCredentialError", "AuthenticationFailedError", "DatabaseUnavailableError"}
    assert expected <= _worker_raised()


@pytest.mark.parametrize(("state_name", "state"), _worker_tasks())
def test_transient_errors_are_retried_and_permanent_ones_never(
    state_name: str, state: dict[str, Any]
) -> None:
    raised_transient = TRANSIENT & _worker_raised()
    retried = _retried(state)
    assert retried >= LAMBDA_SERVICE_ERRORS, state_name
    assert not (retried & (set(_taxonomy()) - TRANSIENT)), f"{state_name} retries a permanent error"
    timeouts = {"States.Timeout", "Sandbox.Timedout"}
    if state_name.endswith("Test pending secret"):
        # testSecret retries inside the grace budget, through the loop, not Retry
        assert retried == LAMBDA_SERVICE_ERRORS, state_name
        assert raised_transient | timeouts <= _caught(state, GRACE_LOOP), state_name
        assert not (_caught(state, GRACE_LOOP) - TRANSIENT - timeouts), state_name
    else:
        # a worker that timed out is retried too: every step is idempotent
        assert retried - LAMBDA_SERVICE_ERRORS == raised_transient | {"Sandbox.Timedout"}, (
            state_name
        )
    for retrier in state["Retry"]:
        assert retrier.get("JitterStrategy") == "FULL" and retrier.get("MaxDelaySeconds"), (
            state_name
        )


@pytest.mark.parametrize(("state_name", "state"), _worker_tasks())
def test_every_raised_error_is_caught_by_name(state_name: str, state: dict[str, Any]) -> None:
    missing = _worker_raised() - _caught(state)
    assert not missing, f"{state_name} does not catch {sorted(missing)}"
    assert "States.ALL" in _caught(state), f"{state_name} lets unexpected errors escape the alert"
