"""A client canary that counts outages: it keeps reading AWSCURRENT and logging in with it, and
records each stretch of failed logins (what a single-user client lives through)."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from rotator.dbservers import DatabaseServer


@dataclass
class Outage:
    started: float
    ended: float | None = None

    @property
    def seconds(self) -> float:
        return (self.ended or time.monotonic()) - self.started


@dataclass
class OutageCanary:
    """``with OutageCanary(rt, arn, server) as canary:`` ... ``canary.outages``."""

    rt: Any
    arn: str
    server: DatabaseServer
    interval: float = 0.02
    logins: int = 0
    failures: int = 0
    outages: list[Outage] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="outage-canary", daemon=True)

    def __enter__(self) -> OutageCanary:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        sm = self.rt.client("secretsmanager")
        while not self._stop.is_set():
            try:
                current = json.loads(sm.get_secret_value(SecretId=self.arn)["SecretString"])
                ok = self.server.can_login(current["username"], current["password"])
            except Exception:
                ok = False
            self.logins += 1
            now = time.monotonic()
            if not ok:
                self.failures += 1
                if not self.outages or self.outages[-1].ended is not None:
                    self.outages.append(Outage(now))
            elif self.outages and self.outages[-1].ended is None:
                self.outages[-1].ended = now
            self._stop.wait(self.interval)

    def report(self) -> str:
        longest = max((o.seconds for o in self.outages), default=0.0)
        return (
            f"{len(self.outages)} client outages, {self.failures}/{self.logins} failed logins, "
            f"longest {longest:.2f} s"
        )
