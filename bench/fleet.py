"""Fleet: many secrets rotated at once, on this machine and, by simulation, under AWS's quotas.

1. **Served fleet.** ``rotator local serve`` in a subprocess (as a user starts it, trusting the
   benchmark CA), driven by plain boto3: N single-user secrets (PostgreSQL and MariaDB, half
   each) are rotated with at most C rotations in flight. Per rotation: from ``RotateSecret`` to
   its version holding AWSCURRENT alone (``DescribeSecret`` polled every 0.1 s, as a
   deployment script would; RotateSecret is asynchronous, as on AWS). Reported for N = 10 and
   100 (``--quick``: 10): rotations per minute, p50/p95 per rotation, successes.

2. **API calls per rotation.** One rotation of each strategy/engine on the in-process stack,
   with every AWS call the functions and state machines make as the IAM checker recorded it
   (``rt.iam_calls()``), split by step (between the router's invocations), and the state
   transitions (``StateEntered`` events) of the step's executions.

3. **10,000 secrets whose rotation windows coincide**, simulated (events in time order, one
   token bucket per quota, seeded) with the calls counted in 2 and AWS's documented default
   quotas (:data:`QUOTAS`, each with its page). What the model does when throttled is what the
   code does: the router's ``DescribeExecution`` poll waits ``PollSchedule.cap`` (2 s) and asks
   again (``rotation_core.router.Router._wait``); any other throttled call is retried by the SDK
   (standard mode, 4 attempts, ``rotation_core.handlers._client``) and then fails the step; a
   worker that Lambda refuses (``Lambda.TooManyRequestsException``) is retried by the state
   machine (``RetryIntervalSeconds`` 2, backoff 2, ``RetryMaxAttempts`` 4, at most 30 s); a
   step still running when the router must return (``RouterTimeoutSeconds`` 300 - 5) fails
   with ``RotationInProgressError``. A failed step (or a refused router invocation) is retried
   by Secrets Manager with the same token and resumes at that step; AWS does not document when,
   so the model waits :data:`SM_RETRY_SECONDS`. Step durations on AWS are assumptions
   (:data:`AWS_TIMING`), not measurements.
"""

from __future__ import annotations

import contextlib
import heapq
import json
import os
import random
import secrets as secrets_module
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.harness import (
    ROOT,
    STEPS,
    Output,
    Servers,
    combo_name,
    make_secret,
    percentile,
    say,
    summary_ms,
    table,
)

# --- AWS's quotas ------------------------------------------------------------------------------

SM_QUOTAS = "https://docs.aws.amazon.com/secretsmanager/latest/userguide/reference_limits.html"
SM_READS_2025 = (
    "https://aws.amazon.com/about-aws/whats-new/2025/03/"
    "aws-secrets-manager-increases-api-requests-seconds/"
)
SFN_QUOTAS = "https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html"
LAMBDA_QUOTAS = "https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html"


@dataclass(frozen=True)
class Quota:
    name: str
    bucket: float  # burst (tokens); for Lambda concurrency: the number of slots
    refill: float  # tokens per second (0 for concurrency)
    source: str
    confirmed: str  # what the search of AWS's pages showed, or why it could not be confirmed


