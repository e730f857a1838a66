"""Choice rules compare RFC 3339 timestamps with fractional seconds, $$.State.EnteredTime
included (rotator.aws_local.patches.choice_timestamps)."""

from __future__ import annotations

from typing import Any

from rotator.aws_local.patches.choice_timestamps import (
    ChoiceComparesRfc3339Timestamps,
    parse_timestamp,
)
from tests.fidelity.machines import run


def _later(variable: str, than_path: str) -> dict[str, Any]:
    return {
        "StartAt": "Later?",
        "States": {
            "Later?": {
                "Type": "Choice",
                "Choices": [
                    {"Variable": variable, "TimestampGreaterThanPath": than_path, "Next": "Later"}
                ],
                "Default": "Not later",
            },
            "Later": {"Type": "Succeed"},
            "Not later": {"Type": "Succeed"},
        },
    }


def _clock_then_compare() -> dict[str, Any]:
    """Read $$.State.EnteredTime into the state, then compare it with $.deadline."""
    definition = _later("$.now", "$.deadline")
    definition["StartAt"] = "Read the clock"
    definition["States"]["Read the clock"] = {
        "Type": "Pass",
        "Parameters": {"deadline.$": "$.deadline", "now.$": "$$.State.EnteredTime"},
        "Next": "Later?",
    }
    return definition


def test_fractional_seconds_compare_as_instants(runtime: Any) -> None:
    payload = {"a": "2019-03-26T20:14:13.192Z", "b": "2019-03-26T20:14:13Z"}
    assert run(runtime, _later("$.a", "$.b"), payload).entered()[-1] == "Later"
    assert run(runtime, _later("$.b", "$.a"), payload).entered()[-1] == "Not later"


def test_the_state_entered_time_is_later_than_a_past_deadline(runtime: Any) -> None:
    past = run(runtime, _clock_then_compare(), {"deadline": "2000-01-01T00:00:00Z"})
    future = run(runtime, _clock_then_compare(), {"deadline": "2999-01-01T00:00:00Z"})
    assert past.entered()[-1] == "Later"
    assert future.entered()[-1] == "Not later"


def test_only_the_rfc3339_profile_is_a_timestamp() -> None:
    assert parse_timestamp("2016-03-14T01:59:00Z") is not None
    assert parse_timestamp("2016-03-14T01:59:00.123456789+02:00") is not None
    for text in ("2016-03-14 01:59:00Z", "2016-03-14t01:59:00z", "2016-03-14T01:59:00", 5):
        assert parse_timestamp(text) is None, text


def test_moto_alone_never_finds_the_entered_time_later(runtime: Any) -> None:
    with runtime.cloud.suspended(ChoiceComparesRfc3339Timestamps):
        past = run(runtime, _clock_then_compare(), {"deadline": "2000-01-01T00:00:00Z"})
    assert past.entered()[-1] == "Not later"
