"""How long and how often an operation is retried after an authentication failure.

Capped exponential backoff with full jitter: the n-th wait (n = 0, 1, ...) is drawn uniformly
from ``[0, min(max_delay, first_delay * multiplier**n))``, and never runs past the budget. Full
jitter spreads a fleet of clients that all failed at the same moment (a rotation's setSecret) so
they do not hit Secrets Manager and the database in waves
(https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

Clock = Callable[[], float]
Sleep = Callable[[float], None]
Random = Callable[[], float]


@dataclass(frozen=True)
class RetryPolicy:
    """Parameters
    ----------
    budget:
        seconds a call may keep retrying, counted from its first authentication failure. The
        operation's own time counts. 0 means: refresh and retry at once, never wait. For a
        single-user secret without ``try_pending``, make it longer than the rotation's
        setSecret-to-finishSecret window (the rotation stack's ``GraceBudgetSeconds`` bounds it).
    first_delay, max_delay, multiplier:
        the backoff before the n-th retry round is at most
        ``min(max_delay, first_delay * multiplier**n)`` seconds (full jitter below that).
    max_attempts:
        optional cap on attempts per call (the first one included); ``None``: the budget alone.
    """

    budget: float = 30.0
    first_delay: float = 0.05
    max_delay: float = 2.0
    multiplier: float = 2.0
    max_attempts: int | None = None

    def __post_init__(self) -> None:
        for name in ("budget", "first_delay", "max_delay", "multiplier"):
            value = getattr(self, name)
            if (
                not isinstance(value, (int, float))
                or isinstance(value, bool)
                or not math.isfinite(value)
            ):
                raise ValueError(f"RetryPolicy.{name} must be a finite number")
        if self.budget < 0:
            raise ValueError("RetryPolicy.budget must be >= 0 seconds")
        if self.first_delay <= 0 or self.max_delay <= 0:
            raise ValueError("RetryPolicy.first_delay and max_delay must be > 0 seconds")
        if self.multiplier < 1:
            raise ValueError("RetryPolicy.multiplier must be >= 1")
        if self.max_attempts is not None and self.max_attempts < 1:
            raise ValueError("RetryPolicy.max_attempts must be >= 1 (or None)")

    def ceiling(self, n: int) -> float:
        """The largest wait before retry round ``n`` (0-based)."""
        # min() first, so a large n cannot overflow
        exponent = min(n, 1024)
        try:
            grown = self.first_delay * self.multiplier**exponent
        except OverflowError:
            grown = math.inf
        return min(self.max_delay, grown)


@dataclass
class Timing:
    """The clock, sleep and randomness a retry loop uses (tests inject fakes; nothing sleeps)."""

    clock: Clock = time.monotonic
    sleep: Sleep = time.sleep
    random: Random = field(default=random.random)


class Backoff:
    """One call's retry schedule: call :meth:`next_wait` after each failed round."""

    def __init__(self, policy: RetryPolicy, timing: Timing) -> None:
        self.policy = policy
        self.timing = timing
        self.deadline = timing.clock() + policy.budget
        self.rounds = 0

    def remaining(self) -> float:
        return self.deadline - self.timing.clock()

    def next_wait(self) -> float | None:
        """Seconds to wait before the next round, or None when the budget is spent."""
        remaining = self.remaining()
        if remaining <= 0:
            return None
        wait = self.timing.random() * self.policy.ceiling(self.rounds)
        self.rounds += 1
        return min(wait, remaining)