#: Default quotas, us-east-1 (the large Regions). Rates without a documented burst get a bucket
#: of one second's refill.
QUOTAS: dict[str, Quota] = {
    "sm_write": Quota(
        "Secrets Manager PutSecretValue + UpdateSecretVersionStage (+ UpdateSecret, replication "
        "calls), combined",
        50,
        50,
        SM_QUOTAS,
        "confirmed: 'Each supported Region: 50 per second', not adjustable; burst not documented",
    ),
    "sm_rotate": Quota(
        "Secrets Manager RotateSecret + CancelRotateSecret, combined",
        50,
        50,
        SM_QUOTAS,
        "confirmed: 50 per second, not adjustable (applies to RotateSecret called by a client, "
        "not to scheduled rotations)",
    ),
    "sm_get": Quota(
        "Secrets Manager GetSecretValue",
        10_000,
        10_000,
        SM_READS_2025,
        "confirmed (What's New, March 2025): 10,000 per second",
    ),
    "sm_describe": Quota(
        "Secrets Manager DescribeSecret (and the other read calls the functions make)",
        40_000,
        40_000,
        SM_READS_2025,
        "confirmed (What's New, March 2025): 40,000 per second; the other reads "
        "(ListSecretVersionIds) have lower, unconfirmed quotas and are counted here",
    ),
    "sfn_start": Quota(
        "Step Functions StartExecution",
        1_300,
        300,
        SFN_QUOTAS,
        "NOT confirmed by the search (the excerpts stop before the API-throttling table): "
        "1,300 burst / 300 per second as the page gave it (800 / 150 in smaller Regions)",
    ),
    "sfn_describe": Quota(
        "Step Functions DescribeExecution",
        300,
        15,
        SFN_QUOTAS,
        "as cited in rotation_core/router.py (PollSchedule); the table's numbers were not in "
        "the excerpts the search returned (250 / 10 in smaller Regions)",
    ),
    "sfn_transitions": Quota(
        "Step Functions state transitions (Standard)",
        5_000,
        5_000,
        SFN_QUOTAS,
        "NOT confirmed by the search: 5,000 burst / 5,000 per second as the page gave it "
        "(800 / 800 in smaller Regions); the page says new accounts start lower",
    ),
    "lambda_concurrency": Quota(
        "Lambda concurrent executions (account, Region)",
        1_000,
        0,
        LAMBDA_QUOTAS,
        "confirmed: 1,000 by default ('new AWS accounts have reduced concurrency')",
    ),
}

#: which bucket each recorded operation draws from (None: recorded, not modelled)
OPERATION_BUCKET = {
    "secretsmanager:PutSecretValue": "sm_write",
    "secretsmanager:UpdateSecretVersionStage": "sm_write",
    "secretsmanager:UpdateSecret": "sm_write",
    "secretsmanager:GetSecretValue": "sm_get",
    "secretsmanager:DescribeSecret": "sm_describe",
    "secretsmanager:ListSecretVersionIds": "sm_describe",
    "states:StartExecution": "sfn_start",
    "states:DescribeExecution": "sfn_describe",
}

#: Assumed AWS timings (seconds): a warm worker invocation (Lambda round trip plus a database
#: login over TLS and its statements), Step Functions' own cost per state transition, and the
#: IAM key test's wait for a new key to propagate (IamPropagationWaitSeconds is the budget;
#: STS usually accepts a new key within seconds).
AWS_TIMING = {"worker": 0.3, "transition": 0.03, "router_call": 0.02, "iam_propagation": 5.0}
#: Secrets Manager's retry of a failed rotation step (not documented; an assumption)
SM_RETRY_SECONDS = 60.0
ROUTER_WAIT_LIMIT = 300.0 - 5.0
SDK_ATTEMPTS = 4
ASL_RETRY = (2.0, 2.0, 4, 30.0)  # interval, backoff, max attempts, max delay
POLL_FIRST, POLL_GROWTH, POLL_CAP = 0.1, 0.25, 2.0


# --- 1. the served fleet -----------------------------------------------------------------------


@dataclass
class Served:
    ready: dict[str, Any]
    process: subprocess.Popen[str]

    def client(self, service: str) -> Any:
        import boto3

        return boto3.session.Session().client(
            service,  # type: ignore[call-overload]
            endpoint_url=self.ready["endpoint_url"],
            region_name=self.ready["region"],
            aws_access_key_id=self.ready["aws_access_key_id"],
            aws_secret_access_key=self.ready["aws_secret_access_key"],
        )


