"""States.MathRandom excludes its end value (rotator.aws_local.patches.math_random)."""

from __future__ import annotations

import random
from typing import Any

from rotator.aws_local.patches.math_random import MathRandomExcludesItsEnd
from tests.fidelity.machines import run

# A seed for which an inclusive draw from 1..2 gives the end value (2): the draw is then
# deterministic, and moto's inclusive end shows on the first try.
SEED = next(s for s in range(100) if random.Random(s).randint(1, 2) == 2)


def _draw(start: int, end: int, seed: int | None = None) -> dict[str, Any]:
    args = f"{start}, {end}" + (f", {seed}" if seed is not None else "")
    return {
        "StartAt": "Draw",
        "States": {
            "Draw": {
                "Type": "Pass",
                "Parameters": {"n.$": f"States.MathRandom({args})"},
                "End": True,
            }
        },
    }


def test_the_end_value_is_never_drawn(runtime: Any) -> None:
    ran = run(runtime, _draw(1, 2, SEED))
    assert ran.status == "SUCCEEDED"
    assert ran.output == {"n": 1}


def test_every_value_below_the_end_can_be_drawn(runtime: Any) -> None:
    drawn = {run(runtime, _draw(1, 4, seed)).output["n"] for seed in range(12)}
    assert drawn == {1, 2, 3}


def test_a_range_with_nothing_in_it_fails_the_state(runtime: Any) -> None:
    ran = run(runtime, _draw(1, 1))
    assert ran.status == "FAILED"


def test_moto_alone_draws_the_end_value(runtime: Any) -> None:
    with runtime.cloud.suspended(MathRandomExcludesItsEnd):
        ran = run(runtime, _draw(1, 2, SEED))
    assert ran.output == {"n": 2}
