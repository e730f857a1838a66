"""The fault matrix: every combo x every fault point (see tests/support/faults.py).

Each scenario asserts invariant 4 at every step boundary by logging in, then that retrying
completes the rotation with exactly one new credential. The matrix prints at the end of the run.
"""

from __future__ import annotations

import dataclasses
import secrets
from typing import Any

import pytest

from tests.conftest import assert_nothing_leaked
from tests.support.faults import (
    COMBOS,
    FAULTS,
    Combo,
    Fault,
    fault_runtime,
    make_subject,
    run_scenario,
)

pytestmark = pytest.mark.integration

SCENARIOS = [(combo, fault) for combo in COMBOS for fault in FAULTS if fault.applies(combo)]
SERVER_FIXTURES = {
    "postgres": "postgres_server",
    "mariadb": "mariadb_server",
    "redis": "redis_server",
}


def test_the_matrix_is_big_enough() -> None:
    assert len(SCENARIOS) >= 60
    assert {c.strategy for c, _ in SCENARIOS} == {
        "single-user",
        "alternating-users",
        "multi-credential",
    }
    assert {c.backend for c, _ in SCENARIOS} >= {"postgres", "mariadb"}


@pytest.mark.parametrize(
    ("combo", "fault"), SCENARIOS, ids=[f"{c.name}: {f.name}" for c, f in SCENARIOS]
)
def test_scenario(
    combo: Combo, fault: Fault, request: pytest.FixtureRequest, record_property: Any
) -> None:
    servers = {}
    if combo.backend in SERVER_FIXTURES:
        servers[combo.backend] = request.getfixturevalue(SERVER_FIXTURES[combo.backend])
    with fault_runtime(request.getfixturevalue("test_ca_stack_settings")) as rt:
        subject = make_subject(rt, combo, servers, unique=f"f{secrets.token_hex(4)}")
        result = run_scenario(rt, combo, fault, subject)
        assert_nothing_leaked(rt)
    record_property("fault_scenario", {**dataclasses.asdict(result), "order": FAULTS.index(fault)})
    assert not result.invariant_failures, result.invariant_failures
    assert result.passed, result.problems