@contextlib.contextmanager
def serve(servers: Servers, log_path: Path) -> Iterator[Served]:
    """``rotator local serve --json`` trusting the benchmark CA; stopped with SIGTERM."""
    settings = servers.stack_settings()
    command = [sys.executable, "-m", "rotator.cli", "local", "serve", "--json"]
    for key, value in settings["parameter_overrides"].items():
        command += ["--parameter", f"{key}={value}"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **settings["function_environment"]}
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=log, text=True, env=env, cwd=ROOT
        )
        try:
            line = process.stdout.readline() if process.stdout else ""
            if not line:
                raise RuntimeError(f"rotator local serve exited early; see {log_path}")
            yield Served(json.loads(line), process)
        finally:
            process.terminate()
            process.wait(timeout=60)


def _fleet_secrets(served: Served, servers: Servers, count: int) -> list[str]:
    sm = served.client("secretsmanager")
    engines = [e for e in ("postgres", "mariadb") if servers.available(e)]
    arns = []
    for i in range(count):
        server = servers.get(engines[i % len(engines)])
        username = f"fleet_{secrets_module.token_hex(4)}"
        password = f"Fleet-{secrets_module.token_urlsafe(18)}"
        server.create_login(username, password)
        value = {
            "engine": server.engine,
            "host": server.host,
            "port": server.port,
            "username": username,
            "password": password,
            "dbname": "app",
        }
        arns.append(
            sm.create_secret(Name=f"fleet/{username}", SecretString=json.dumps(value))["ARN"]
        )
    return arns


def _rotate_one(served: Served, arn: str, clients: threading.local) -> tuple[float, bool]:
    """RotateSecret, then wait until its version holds AWSCURRENT alone (or 120 s pass)."""
    if not hasattr(clients, "sm"):
        clients.sm = served.client("secretsmanager")
    sm = clients.sm
    began = time.perf_counter()
    token = sm.rotate_secret(SecretId=arn, RotationLambdaARN=served.ready["router_function_arn"])[
        "VersionId"
    ]
    deadline = began + 120.0
    while time.perf_counter() < deadline:
        stages = sm.describe_secret(SecretId=arn)["VersionIdsToStages"].get(token, [])
        if stages == ["AWSCURRENT"]:
            return time.perf_counter() - began, True
        time.sleep(0.1)
    return time.perf_counter() - began, False


def served_fleet(
    servers: Servers, sizes: list[int], concurrency: int, out: Output
) -> dict[str, Any]:
    say(f"\n== Fleet: secrets rotated against `rotator local serve`, {concurrency} in flight ==")
    results: dict[str, Any] = {}
    # serve's own log (its functions' JSON lines) stays out of the results
    log_path = Path(tempfile.gettempdir()) / "bench-fleet-serve.log"
    began = time.perf_counter()
    with serve(servers, log_path) as served:
        say(f"  serve ready in {time.perf_counter() - began:.1f} s")
        for size in sizes:
            arns = _fleet_secrets(served, servers, size)
            clients = threading.local()
            start = time.perf_counter()
            with ThreadPoolExecutor(max_workers=concurrency) as pool:
                outcomes = list(pool.map(_rotate_one, [served] * size, arns, [clients] * size))
            wall = time.perf_counter() - start
            durations = [d for d, ok in outcomes if ok]
            results[str(size)] = {
                "secrets": size,
                "concurrency": concurrency,
                "succeeded": len(durations),
                "wall_s": round(wall, 1),
                "rotations_per_minute": round(60.0 * len(durations) / wall, 1),
                "per_rotation_ms": summary_ms(durations),
            }
            r = results[str(size)]
            say(
                f"  {size:4} secrets: {r['succeeded']}/{size} rotated in {r['wall_s']} s, "
                f"{r['rotations_per_minute']}/min, per rotation p50 "
                f"{r['per_rotation_ms']['p50']:.0f} ms p95 {r['per_rotation_ms']['p95']:.0f} ms"
            )
    return results


# --- 2. API calls per rotation -----------------------------------------------------------------


