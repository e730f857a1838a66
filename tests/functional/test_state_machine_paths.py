"""No silent failures: in both generated state machines, every state that can fail leads, on
every path, to the alert (or back to the work that failed, to retry it).

A state can fail when it runs something (Task), holds states that can (Parallel, Map), or
evaluates paths or intrinsic functions (Pass with ``.$`` parameters, ``InputPath``,
``OutputPath``). Such a state needs a ``Catch`` for ``States.ALL`` (a Pass cannot have one: it
must sit in a one-branch Parallel whose Catch covers it). From each catcher's target, every path
must reach an SNS publish, or return to the failed state itself (the test loop retries the test),
before it can end; ending without an alert would be a silent failure. The last resort, the plain
alert, may end in the Fail state when SNS itself fails: Secrets Manager's RotationFailed event
then reaches the safety net (rotations), and the failed-executions alarm does (retirements).
And a failure Secrets Manager retries is announced once: the rotation machine's
``First failure of this rotation?`` skips the publish for a later attempt of the same token
(its first failure was announced), so that Choice counts as an alert here.

Choice and Wait states read paths too, and ASL gives them no Catch: they read only what the
router sends (validated) or what the machine wrote before them; if one failed anyway, the
execution fails and Secrets Manager's RotationFailed reaches the safety net.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from tools import asl

LAST_RESORT = "Publish a plain alert"
#: context paths that always resolve (the execution's own identity)
ALWAYS_THERE = re.compile(r"^\$\$\.Execution\.(Id|Name)$")


def _definition(name: str) -> dict[str, Any]:
    """The committed definition with every number placeholder filled (as CloudFormation's
    DefinitionSubstitutions would)."""
    text = (asl.OUTPUT / name).read_text()
    return dict(json.loads(re.sub(r"(?<![\"'{])\$\{[A-Za-z0-9]+\}", "1", text)))


def _states(
    states: dict[str, Any], guard: str | None = None
) -> Iterator[tuple[str, dict[str, Any], str | None]]:
    """(name, state, the Parallel around it or None), nested branches included."""
    for name, state in states.items():
        yield name, state, guard
        for branch in state.get("Branches", []):
            yield from _states(branch["States"], name)
        if "ItemProcessor" in state or "Iterator" in state:
            inner = state.get("ItemProcessor") or state.get("Iterator")
            yield from _states(inner["States"], name)


def _evaluates_paths(state: dict[str, Any]) -> bool:
    def dynamic(value: Any) -> bool:
        if isinstance(value, dict):
            return any(
                (key.endswith(".$") and not ALWAYS_THERE.match(str(v))) or dynamic(v)
                for key, v in value.items()
            )
        if isinstance(value, list):
            return any(dynamic(v) for v in value)
        return False

    if dynamic(state.get("Parameters", {})):
        return True
    return any(state.get(key) not in (None, "$") for key in ("InputPath", "OutputPath"))


def _can_fail(state: dict[str, Any]) -> bool:
    kind = state["Type"]
    if kind in ("Task", "Parallel", "Map"):
        return True
    return kind in ("Pass", "Succeed") and _evaluates_paths(state)


def _publishes(name: str, state: dict[str, Any]) -> bool:
    if name == asl.FIRST_FAILURE:
        return True
    return state.get("Type") == "Task" and str(state.get("Resource", "")).endswith("sns:publish")


def _successors(state: dict[str, Any]) -> list[str]:
    """Where a state goes when it does not fail (a Parallel: after its branches)."""
    found = [state.get("Next"), state.get("Default")]
    found += [rule.get("Next") for rule in state.get("Choices", [])]
    return [name for name in found if name]


def _silent_ends(states: dict[str, Any], start: str, failed: str) -> list[list[str]]:
    """Paths from ``start`` that end without an alert and without retrying ``failed``."""
    silent: list[list[str]] = []
    stack: list[list[str]] = [[start]]
    while stack:
        path = stack.pop()
        name = path[-1]
        state = states[name]
        if _publishes(name, state) or name == failed:
            continue
        nexts = [n for n in _successors(state) if n not in path]
        ends = state.get("End") or state["Type"] in ("Succeed", "Fail")
        if ends or not _successors(state):
            silent.append(path)
        stack.extend([*path, n] for n in nexts)
    return silent


def _cases() -> list[tuple[str, str]]:
    return [
        (machine, name)
        for machine in sorted(asl.MACHINES)
        for name, state, _guard in _states(_definition(machine)["States"])
        if _can_fail(state)
    ]


@pytest.mark.parametrize(("machine", "name"), _cases(), ids=[f"{m}: {n}" for m, n in _cases()])
def test_a_state_that_can_fail_leads_to_the_alert_on_every_path(machine: str, name: str) -> None:
    top = _definition(machine)["States"]
    where = {n: (s, g) for n, s, g in _states(top)}
    state, guard = where[name]
    # a state inside a Parallel is covered by the top-level Parallel's Catch (the branch fails)
    while guard is not None:
        name, (state, guard) = guard, where[guard]
    catchers = state.get("Catch", [])
    assert catchers and "States.ALL" in catchers[-1]["ErrorEquals"], (
        f"{name} can fail and has no Catch for States.ALL"
    )
    if name == LAST_RESORT:
        assert all(top[c["Next"]]["Type"] == "Fail" for c in catchers)
        return
    for catcher in catchers:
        silent = _silent_ends(top, catcher["Next"], name)
        assert not silent, f"{name} fails silently along {' -> '.join(silent[0])}"


def test_the_walk_covers_every_kind_of_state_that_can_fail() -> None:
    kinds = {_definition(machine)["States"].get(name, {}).get("Type") for machine, name in _cases()}
    # guards the walk itself: tasks, guards and guarded Pass states are all visited
    assert {"Task", "Parallel"} <= kinds
    nested = [
        name
        for machine in asl.MACHINES
        for name, state, guard in _states(_definition(machine)["States"])
        if guard is not None and _can_fail(state)
    ]
    assert len(nested) >= 10


def test_a_catch_that_ends_without_an_alert_is_found() -> None:
    # guards the path check itself with a definition that fails silently
    states = {
        "Work": {
            "Type": "Task",
            "Resource": "x",
            "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Give up"}],
            "End": True,
        },
        "Give up": {"Type": "Pass", "Next": "Gone"},
        "Gone": {"Type": "Fail"},
    }
    assert _silent_ends(states, "Give up", "Work") == [["Give up", "Gone"]]


def test_only_a_later_execution_of_a_step_skips_the_alert() -> None:
    # the alert dedupe reads the router's execution names: "-2".."-25" only for later attempts
    import fnmatch

    from rotation_core.router import RouterConfig, execution_name

    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:app/db-AbCdEf"
    for token in ("5f0e8b1e-3c2a-4d6f-9b7e-2a1c0d9e8f7a", "t" * 40, "x" * 64):
        for step in ("createSecret", "setSecret", "testSecret", "finishSecret"):
            for attempt in range(1, RouterConfig.max_attempts + 1):
                name = execution_name(step, token, arn, attempt)
                # only * is a wildcard in StringMatches, as in fnmatch without ? or [
                later = any(fnmatch.fnmatchcase(name, p) for p in asl.later_attempt_patterns())
                assert later == (attempt > 1), name


@pytest.mark.parametrize("machine", ["rotation.asl.json", "retirement.asl.json"])
def test_every_alert_the_state_machines_write_carries_the_schema_version(machine: str) -> None:
    from rotation_core.recovery import ALERT_SCHEMA_VERSION

    writers = [
        (name, state)
        for name, state, _ in _states(_definition(machine)["States"])
        if state.get("Type") == "Pass" and state.get("ResultPath") == "$.alert"
    ]
    assert len(writers) >= 2, "the walk finds the alert descriptions"
    for name, state in writers:
        assert state["Parameters"].get("schema_version") == ALERT_SCHEMA_VERSION, name
