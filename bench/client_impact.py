"""Client impact: what an application sees while its secret is rotated, for every strategy and
engine.

A canary thread keeps doing what an application does (get the credentials, log in, one
operation, disconnect) while the main thread runs N rotations through ``RotateSecret``. The
login per engine: PostgreSQL and MariaDB ``SELECT 1`` over TLS; Redis ``PING`` on a new TLS
connection (``AUTH`` with the secret's user and password); IAM ``sts:GetCallerIdentity``
signed with the secret's access key on the local runtime. Multi-credential secrets retire the
superseded credential ``RetireAfterSeconds`` (3 s locally) after a rotation: each rotation
waits until the old credential is refused, so that its span includes the retirement (where a
client that kept the old one starts failing). Alternating-users changes the password of the
user that was AWSPREVIOUS, so a cached credential fails from the second rotation on.
Kinds of application, one after the other, on the same secret and server:

- ``reread``: ``GetSecretValue`` (AWSCURRENT) before every login, nothing else: the issue's
  canary. Its failed logins are the rotation's own outage window;
- ``caching``: AWS's ``aws-secretsmanager-caching`` ``SecretCache`` as applications use it:
  it keeps serving the cached password after the rotation, so logins fail until its refresh
  interval (an hour by default) ends;
- ``client``: this repository's client library (``clients/python``): the same cache, plus a
  refresh and retry on an authentication failure within a budget;
- ``client+pending``: the same with ``try_pending=True`` (it also tries AWSPENDING during the
  set→finish window of a single-user rotation; single-user only).

The client library runs each login through ``RotatingSecret.run`` (for Redis and IAM that is
its generic ``connect_with`` path, the login function being the application's own).

Reported per strategy/engine and application: operations, failed operations (what the
application got as an error), raw authentication failures (logins the server refused,
retried or not), the outage window per rotation (first to last failed operation inside
that rotation; 0 when none failed), p50/p95/max, and the slowest operation (how long a call
that the client library retried kept the application waiting).
"""

from __future__ import annotations

import json
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

#: every kind of application, in the order they run
MODES = ("reread", "caching", "client", "client+pending")
#: the kinds of application per strategy (AWSPENDING is only ever tried for single-user)
STRATEGY_MODES = {
    "single-user": MODES,
    "alternating-users": ("reread", "caching", "client"),
    "multi-credential": ("reread", "caching", "client"),
}
#: pause between two operations of the canary (a busy application, without spinning); STS on
#: moto answers in a millisecond, so the IAM canary is paced as the client library's test does
PAUSE = {"iam": 0.03}
DEFAULT_PAUSE = 0.005
#: how long a multi-credential rotation may take to retire the superseded credential
RETIRE_TIMEOUT = 20.0
#: the rotation's effect on clients ends a little after RotateSecret's last step
SETTLE = 0.3


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