@dataclass
class StepCalls:
    operations: Counter[str] = field(default_factory=Counter)
    transitions: int = 0
    workers: int = 0


def call_profile(rt: Any, servers: Servers, strategy: str, engine: str) -> dict[str, Any]:
    """One rotation's AWS calls per step (the IAM checker's records), its state transitions
    and worker invocations; the retirement that follows a multi-credential rotation apart."""
    secret = make_secret(rt, servers, strategy, engine)
    assert rt.rotate(secret.arn).succeeded  # warm
    time.sleep(4.0 if strategy == "multi-credential" else 0.2)  # its retirement
    router = str(rt.spec.functions["RouterFunction"].name)
    marks: list[int] = []

    def after(invocation: Any) -> None:
        if invocation.function == router:
            marks.append(len(rt.iam_calls()))

    executions_before = {e["executionArn"] for e in rt.executions()}
    start = len(rt.iam_calls())
    rt.host.after_invoke.append(after)
    try:
        assert rt.rotate(secret.arn).succeeded
        if strategy == "multi-credential":
            time.sleep(4.5)  # RetireAfterSeconds=3 locally, then the retirement execution
    finally:
        rt.host.after_invoke.remove(after)
    records = [_call_name(r) for r in rt.iam_calls()]
    bounds = [start, *marks[:4]]
    phases: dict[str, StepCalls] = {}
    for i, step in enumerate(STEPS):
        phase = phases[step] = StepCalls()
        for name in records[bounds[i] : bounds[i + 1]] if i + 1 < len(bounds) else []:
            if name:
                phase.operations[name] += 1
    after_finish = phases["after"] = StepCalls()
    for name in records[bounds[-1] :]:
        if name:
            after_finish.operations[name] += 1
    for execution in rt.executions():
        arn = execution["executionArn"]
        if arn in executions_before:
            continue
        events = rt.history(arn)
        entered = sum(1 for e in events if str(e.get("type", "")).endswith("StateEntered"))
        workers = sum(1 for e in events if e.get("type") == "LambdaFunctionScheduled")
        workers += sum(1 for e in events if e.get("type") == "TaskScheduled")
        name = execution.get("name", "")
        step = next((s for s in STEPS if s in name), "after")
        phases[step].transitions += entered
        phases[step].workers += workers
    return {
        step: {
            "operations": dict(sorted(p.operations.items())),
            "state_transitions": p.transitions,
            "worker_invocations": p.workers,
        }
        for step, p in phases.items()
    }


def _call_name(record: Any) -> str | None:
    """The API call a record stands for, as ``service:Operation`` (IAM's service prefix), or None
    for the further authorizations one call needs (a ``GetSecretValue`` on a secret encrypted
    with a customer managed key is also recorded as ``kms:Decrypt``): one call, one count."""
    service, _, operation = str(record.operation).partition(":")
    service = {"stepfunctions": "states"}.get(service, service)
    request = record.request
    if request is not None:
        action = str(request.action).partition(":")[2]
        if action != operation and (operation, action) != ("Invoke", "InvokeFunction"):
            return None
    return f"{service}:{operation}"


# --- 3. the simulation -------------------------------------------------------------------------


class Bucket:
    def __init__(self, quota: Quota) -> None:
        self.capacity, self.refill = quota.bucket, quota.refill
        self.tokens, self.at = quota.bucket, 0.0
        self.throttled = 0
        self.first_throttle: float | None = None

    def take(self, now: float, n: float = 1.0) -> bool:
        self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.refill)
        self.at = now
        if self.tokens >= n:
            self.tokens -= n
            return True
        self.throttled += 1
        if self.first_throttle is None:
            self.first_throttle = now
        return False

    def reserve(self, now: float, n: float) -> float:
        """Take ``n`` now, going into debt; the seconds until the debt is paid (Step Functions
        delays throttled state transitions, it does not fail them)."""
        self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.refill)
        self.at = now
        self.tokens -= n
        if self.tokens < 0:
            self.throttled += 1
            if self.first_throttle is None:
                self.first_throttle = now
            return -self.tokens / self.refill
        return 0.0


