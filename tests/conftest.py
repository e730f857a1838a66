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


SECRET_FIELDS = ("password", "secret_access_key")


def every_secret_value(rt: Any) -> dict[str, str]:
    """Every password and secret key of every version of every secret in the runtime."""
    sm = rt.client("secretsmanager")
    found: dict[str, str] = {}
    for page in sm.get_paginator("list_secrets").paginate(IncludePlannedDeletion=True):
        for secret in page["SecretList"]:
            for version in secret.get("SecretVersionsToStages", {}):
                try:
                    data = json.loads(
                        sm.get_secret_value(SecretId=secret["ARN"], VersionId=version)[
                            "SecretString"
                        ]
                    )
                except Exception:  # noqa: S112 - a staged placeholder version has no value
                    continue
                for field in SECRET_FIELDS:
                    if isinstance(data, dict) and isinstance(data.get(field), str):
                        found[f"{secret['Name']}@{version}.{field}"] = data[field]
    return found


def assert_nothing_leaked(rt: Any) -> None:
    """No secret value in any execution history, function log line, alert or error payload."""
    values = every_secret_value(rt)
    rt.alerts()
    assert_no_value_in(rt.all_histories_text(), values)
    assert_no_value_in(rt.log_text(), values)
    assert_no_value_in("\n".join(a.raw + a.subject for a in rt.seen_alerts), values)
    errors = "\n".join(json.dumps(inv.error) for inv in rt.host.invocations if inv.error)
    assert_no_value_in(errors, values)


@pytest.fixture
def runtime() -> Iterator[Any]:
    """The template's stack on moto, fresh for each test; ends with a scan for leaked values."""
    from rotator.local import LocalRuntime

    with LocalRuntime() as rt:
        yield rt
        assert_nothing_leaked(rt)
