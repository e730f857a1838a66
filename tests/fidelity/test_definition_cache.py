"""A definition is parsed once, and executions behave as without the cache
(rotator.aws_local.patches.definition_cache: speed, not an AWS behaviour)."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

import pytest

from rotator.aws_local.patches.definition_cache import ParsedDefinitionsAreCached
from tests.fidelity.machines import Ran


def _machine(marker: str) -> dict[str, Any]:
    """Choice, Parallel, intrinsics, a retried and caught failure: state kept per execution."""
    return {
        "Comment": marker,  # a text of its own: a definition no other test parsed
        "StartAt": "Route",
        "States": {
            "Route": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.n", "NumericGreaterThan": 10, "Next": "Big"}],
                "Default": "Small",
            },
            "Big": {"Type": "Pass", "Parameters": {"size": "big", "n.$": "$.n"}, "Next": "Fan"},
            "Small": {
                "Type": "Pass",
                "Parameters": {"size": "small", "n.$": "States.MathAdd($.n, 1)"},
                "Next": "Fan",
            },
            "Fan": {
                "Type": "Parallel",
                "Branches": [
                    {
                        "StartAt": "Echo",
                        "States": {"Echo": {"Type": "Pass", "End": True}},
                    },
                    {
                        "StartAt": "Refuse",
                        "States": {
                            "Refuse": {"Type": "Fail", "Error": "Refused", "Cause": "on purpose"}
                        },
                    },
                ],
                "Retry": [{"ErrorEquals": ["Refused"], "IntervalSeconds": 1, "MaxAttempts": 1}],
                "Catch": [
                    {"ErrorEquals": ["States.ALL"], "ResultPath": "$.caught", "Next": "Done"}
                ],
                "End": True,
            },
            "Done": {"Type": "Pass", "End": True},
        },
    }


@contextmanager
def _counting_parses() -> Iterator[list[int]]:
    """Counts ANTLR parses of whole definitions (moto's ``ASLParser.state_machine``)."""
    from moto.stepfunctions.parser.asl.antlr.runtime.ASLParser import ASLParser

    calls = [0]
    original = ASLParser.state_machine

    def state_machine(parser: Any) -> Any:
        calls[0] += 1
        return original(parser)

    with mock.patch.object(ASLParser, "state_machine", state_machine):
        yield calls


def _create(rt: Any, definition: dict[str, Any]) -> str:
    return str(
        rt.client("stepfunctions").create_state_machine(
            name=f"fidelity-{uuid.uuid4().hex[:12]}",
            definition=json.dumps(definition),
            roleArn=rt.spec.functions["RouterFunction"].role_arn,
        )["stateMachineArn"]
    )


def _execute(rt: Any, machine: str, payload: dict[str, Any]) -> Ran:
    sfn = rt.client("stepfunctions")
    arn = sfn.start_execution(
        stateMachineArn=machine, name=uuid.uuid4().hex, input=json.dumps(payload)
    )["executionArn"]
    deadline = time.monotonic() + 30
    while (described := sfn.describe_execution(executionArn=arn))["status"] == "RUNNING":
        assert time.monotonic() < deadline, "the execution did not end"
        time.sleep(0.05)
    history = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
    output = json.loads(described["output"]) if described.get("output") else None
    return Ran(described["status"], output, described.get("error"), described.get("cause"), history)


def _shape(ran: Ran) -> list[tuple[str, str]]:
    """What an execution did, without its timestamps and ids: (event type, state name), sorted
    (a Parallel state's branches run in threads: their events interleave differently). The
    ``Echo`` branch races its sibling's failure, which cancels it: whether it got to enter or
    exit before that varies from run to run, with or without the cache, so it is left out."""
    names = []
    for event in ran.history:
        details = event.get("stateEnteredEventDetails") or event.get("stateExitedEventDetails")
        name = details["name"] if details else ""
        if name != "Echo":
            names.append((event["type"], name))
    return sorted(names)


def test_a_definition_is_parsed_once_however_many_executions_run(runtime: Any) -> None:
    with _counting_parses() as parses:
        machine = _create(runtime, _machine(uuid.uuid4().hex))
        for n in (1, 2, 3):
            assert _execute(runtime, machine, {"n": n}).status == "SUCCEEDED"
    assert parses[0] == 1  # CreateStateMachine's check; the executions reuse its tree


def test_moto_alone_parses_the_definition_at_every_execution(runtime: Any) -> None:
    with runtime.cloud.suspended(ParsedDefinitionsAreCached), _counting_parses() as parses:
        machine = _create(runtime, _machine(uuid.uuid4().hex))
        for n in (1, 2, 3):
            _execute(runtime, machine, {"n": n})
    assert parses[0] == 1 + 3


def test_executions_do_what_they_did_without_the_cache(runtime: Any) -> None:
    definition = _machine(uuid.uuid4().hex)
    machine = _create(runtime, definition)
    cached = [_execute(runtime, machine, {"n": n}) for n in (5, 50)]
    with runtime.cloud.suspended(ParsedDefinitionsAreCached):
        plain = [_execute(runtime, machine, {"n": n}) for n in (5, 50)]
    for with_cache, without in zip(cached, plain, strict=True):
        assert (with_cache.status, with_cache.output) == (without.status, without.output)
        assert _shape(with_cache) == _shape(without)
    # and what they did: each execution retried its own failure once, then caught it
    assert cached[0].output["size"] == "small" and cached[0].output["n"] == 6
    assert cached[1].output["size"] == "big"
    assert [name for kind, name in _shape(cached[1]) if kind == "ParallelStateEntered"] == ["Fan"]
    assert all("Refused" in json.dumps(ran.output["caught"]) for ran in cached)


def test_concurrent_executions_of_one_definition_keep_their_own_state(runtime: Any) -> None:
    machine = _create(runtime, _machine(uuid.uuid4().hex))
    results: dict[int, Ran] = {}

    def run(n: int) -> None:
        results[n] = _execute(runtime, machine, {"n": n})

    threads = [threading.Thread(target=run, args=(n,)) for n in (1, 2, 30, 40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert {n: ran.status for n, ran in results.items()} == dict.fromkeys(
        (1, 2, 30, 40), "SUCCEEDED"
    )
    assert {n: ran.output["n"] for n, ran in results.items()} == {1: 2, 2: 3, 30: 30, 40: 40}
    # every execution made its own retry: a retry counter shared between them would run out
    retried = [
        sum(1 for kind, _ in _shape(ran) if kind == "ParallelStateStarted")
        for ran in results.values()
    ]
    assert retried == [2, 2, 2, 2]


def test_a_definition_with_a_syntax_error_is_refused_every_time_as_by_moto(runtime: Any) -> None:
    from botocore.exceptions import ClientError

    broken = json.dumps({"StartAt": "A", "States": {"A": {"Type": "Pass", "End": "soon"}}})
    sfn = runtime.client("stepfunctions")

    def refusal() -> str:
        with pytest.raises(ClientError) as refused:
            sfn.create_state_machine(
                name=f"fidelity-{uuid.uuid4().hex[:12]}",
                definition=broken,
                roleArn=runtime.spec.functions["RouterFunction"].role_arn,
            )
        return str(refused.value.response["Error"]["Message"])

    first, second = refusal(), refusal()  # an error is never cached as a tree
    with runtime.cloud.suspended(ParsedDefinitionsAreCached):
        plain = refusal()
    assert first == second == plain
    assert "ASLParserException" in first