class Slots:
    def __init__(self, quota: Quota) -> None:
        self.free = int(quota.bucket)
        self.throttled = 0
        self.first_throttle: float | None = None
        self.peak = 0
        self.capacity = int(quota.bucket)

    def take(self, now: float) -> bool:
        if self.free > 0:
            self.free -= 1
            self.peak = max(self.peak, self.capacity - self.free)
            return True
        self.throttled += 1
        if self.first_throttle is None:
            self.first_throttle = now
        return False

    def give(self) -> None:
        self.free += 1


@dataclass
class StepPlan:
    calls_before: list[str]  # bucket names, in order, before StartExecution
    calls_after: list[str]  # after the execution ended (or, finishSecret: before it)
    awaited: bool
    transitions: int
    workers: int
    duration: float  # the execution's duration on AWS (assumed)


def plan_from_profile(profile: dict[str, Any], engine: str) -> list[StepPlan]:
    plans = []
    for step in STEPS:
        p = profile.get(step, {"operations": {}, "state_transitions": 0, "worker_invocations": 0})
        ops: Counter[str] = Counter(p["operations"])
        reads = [
            OPERATION_BUCKET[o]
            for o, n in ops.items()
            for _ in range(n)
            if OPERATION_BUCKET.get(o) in ("sm_get", "sm_describe")
        ]
        writes = ["sm_write"] * sum(
            n for o, n in ops.items() if OPERATION_BUCKET.get(o) == "sm_write"
        )
        workers = int(p["worker_invocations"])
        transitions = int(p["state_transitions"])
        duration = (
            workers * AWS_TIMING["worker"]
            + transitions * AWS_TIMING["transition"]
            + (AWS_TIMING["iam_propagation"] if engine == "iam" and step == "testSecret" else 0.0)
        )
        finish = step == "finishSecret"
        plans.append(
            StepPlan(
                calls_before=reads + (writes if finish else []),
                calls_after=[] if finish else writes,
                awaited=not finish,
                transitions=transitions,
                workers=workers,
                duration=max(duration, 0.05),
            )
        )
    return plans


