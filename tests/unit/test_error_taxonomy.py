"""The ASL and exceptions.py name the same errors: transient ones are retried, all are caught."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

import rotation_core
from rotation_core import exceptions
from tools import asl

CORE = Path(rotation_core.__file__).parent
# Modules that run inside the router only (and the definitions); the rest runs in workers.
ROUTER_ONLY = {"router.py", "handlers.py", "exceptions.py"}
# As the Step Functions docs recommend retrying them (bp-lambda-serviceexception.html).
LAMBDA_SERVICE_ERRORS = {
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
    "Lambda.ClientExecutionTimeoutException",
}
# A function that timed out: Sandbox.Timedout, or Lambda.Unknown (which unhandled errors and
# timeouts can surface as).
FUNCTION_TIMEOUTS = {"Sandbox.Timedout", "Lambda.Unknown"}
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


def _definitions() -> dict[str, dict[str, Any]]:
    """The committed definitions with every ${...} filled (numbers with 1)."""
    found = {}
    for name in asl.MACHINES:
        text = (asl.OUTPUT / name).read_text()
        text = re.sub(r"(?<![\"'{])\$\{[A-Za-z0-9]+\}", "1", text)
        found[name] = json.loads(text)
    return found


def _all_states(states: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every state, those inside Parallel branches included."""
    found = {}
    for name, state in states.items():
        found[name] = state
        for branch in state.get("Branches", []):
            found.update(_all_states(branch["States"]))
    return found


def _worker_tasks() -> list[tuple[str, dict[str, Any]]]:
    tasks = []
    for machine, definition in _definitions().items():
        for name, state in _all_states(definition["States"]).items():
            if state.get("Type") == "Task" and "lambda:invoke" in state.get("Resource", ""):
                tasks.append((f"{machine}: {name}", state))
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
    timeouts = {"States.Timeout", *FUNCTION_TIMEOUTS}
    if state_name.endswith("Test pending secret"):
        # testSecret retries inside the grace budget, through the loop, not Retry
        assert retried == LAMBDA_SERVICE_ERRORS, state_name
        assert raised_transient | timeouts <= _caught(state, GRACE_LOOP), state_name
        assert not (_caught(state, GRACE_LOOP) - TRANSIENT - timeouts), state_name
    else:
        # a worker that timed out is retried too: every step is idempotent
        # every transient class of the taxonomy (the generator reads TRANSIENT_ERRORS)
        assert raised_transient <= TRANSIENT
        assert retried - LAMBDA_SERVICE_ERRORS == TRANSIENT | FUNCTION_TIMEOUTS, state_name
    for retrier in state["Retry"]:
        assert retrier.get("JitterStrategy") == "FULL" and retrier.get("MaxDelaySeconds"), (
            state_name
        )


@pytest.mark.parametrize(("state_name", "state"), _worker_tasks())
def test_every_raised_error_is_caught_by_name(state_name: str, state: dict[str, Any]) -> None:
    missing = _worker_raised() - _caught(state)
    assert not missing, f"{state_name} does not catch {sorted(missing)}"
    assert "States.ALL" in _caught(state), f"{state_name} lets unexpected errors escape the alert"


@pytest.mark.parametrize(("state_name", "state"), _worker_tasks())
def test_every_class_of_the_taxonomy_is_caught_by_name(
    state_name: str, state: dict[str, Any]
) -> None:
    assert set(_taxonomy()) <= _caught(state), state_name


def test_the_committed_state_machines_are_what_the_generator_makes() -> None:
    for name, text in asl.generated().items():
        assert (asl.OUTPUT / name).read_text() == text, f"{name} is stale: run make asl"


def _paths_to(states: dict[str, Any], target: str) -> set[str]:
    """States from which ``target`` can be reached (transitions, Catch and Default)."""
    edges: dict[str, set[str]] = {}
    for name, state in states.items():
        nexts = {state.get("Next"), state.get("Default")}
        nexts |= {c.get("Next") for c in state.get("Choices", [])}
        nexts |= {c.get("Next") for c in state.get("Catch", [])}
        edges[name] = {n for n in nexts if n}
    reach, changed = {target}, True
    while changed:
        changed = False
        for name, nexts in edges.items():
            if name not in reach and nexts & reach:
                reach.add(name)
                changed = True
    return reach


@pytest.mark.parametrize("machine", sorted(asl.MACHINES))
def test_every_state_that_can_fail_has_a_catch_that_leads_to_the_alert(machine: str) -> None:
    states = _definitions()[machine]["States"]
    to_alert = _paths_to(states, "Publish alert") | _paths_to(states, "Publish a plain alert")
    for name, state in states.items():
        kind = state["Type"]
        if kind in ("Task", "Parallel"):
            assert any("States.ALL" in c["ErrorEquals"] for c in state.get("Catch", [])), name
            assert all(
                c["Next"] in to_alert or c["Next"].endswith("failed") for c in state["Catch"]
            )
        if kind == "Pass":
            # a top-level Pass state cannot have a Catch: it may only hold constants
            text = json.dumps({k: v for k, v in state.items() if k != "Comment"})
            computes = "States." in text or any(
                key.endswith(".$") and value != "$$.Execution.Id"
                for key, value in state.get("Parameters", {}).items()
            )
            assert not computes, f"{name} evaluates paths or intrinsics outside a guard"


def test_the_grace_backoff_never_draws_from_an_empty_range() -> None:
    # AWS's States.MathRandom excludes its end value: MathRandom(1, Cap) is empty for Cap = 1.
    text = (asl.OUTPUT / "rotation.asl.json").read_text()
    draws = re.findall(r"States\.MathRandom\(([^,]+), ([^)]+)\)", text)
    assert draws == [("1", "$.Grace.End")]
    states = _all_states(_definitions()["rotation.asl.json"]["States"])
    assert states["Charge the wait"]["Parameters"]["End.$"] == "States.MathAdd($.Grace.Cap, 1)"
