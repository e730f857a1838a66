"""Client impact: what an application sees while its single-user secret is rotated.

A canary thread keeps doing what an application does (get the credentials, log in over TLS,
``SELECT 1``, disconnect) while the main thread runs N rotations through ``RotateSecret``.
Four kinds of application, one after the other, on the same secret and server:

- ``reread``: ``GetSecretValue`` (AWSCURRENT) before every login, nothing else: the issue's
  canary. Its failed logins are the rotation's own outage window;
- ``caching``: AWS's ``aws-secretsmanager-caching`` ``SecretCache`` as applications use it:
  it keeps serving the cached password after the rotation, so logins fail until its refresh
  interval (an hour by default) ends;
- ``client``: this repository's client library (``clients/python``): the same cache, plus a
  refresh and retry on an authentication failure within a budget;
- ``client+pending``: the same with ``try_pending=True`` (it also tries AWSPENDING during the
  set→finish window of a single-user rotation).

Reported per strategy/engine and application: operations, failed operations (what the
application got as an error), raw authentication failures (logins the server refused,
retried or not), the outage window per rotation (first to last failed operation inside
that rotation; 0 when none failed), p50/p95/max, and the slowest operation (how long a call
that the client library retried kept the application waiting).
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from bench.harness import (
    ROOT,
    BenchSecret,
    Output,
    Servers,
    combo_name,
    make_secret,
    percentile,
    say,
    table,
)

MODES = ("reread", "caching", "client", "client+pending")
#: the strategies whose clients this benchmark watches (single-user is the one with an outage)
STRATEGIES = ("single-user",)
ENGINES = ("mariadb", "postgres")
#: pause between two operations of the canary (a busy application, without spinning)
PAUSE = 0.005


def _client_library() -> Any:
    """``rotation_client`` from ``clients/python/src`` (installed or not)."""
    try:
        import rotation_client
    except ImportError:
        sys.path.insert(0, str(ROOT / "clients" / "python" / "src"))
        import rotation_client
    return rotation_client


@dataclass
class Op:
    at: float
    ok: bool
    took: float  # seconds the application waited for this operation (retries included)


@dataclass
class Canary:
    """One application's operations while rotations run."""

    mode: str
    secret: BenchSecret
    rt: Any
    ca_file: str
    ops: list[Op] = field(default_factory=list)
    raw_auth_failures: int = 0
    stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        rc = _client_library()
        self.rc = rc
        engine = self.secret.engine
        self._driver_connect: Any
        if engine == "mariadb":
            import pymysql
            from rotation_client.mysql import connection_params

            self._driver_connect = pymysql.connect
        else:
            import psycopg2
            from rotation_client.postgres import connection_params

            self._driver_connect = psycopg2.connect
        self._params = connection_params
        self._tls = rc.TlsSettings(ca_file=self.ca_file)
        self._sm = self.rt.client("secretsmanager")
        self.rotating = None
        if self.mode == "caching":
            from aws_secretsmanager_caching import SecretCache

            self._cache = SecretCache(client=self._sm)
        elif self.mode.startswith("client"):
            source = rc.CachedSecretSource(self._sm)
            self.rotating = rc.RotatingSecret(
                self.secret.arn,
                source,
                try_pending=self.mode == "client+pending",
                policy=rc.RetryPolicy(budget=30.0),
            )

    def _login(self, creds: Any) -> None:
        conn = self._driver_connect(**self._params(creds, self._tls, {}))
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT 1")
                cur.fetchone()
        finally:
            conn.close()

    def operation(self) -> bool:
        rc = self.rc
        if self.rotating is not None:
            try:
                self.rotating.run(self._login)
                return True
            except Exception:
                return False
        if self.mode == "caching":
            text = self._cache.get_secret_string(self.secret.arn)
        else:
            text = self._sm.get_secret_value(SecretId=self.secret.arn)["SecretString"]
        try:
            self._login(rc.Credentials.from_secret_string(text))
            return True
        except Exception as exc:
            if rc.is_authentication_failure(exc):
                self.raw_auth_failures += 1
            return False

    def run(self) -> None:
        while not self.stop.is_set():
            began = time.perf_counter()
            ok = self.operation()
            self.ops.append(Op(began, ok, time.perf_counter() - began))
            self.stop.wait(PAUSE)

    def raw_failures(self) -> int:
        if self.rotating is not None:
            return int(self.rotating.stats.auth_failures)
        return self.raw_auth_failures


