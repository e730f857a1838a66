"""How a worker connects: the TLS policy and the time it has left, given to every adapter.

Timeouts come from the Lambda's remaining time (issue 8): connect, statement and lock timeouts
are set so that the work ends before the function is killed, leaving a margin to report the
error. A worker killed by its timeout reports nothing useful; one that hits its own statement
timeout reports which server was slow.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from rotation_core.tls import TlsSettings

#: seconds kept back from the Lambda's remaining time to classify and report an error
MARGIN_SECONDS = 2.0
#: no single connection attempt waits longer than this, however much time is left
MAX_CONNECT_SECONDS = 10
#: used outside Lambda (tests, tools) when no deadline is given
DEFAULT_BUDGET_SECONDS = 60.0


def _default_remaining() -> Callable[[], float]:
    deadline = time.monotonic() + DEFAULT_BUDGET_SECONDS
    return lambda: deadline - time.monotonic()


@dataclass(frozen=True)
class ConnectionPolicy:
    tls: TlsSettings = field(default_factory=TlsSettings)
    #: seconds the invocation has left (Lambda's get_remaining_time_in_millis / 1000)
    remaining: Callable[[], float] = field(default_factory=_default_remaining)
    #: PostgreSQL: accept only SCRAM (and channel binding over TLS); else refuse only
    #: cleartext password and no authentication at all
    scram_only: bool = False

    def budget(self) -> float:
        """Seconds usable for work from now (at least one)."""
        return max(1.0, self.remaining() - MARGIN_SECONDS)

    def connect_timeout(self) -> int:
        return int(max(1, min(MAX_CONNECT_SECONDS, self.budget())))

    def statement_timeout_ms(self) -> int:
        return int(self.budget() * 1000)