class Logins:
    """How an application of each engine logs in with a :class:`Credentials` (no retry)."""

    def __init__(self, engine: str, rt: Any, ca_file: str) -> None:
        rc = _client_library()
        self.engine = engine
        self.rt = rt
        self._tls = rc.TlsSettings(ca_file=ca_file)
        self._ca_file = ca_file
        self._sts: dict[str, Any] = {}
        self._lock = threading.Lock()
        if engine == "mariadb":
            import pymysql
            from rotation_client.mysql import connection_params

            self._driver_connect: Any = pymysql.connect
            self._params: Any = connection_params
        elif engine == "postgres":
            import psycopg2
            from rotation_client.postgres import connection_params

            self._driver_connect = psycopg2.connect
            self._params = connection_params

    def __call__(self, creds: Any) -> None:
        if self.engine == "redis":
            self._redis(creds)
        elif self.engine == "iam":
            self._iam(creds)
        else:
            conn = self._driver_connect(**self._params(creds, self._tls, {}))
            try:
                with conn.cursor() as cur:
                    cur.execute("SELECT 1")
                    cur.fetchone()
            finally:
                conn.close()

    def _redis(self, creds: Any) -> None:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        client = redis.Redis(
            host=creds.host,
            port=creds.port,
            username=creds.username,
            password=creds.password,
            ssl=True,
            ssl_cert_reqs="required",
            ssl_check_hostname=True,
            ssl_ca_certs=self._ca_file,
            socket_connect_timeout=5,
            socket_timeout=5,
            # a refused password is not retried with the same password
            retry=Retry(NoBackoff(), 0),
        )
        try:
            client.ping()
        finally:
            client.close()

    def _iam(self, creds: Any) -> None:
        import boto3

        with self._lock:  # one client per key; boto3 sessions are not for sharing between threads
            client = self._sts.get(creds.access_key_id)
            if client is None:
                client = boto3.session.Session().client(
                    "sts",
                    region_name=self.rt.region,
                    aws_access_key_id=creds.access_key_id,
                    aws_secret_access_key=creds.secret_access_key,
                )
                self._sts[creds.access_key_id] = client
        client.get_caller_identity()


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
        self._login = Logins(self.secret.engine, self.rt, self.ca_file)
        self._sm = self.rt.client("secretsmanager")
        self.pause = PAUSE.get(self.secret.engine, DEFAULT_PAUSE)
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

    def operation(self) -> bool:
        rc = self.rc
        if self.rotating is not None:
            try:
                self.rotating.run(self._login)
                return True
            except Exception:
                return False
        try:
            if self.mode == "caching":
                text = self._cache.get_secret_string(self.secret.arn)
            else:
                text = self._sm.get_secret_value(SecretId=self.secret.arn)["SecretString"]
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
            self.stop.wait(self.pause)

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


def _current(rt: Any, arn: str) -> dict[str, Any]:
    text = rt.client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"]
    value: dict[str, Any] = json.loads(text)
    return value


def _refused(secret: BenchSecret, rt: Any, old: dict[str, Any]) -> bool:
    """Whether the credential ``old`` no longer logs in (retired)."""
    if secret.engine == "iam":
        from rotator.checks import access_key_works

        return not access_key_works(old, rt.region)
    return not bool(secret.server.can_login(old["username"], old["password"]))


def _wait_retired(secret: BenchSecret, rt: Any, old: dict[str, Any]) -> float | None:
    """Multi-credential: wait until the superseded credential is refused; when (or None)."""
    if secret.strategy != "multi-credential":
        return None
    deadline = time.perf_counter() + RETIRE_TIMEOUT
    while time.perf_counter() < deadline:
        if _refused(secret, rt, old):
            return time.perf_counter()
        time.sleep(0.1)
    return None


def measure(
    rt: Any, servers: Servers, strategy: str, engine: str, mode: str, rotations: int
) -> dict[str, Any]:
    secret = make_secret(rt, servers, strategy, engine)
    canary = Canary(mode, secret, rt, servers.ca_file)
    # a first rotation: handlers and connections warm (and its old credential retired)
    old = _current(rt, secret.arn)
    assert rt.rotate(secret.arn).succeeded
    _wait_retired(secret, rt, old)
    thread = threading.Thread(target=canary.run, name=f"canary-{mode}", daemon=True)
    spans: list[tuple[float, float]] = []
    calls: list[tuple[float, float, float | None]] = []  # RotateSecret begin/end, retired at
    failures = 0
    thread.start()
    try:
        time.sleep(0.2)
        for _ in range(rotations):
            old = _current(rt, secret.arn)
            begin = time.perf_counter()
            outcome = rt.rotate(secret.arn)
            ended = time.perf_counter()
            retired = _wait_retired(secret, rt, old) if outcome.succeeded else None
            time.sleep(SETTLE)
            spans.append((begin, time.perf_counter()))
            calls.append((begin, ended, retired))
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
        "timeline": _timeline(ops, spans, calls),
    }