def simulate(
    plans: list[StepPlan],
    secrets_count: int = 10_000,
    spread_seconds: float = 0.0,
    seed: int = 11,
) -> dict[str, Any]:
    """Every secret's rotation as events in time order against the quotas' buckets."""
    rng = random.Random(seed)
    buckets = {k: Bucket(q) for k, q in QUOTAS.items() if k != "lambda_concurrency"}
    lam = Slots(QUOTAS["lambda_concurrency"])
    events: list[tuple[float, int, str, int, Any]] = []
    seq = 0

    def at(t: float, kind: str, r: int, data: Any = None) -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(events, (t, seq, kind, r, data))

    step_of = [0] * secrets_count
    call_index = [0] * secrets_count
    attempts = [0] * secrets_count
    router_began = [0.0] * secrets_count
    exec_end: list[float | None] = [None] * secrets_count
    exec_started = [0.0] * secrets_count
    done_at: list[float | None] = [None] * secrets_count
    step_failures = Counter[str]()
    polls = Counter[str]()
    for r in range(secrets_count):
        at(rng.uniform(0, spread_seconds) if spread_seconds else 0.0, "invoke", r)

    def fail_step(t: float, r: int, why: str, holds_router: bool = True) -> None:
        step_failures[why] += 1
        if holds_router:
            lam.give()
        at(t + SM_RETRY_SECONDS, "invoke", r, "retry")

    processed = 0
    while events:
        t, _, kind, r, data = heapq.heappop(events)
        processed += 1
        plan = plans[step_of[r]]
        if kind == "invoke":  # Secrets Manager invokes the router for this step
            if not lam.take(t):
                step_failures["router invocation throttled (Lambda concurrency)"] += 1
                at(t + SM_RETRY_SECONDS, "invoke", r, "retry")
                continue
            router_began[r] = t
            call_index[r], attempts[r] = 0, 0
            # a retry of a step whose execution still runs attaches to it (no new start)
            attach = data == "retry" and exec_end[r] is not None and plan.awaited
            at(t + AWS_TIMING["router_call"], "poll" if attach else "call", r, "before")
        elif kind == "call":  # the next SDK call of the router, before or after the execution
            calls = plan.calls_before if data == "before" else plan.calls_after
            if call_index[r] < len(calls):
                if buckets[calls[call_index[r]]].take(t):
                    call_index[r] += 1
                    attempts[r] = 0
                    at(t + AWS_TIMING["router_call"], "call", r, data)
                else:
                    attempts[r] += 1
                    if attempts[r] >= SDK_ATTEMPTS:
                        fail_step(t, r, f"{QUOTAS[calls[call_index[r]]].name}: SDK retries spent")
                    else:  # standard mode: full jitter, base 1 s doubling, at most 20 s
                        at(t + rng.uniform(0, min(20.0, 2.0 ** attempts[r])), "call", r, data)
                continue
            if data == "before":
                at(t, "start", r)
            else:
                at(t, "step_done", r)
        elif kind == "start":
            if not buckets["sfn_start"].take(t):
                attempts[r] += 1
                if attempts[r] >= SDK_ATTEMPTS:
                    fail_step(t, r, "StartExecution: SDK retries spent")
                else:
                    at(t + rng.uniform(0, min(20.0, 2.0 ** attempts[r])), "start", r)
                continue
            attempts[r] = 0
            exec_started[r] = t
            exec_end[r] = None
            delay = buckets["sfn_transitions"].reserve(t, plan.transitions)
            if plan.workers:
                at(t + delay, "worker", r, 0)
            else:
                exec_end[r] = t + delay + plan.duration
            if plan.awaited:
                at(t + POLL_FIRST, "poll", r)
            else:
                at(t, "step_done", r)
        elif kind == "worker":  # the state machine invokes the step's worker(s)
            if lam.take(t):
                at(t + plan.duration, "worker_done", r)
            else:
                tries = int(data) + 1
                interval, backoff, max_attempts, max_delay = ASL_RETRY
                if tries > max_attempts:
                    exec_end[r] = t  # the execution fails: the step fails when the router sees it
                    at(t, "exec_failed", r)
                else:
                    at(t + min(max_delay, interval * backoff ** (tries - 1)), "worker", r, tries)
        elif kind == "worker_done":
            lam.give()
            exec_end[r] = t
        elif kind == "exec_failed":
            exec_end[r] = -t  # negative: failed at |t|
        elif kind == "poll":
            end = exec_end[r]
            waited = t - router_began[r]
            if waited > ROUTER_WAIT_LIMIT:
                fail_step(t, r, "router waited its limit (RotationInProgressError)")
                continue
            if not buckets["sfn_describe"].take(t):
                polls["throttled"] += 1
                at(t + POLL_CAP, "poll", r)
                continue
            polls["answered"] += 1
            if end is not None and end < 0 and -end <= t:
                exec_end[r] = None
                fail_step(t, r, "execution failed (worker refused by Lambda)")
            elif end is not None and 0 <= end <= t:
                exec_end[r] = None
                call_index[r], attempts[r] = 0, 0
                at(t + AWS_TIMING["router_call"], "call", r, "after")
            else:
                since = t - exec_started[r]
                at(t + min(POLL_CAP, max(POLL_FIRST, since * POLL_GROWTH)), "poll", r)
        elif kind == "step_done":
            lam.give()
            if step_of[r] == len(plans) - 1:
                done_at[r] = t
            else:
                step_of[r] += 1
                # Secrets Manager invokes the next step once the router returned
                at(t + AWS_TIMING["router_call"], "invoke", r)
    finished = [d for d in done_at if d is not None]
    hits = [
        (b.first_throttle, QUOTAS[k].name)
        for k, b in buckets.items()
        if b.first_throttle is not None
    ]
    if lam.first_throttle is not None:
        hits.append((lam.first_throttle, QUOTAS["lambda_concurrency"].name))
    hits.sort()
    return {
        "secrets": secrets_count,
        "spread_seconds": spread_seconds,
        "rotated": len(finished),
        "all_rotated_s": round(max(finished), 1) if finished else None,
        "p50_done_s": round(percentile(finished, 0.5), 1) if finished else None,
        "first_quota_hit": {"at_s": round(hits[0][0], 2), "quota": hits[0][1]} if hits else None,
        "quota_hits": [{"at_s": round(t, 2), "quota": q} for t, q in hits],
        "throttled_calls": {
            **{QUOTAS[k].name: b.throttled for k, b in buckets.items() if b.throttled},
            "Lambda invocations refused": lam.throttled,
        },
        "lambda_peak_concurrency": lam.peak,
        "step_failures_retried_by_secrets_manager": dict(step_failures),
        "describe_execution_polls": dict(polls),
        "events": processed,
    }