def _windows(ops: list[Op], spans: list[tuple[float, float]]) -> list[float]:
    """Per rotation: seconds from its first failed operation to its last (0 if none)."""
    windows = []
    for begin, end in spans:
        failed = [o.at for o in ops if not o.ok and begin <= o.at <= end]
        windows.append(max(failed) - min(failed) if failed else 0.0)
    return windows


def measure(
    rt: Any, servers: Servers, strategy: str, engine: str, mode: str, rotations: int
) -> dict[str, Any]:
    secret = make_secret(rt, servers, strategy, engine)
    canary = Canary(mode, secret, rt, servers.ca_file)
    assert rt.rotate(secret.arn).succeeded  # a first rotation: handlers and connections warm
    thread = threading.Thread(target=canary.run, name=f"canary-{mode}", daemon=True)
    spans: list[tuple[float, float]] = []
    failures = 0
    thread.start()
    try:
        time.sleep(0.2)
        for _ in range(rotations):
            begin = time.perf_counter()
            outcome = rt.rotate(secret.arn)
            # the rotation's effect on clients ends a little after RotateSecret's last step
            time.sleep(0.3)
            spans.append((begin, time.perf_counter()))
            failures += 0 if outcome.succeeded else 1
    finally:
        canary.stop.set()
        thread.join(30)
    ops = canary.ops
    during = [o for o in ops if spans and spans[0][0] <= o.at <= spans[-1][1]]
    failed = sum(1 for o in during if not o.ok)
    windows = [w * 1000.0 for w in _windows(ops, spans)]
    return {
        "operations": len(during),
        "failed_operations": failed,
        "failed_percent": round(100.0 * failed / len(during), 1) if during else float("nan"),
        "raw_auth_failures": canary.raw_failures(),
        "slowest_operation_ms": round(max((o.took for o in during), default=0.0) * 1000.0, 1),
        "outage_ms": {
            "p50": round(percentile(windows, 0.5), 1),
            "p95": round(percentile(windows, 0.95), 1),
            "max": round(max(windows), 1) if windows else float("nan"),
        },
        "rotations": rotations,
        "rotation_failures": failures,
    }


def run(
    rt: Any,
    servers: Servers,
    combos: list[tuple[str, str]],
    rotations: int,
    out: Output,
    quick: bool = False,
) -> dict[str, Any]:
    chosen = [(s, e) for s, e in combos if s in STRATEGIES and e in ENGINES]
    if not chosen:
        say("\n== Client impact: no single-user MariaDB or PostgreSQL combination chosen ==")
        return {}
    say(f"\n== Client impact: a canary logging in during {rotations} rotations, per client ==")
    results: dict[str, dict[str, Any]] = {}
    for strategy, engine in chosen:
        name = combo_name(strategy, engine)
        results[name] = {}
        for mode in MODES:
            result = measure(rt, servers, strategy, engine, mode, rotations)
            results[name][mode] = result
            say(
                f"  {name:24} {mode:15} ops {result['operations']:5}  failed "
                f"{result['failed_operations']:4} ({result['failed_percent']}%)  outage p50 "
                f"{result['outage_ms']['p50']:.0f} ms max {result['outage_ms']['max']:.0f} ms"
            )
    say()
    say(
        table(
            [
                "strategy/engine",
                "client",
                "operations",
                "failed",
                "failed %",
                "raw auth failures",
                "outage p50 ms",
                "p95",
                "max",
                "slowest op ms",
            ],
            [
                [
                    name,
                    mode,
                    r["operations"],
                    r["failed_operations"],
                    r["failed_percent"],
                    r["raw_auth_failures"],
                    r["outage_ms"]["p50"],
                    r["outage_ms"]["p95"],
                    r["outage_ms"]["max"],
                    r["slowest_operation_ms"],
                ]
                for name, modes in results.items()
                for mode, r in modes.items()
            ],
            title="What the application saw (failed = errors the application got; outage = "
            "first to last failed operation per rotation)",
        )
    )
    document = {"rotations": rotations, "modes": list(MODES), "results": results}
    out.write("client_impact", document)
    return document