def _timeline(
    ops: list[Op], spans: list[tuple[float, float]], calls: list[tuple[float, float, float | None]]
) -> dict[str, Any]:
    """The operations around one rotation (the middle one), in ms from its RotateSecret call."""
    if not spans:
        return {}
    middle = len(spans) // 2
    begin, end = spans[middle]
    _, ended, retired = calls[middle]
    window = [o for o in ops if begin - 0.5 <= o.at <= end + 0.2]
    return {
        "rotate_secret_ms": round((ended - begin) * 1000.0, 1),
        "retired_ms": round((retired - begin) * 1000.0, 1) if retired else None,
        "span_ms": round((end - begin) * 1000.0, 1),
        "ops": [
            [round((o.at - begin) * 1000.0, 1), int(o.ok), round(o.took * 1000.0, 1)]
            for o in window
        ],
    }


def run(
    rt: Any,
    servers: Servers,
    combos: list[tuple[str, str]],
    rotations: int,
    out: Output,
    quick: bool = False,
) -> dict[str, Any]:
    chosen = [(s, e) for s, e in combos if s in STRATEGY_MODES]
    if not chosen:
        say("\n== Client impact: no strategy/engine chosen ==")
        return {}
    say(f"\n== Client impact: a canary logging in during {rotations} rotations, per client ==")
    results: dict[str, dict[str, Any]] = {}
    for strategy, engine in chosen:
        name = combo_name(strategy, engine)
        results[name] = {}
        for mode in STRATEGY_MODES[strategy]:
            result = measure(rt, servers, strategy, engine, mode, rotations)
            results[name][mode] = result
            say(
                f"  {name:28} {mode:15} ops {result['operations']:5}  failed "
                f"{result['failed_operations']:4} ({result['failed_percent']}%)  raw auth "
                f"{result['raw_auth_failures']:4}  outage p50 "
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
    library = {
        f"{name} {mode}": r["failed_operations"]
        for name, modes in results.items()
        for mode, r in modes.items()
        if mode.startswith("client")
    }
    missed = {k: v for k, v in library.items() if v}
    say(
        "\nTarget: failed operations with the client library = 0 for every strategy and engine: "
        + ("met" if not missed else f"MISSED ({missed})")
    )
    document = {"rotations": rotations, "modes": list(MODES), "results": results}
    out.write("client_impact", document)
    _plot(results, out)
    return document


def _plot(results: dict[str, dict[str, Any]], out: Output) -> None:
    """Per strategy/engine: each client's operations around one rotation (green: succeeded,
    red: failed), RotateSecret's span shaded, the retirement of the old credential marked."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        say("  (matplotlib is not installed: no timeline plot; `make bench` installs it)")
        return
    for name, modes in results.items():
        fig, axes = plt.subplots(len(modes), 1, figsize=(10, 1.3 + 1.1 * len(modes)), sharex=True)
        axes = list(axes) if len(modes) > 1 else [axes]
        for ax, (mode, r) in zip(axes, modes.items(), strict=True):
            timeline = r.get("timeline") or {}
            ops = timeline.get("ops", [])
            ok = [o[0] for o in ops if o[1]]
            bad = [o[0] for o in ops if not o[1]]
            ax.axvspan(0, timeline.get("rotate_secret_ms", 0), color="#dddddd", zorder=0)
            if timeline.get("retired_ms"):
                ax.axvline(timeline["retired_ms"], color="#555555", linestyle="--", linewidth=1)
            ax.scatter(ok, [1] * len(ok), marker="|", color="#2a9d2a", s=120, label="succeeded")
            ax.scatter(bad, [0] * len(bad), marker="|", color="#d62728", s=120, label="failed")
            ax.set_yticks([0, 1])
            ax.set_yticklabels(["failed", "ok"], fontsize=7)
            ax.set_ylim(-0.6, 1.6)
            ax.set_title(
                f"{mode}: {r['failed_operations']} failed of {r['operations']} in "
                f"{r['rotations']} rotations",
                fontsize=8,
                loc="left",
            )
        axes[-1].set_xlabel(
            "ms from the RotateSecret call (grey: RotateSecret; dashed: old credential retired)"
        )
        fig.suptitle(f"Client operations around one rotation: {name}", fontsize=10)
        fig.tight_layout()
        fig.savefig(out.png(f"client_timeline_{name.replace('/', '_')}"), dpi=100)
        plt.close(fig)