def paper_bounds(plans: list[StepPlan], secrets_count: int) -> dict[str, float]:
    """Seconds each quota alone needs for the fleet: its calls over its refill rate (after the
    burst), and Lambda's slot-seconds over its concurrency. The largest is a lower bound of the
    time to rotate the fleet."""
    demand: Counter[str] = Counter()
    slot_seconds = 0.0
    unthrottled_polls = 0
    for plan in plans:
        for name in (*plan.calls_before, *plan.calls_after):
            demand[name] += 1
        demand["sfn_start"] += 1
        demand["sfn_transitions"] += plan.transitions
        if plan.awaited:
            # at least one answered poll per awaited step (the one that sees it ended); the
            # router asks more often only while the bucket has tokens (PollSchedule)
            demand["sfn_describe"] += 1
            unthrottled_polls += _polls_for(plan.duration)
        slot_seconds += plan.workers * AWS_TIMING["worker"] + plan.duration + 0.1
    bounds = {}
    for name, per_rotation in demand.items():
        quota = QUOTAS[name]
        total = per_rotation * secrets_count
        bounds[quota.name] = round(max(0.0, total - quota.bucket) / quota.refill, 1)
    bounds[QUOTAS["lambda_concurrency"].name] = round(
        slot_seconds * secrets_count / QUOTAS["lambda_concurrency"].bucket, 1
    )
    describe = QUOTAS["sfn_describe"]
    bounds[f"{describe.name}, every poll of the unthrottled schedule"] = round(
        max(0.0, unthrottled_polls * secrets_count - describe.bucket) / describe.refill, 1
    )
    return bounds


def _polls_for(duration: float) -> int:
    """DescribeExecution calls the router's PollSchedule makes for a step of ``duration``."""
    waited, polls = 0.0, 0
    while True:
        waited += min(POLL_CAP, max(POLL_FIRST, waited * POLL_GROWTH))
        polls += 1
        if waited >= duration:
            return polls


# --- the benchmark -----------------------------------------------------------------------------


