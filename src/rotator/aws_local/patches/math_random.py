"""``States.MathRandom(start, end)`` draws from ``start`` up to, but not including, ``end``.

AWS: the intrinsic "returns a random number between the specified start (inclusive) and end
number (exclusive)"; non-integer arguments are rounded to integers, and an optional third
argument seeds the generator.
https://docs.aws.amazon.com/step-functions/latest/dg/intrinsic-functions.html#asl-intrsc-func-math-operation

moto 5.2 draws with Python's ``randint``, whose end is inclusive: ``MathRandom(1, 2)`` yields 2
half the time, where AWS only ever yields 1. The rotation state machine's grace backoff draws
its jitter with ``MathRandom(1, Cap + 1)`` (AWS's range 1..Cap); on moto alone it could wait
``Cap + 1`` seconds and overrun the budget it charged. The patch replaces the draw only; the
argument checks stay moto's. A range with nothing in it (``end <= start``) fails the state, as
there is no number AWS could return.
"""

from __future__ import annotations

import random
from typing import Any

from rotator.aws_local.patches import MotoPatch


class MathRandomExcludesItsEnd(MotoPatch):
    aws_doc = "https://docs.aws.amazon.com/step-functions/latest/dg/intrinsic-functions.html#asl-intrsc-func-math-operation"

    def replacements(self) -> list[tuple[type, str, Any]]:
        from moto.stepfunctions.parser.asl.component.intrinsic.function.statesfunction.math_operations.math_random import (
            MathRandom,
        )

        def _eval_body(function: Any, env: Any) -> None:
            function.argument_list.eval(env=env)
            args = env.stack.pop()
            seed = None
            if function.argument_list.size == 3:
                seed = function._validate_integer_value(args.pop(), "seed")
            end = function._validate_integer_value(args.pop(), "end")
            start = function._validate_integer_value(args.pop(), "start")
            if end <= start:
                raise ValueError(
                    f"States.MathRandom: no number from {start} up to (excluding) {end}"
                )
            env.stack.append(random.Random(seed).randrange(start, end))

        return [(MathRandom, "_eval_body", _eval_body)]
