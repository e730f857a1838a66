"""Fixtures shared by every tier."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

EVENTS_DIR = Path(__file__).resolve().parents[1] / "events"


def load_event(step: str, **overrides: Any) -> dict[str, Any]:
    """A sample event from ``events/`` (the same files ``sam local invoke`` uses)."""
    event: dict[str, Any] = json.loads((EVENTS_DIR / f"{step}.json").read_text())
    event = copy.deepcopy(event)
    event.update(overrides)
    return event


def assert_no_value_in(text: str, values: dict[str, str]) -> None:
    """Fail naming the *label* of any value found in ``text`` (never printing the value)."""
    leaked = [label for label, value in values.items() if value and value in text]
    assert not leaked, f"secret values found in text: {leaked}"


@pytest.fixture
def runtime() -> Iterator[Any]:
    """The template's stack on moto, fresh for each test."""
    from rotator.local import LocalRuntime

    with LocalRuntime() as rt:
        yield rt