def run(
    rt: Any,
    servers: Servers,
    combos: list[tuple[str, str]],
    out: Output,
    quick: bool = False,
    fleet_secrets: int = 10_000,
) -> dict[str, Any]:
    document: dict[str, Any] = {
        "quotas": {k: q.__dict__ for k, q in QUOTAS.items()},
        "aws_timing_assumed_s": AWS_TIMING,
        "secrets_manager_retry_assumed_s": SM_RETRY_SECONDS,
    }
    if rt is not None:
        say("\n== Fleet: AWS calls per rotation (IAM checker records), one rotation each ==")
        profiles = {}
        for strategy, engine in combos:
            name = combo_name(strategy, engine)
            profiles[name] = call_profile(rt, servers, strategy, engine)
        document["calls_per_rotation"] = profiles
        rows = []
        for name, profile in profiles.items():
            totals: Counter[str] = Counter()
            transitions = workers = 0
            for phase in profile.values():
                totals.update(phase["operations"])
                transitions += phase["state_transitions"]
                workers += phase["worker_invocations"]
            rows.append(
                [
                    name,
                    totals["secretsmanager:GetSecretValue"],
                    totals["secretsmanager:DescribeSecret"],
                    totals["secretsmanager:PutSecretValue"]
                    + totals["secretsmanager:UpdateSecretVersionStage"],
                    totals["states:StartExecution"],
                    totals["states:DescribeExecution"],
                    transitions,
                    workers,
                    sum(totals.values()),
                ]
            )
        say(
            table(
                [
                    "strategy/engine",
                    "GetSecretValue",
                    "DescribeSecret",
                    "Put+UpdateStage",
                    "StartExecution",
                    "DescribeExec (local)",
                    "transitions",
                    "workers",
                    "all calls",
                ],
                rows,
                title="Per rotation, retirement included (DescribeExecution counted with the "
                "local poll settings; the model uses the production PollSchedule)",
            )
        )
        say(f"\n== Fleet: {fleet_secrets:,} secrets whose windows coincide, AWS default quotas ==")
        simulations = {}
        for name, profile in profiles.items():
            engine = name.split("/")[1]
            plans = plan_from_profile(profile, engine)
            simulations[name] = {
                "all_at_once": simulate(plans, fleet_secrets),
                "spread_over_1h": simulate(plans, fleet_secrets, spread_seconds=3600.0),
                "paper_bounds_s": paper_bounds(plans, fleet_secrets),
            }
        document["simulation"] = simulations
        say(
            table(
                [
                    "strategy/engine",
                    "window",
                    "all rotated (s)",
                    "p50 done (s)",
                    "first quota hit",
                    "at (s)",
                    "step retries",
                    "peak Lambda",
                ],
                [
                    [
                        name,
                        label,
                        s["all_rotated_s"] if s["all_rotated_s"] is not None else "-",
                        s["p50_done_s"] if s["p50_done_s"] is not None else "-",
                        (s["first_quota_hit"] or {}).get("quota", "none")[:48],
                        (s["first_quota_hit"] or {}).get("at_s", "-"),
                        sum(s["step_failures_retried_by_secrets_manager"].values()),
                        s["lambda_peak_concurrency"],
                    ]
                    for name, sims in simulations.items()
                    for label, s in (
                        ("same instant", sims["all_at_once"]),
                        ("spread 1 h", sims["spread_over_1h"]),
                    )
                ],
                title="Simulated (token buckets; step durations assumed, see the JSON)",
            )
        )
    document["served"] = served_fleet(servers, [10] if quick else [10, 100], 8, out)
    out.write("fleet", document)
    _plot(document, out)
    return document


def _plot(document: dict[str, Any], out: Output) -> None:
    """Served fleet: per-rotation p50/p95 against the fleet's size."""
    served = document.get("served") or {}
    if not served:
        return
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        say("  (matplotlib is not installed: no fleet plot; `make bench` installs it)")
        return
    sizes = sorted(int(k) for k in served)
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for key, style in (("p50", "o-"), ("p95", "s--")):
        ax.plot(sizes, [served[str(s)]["per_rotation_ms"][key] for s in sizes], style, label=key)
    ax.set_xlabel("secrets rotated (8 in flight)")
    ax.set_ylabel("per rotation (ms)")
    ax.set_xticks(sizes)
    ax.legend()
    ax.set_title("rotator local serve: time per rotation vs fleet size", fontsize=9)
    fig.tight_layout()
    fig.savefig(out.png("fleet_per_rotation"), dpi=100)
    plt.close(fig)
