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


def assert_nothing_leaked(rt: Any) -> None:
    """No secret value in any execution history, function log line, alert or error payload."""
    values = rt.secret_values()
    rt.alerts()
    assert_no_value_in(rt.all_histories_text(), values)
    assert_no_value_in(rt.log_text(), values)
    assert_no_value_in("\n".join(a.raw + a.subject for a in rt.seen_alerts), values)
    errors = "\n".join(json.dumps(inv.error) for inv in rt.host.invocations if inv.error)
    assert_no_value_in(errors, values)


def pytest_configure(config: pytest.Config) -> None:
    # Deploy each stack (per template parameters) once per session (per xdist worker), then
    # hand it to test after test, cleaned of what the previous test created.
    from rotator.aws_local.cloud import LocalCloud

    LocalCloud.keep()


def ca_settings(request: pytest.FixtureRequest) -> dict[str, Any]:
    """``LocalRuntime`` arguments that make the functions trust the session's test CA, where
    the tier has one (the integration tier's ``test_ca_stack_settings``); else none."""
    try:
        settings: dict[str, Any] = request.getfixturevalue("test_ca_stack_settings")
    except pytest.FixtureLookupError:
        return {}
    return settings


@pytest.fixture(scope="module", autouse=True)
def _runtimes_trust_the_test_ca(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every LocalRuntime a module of a tier with a test CA starts (the fault matrix's, the
    bad-input corpus's...) trusts that CA."""
    settings = ca_settings(request)
    if not settings:
        yield
        return
    from rotator.local import LocalRuntime

    LocalRuntime.defaults = settings
    try:
        yield
    finally:
        LocalRuntime.defaults = {}


@pytest.fixture
def runtime(request: pytest.FixtureRequest) -> Iterator[Any]:
    """The template's stack on moto (deployed once per session, isolated per test: its own
    secrets, IAM users, executions, alerts, invocations and log lines), trusting the test CA
    where there is one; ends with a scan for leaked values."""
    from rotator.local import LocalRuntime

    with LocalRuntime(**ca_settings(request)) as rt:
        yield rt
        assert_nothing_leaked(rt)


# --- the fault matrix and the bad-input corpus print their counts as the run's last lines -------

_REPORTS: dict[str, list[dict[str, Any]]] = {"fault_scenario": [], "bad_input": []}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when != "call":
        return
    for key, value in report.user_properties:
        if key in _REPORTS:
            _REPORTS[key].append(dict(value))


def pytest_unconfigure(config: pytest.Config) -> None:
    from rotator.aws_local.cloud import LocalCloud

    LocalCloud.let_go()
    if hasattr(config, "workerinput"):  # an xdist worker: the controller prints
        return
    lines = fault_matrix_lines(_REPORTS["fault_scenario"]) + corpus_lines(_REPORTS["bad_input"])
    if lines:
        print("\n" + "\n".join(lines))


def fault_matrix_lines(results: list[dict[str, Any]]) -> list[str]:
    if not results:
        return []
    combos = sorted({r["combo"] for r in results})
    faults = list(
        dict.fromkeys(r["fault"] for r in sorted(results, key=lambda r: r.get("order", 0)))
    )
    cell = {(r["combo"], r["fault"]): r for r in results}
    width = max(len(f) for f in faults)
    lines = [
        "",
        "FAULT MATRIX  (cell: ok/FAIL, rotations needed, invariant checks; '-' not applicable)",
        " " * width + " | " + " | ".join(f"{c:^22}" for c in combos),
    ]
    for fault in faults:
        row = []
        for combo in combos:
            r = cell.get((combo, fault))
            if r is None:
                row.append(f"{'-':^22}")
                continue
            ok = not r["problems"] and not r["invariant_failures"]
            text = "{} {}r {}c".format(
                "ok" if ok else "FAIL", r["rotations"], r["invariant_checks"]
            )
            row.append(f"{text:^22}")
        lines.append(f"{fault:<{width}} | " + " | ".join(row))
    canary = []
    for combo in combos:
        mine = [r for r in results if r["combo"] == combo]
        canary.append(
            f"{combo} {sum(r['canary_failures'] for r in mine)}/{sum(r['canary_logins'] for r in mine)}"
        )
    failures = [r for r in results if r["problems"] or r["invariant_failures"]]
    lines.append("client canary, failed/total logins: " + "; ".join(canary))
    lines.append(
        f"fault matrix: {len(results)} scenarios run, "
        f"{sum(r['invariant_checks'] for r in results)} invariant checks (logins), "
        f"{sum(len(r['invariant_failures']) for r in results)} invariant failures, "
        f"{len(failures)} failed scenarios"
    )
    return lines


def corpus_lines(results: list[dict[str, Any]]) -> list[str]:
    if not results:
        return []
    by_path: dict[str, int] = {}
    for r in results:
        by_path[r["path"]] = by_path.get(r["path"], 0) + 1
    failed = [r for r in results if not r["ok"]]
    paths = ", ".join(f"{count} through {path}" for path, count in sorted(by_path.items()))
    return [
        "",
        f"bad-input corpus: {len(results)} inputs ({paths}); "
        f"{sum(r['checks'] for r in results)} checks (error names the problem, nothing written, "
        f"no value leaked); {len(failed)} failures",
    ]
