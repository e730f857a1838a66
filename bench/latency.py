"""Latency: RotateSecret through router, state machine and workers, against the same workers
driven directly in one process.

Per strategy and engine, two secrets on the same server: one is rotated with ``RotateSecret``
(Secrets Manager calls the router four times; each step is a Step Functions execution that
invokes the workers), the other by a *direct* driver that does what a single rotation function
would: it invokes the same worker handlers with hand-built step inputs (what the state machine
passes them) and makes the Secrets Manager writes itself (``PutSecretValue`` AWSPENDING with the
unsealed credential, ``UpdateSecretVersionStage`` AWSCURRENT). The two alternate, rotation by
rotation, so a drift of the machine's speed touches both; their medians' ratio is the
orchestration overhead.

Per step, the router's invocation durations (``rt.host.invocations``) and the workers' own
share (their invocations inside that step) show where the time goes.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from bench.harness import (
    STEPS,
    BenchSecret,
    Output,
    Servers,
    combo_name,
    make_secret,
    say,
    summary_ms,
    table,
)

#: worker functions (template logical ids) per strategy or multi-credential engine
WORKERS = {
    "single-user": "SingleUser",
    "alternating-users": "AlternatingUsers",
    "iam": "IamKeys",
    "redis": "RedisAcl",
}
WORKER_STEPS = {
    "createSecret": "CreateSecret",
    "setSecret": "SetSecret",
    "testSecret": "TestSecret",
}


@dataclass
class Timed:
    total: float
    steps: dict[str, float] = field(default_factory=dict)  # router (or direct) per step
    workers: dict[str, float] = field(default_factory=dict)  # worker invocations per step
    ok: bool = True
    error: str = ""


class Recorder:
    """Collects the stack's invocations while a rotation runs (an ``after_invoke`` hook)."""

    def __init__(self, rt: Any) -> None:
        self.rt = rt
        self.invocations: list[Any] = []
        rt.host.after_invoke.append(self.invocations.append)

    def close(self) -> None:
        self.rt.host.after_invoke.remove(self.invocations.append)

    def take(self) -> list[Any]:
        taken, self.invocations[:] = list(self.invocations), []
        return taken


def _router_name(rt: Any) -> str:
    return str(rt.spec.functions["RouterFunction"].name)


def rotate_orchestrated(rt: Any, recorder: Recorder, secret: BenchSecret) -> Timed:
    recorder.take()
    started = time.perf_counter()
    outcome = rt.rotate(secret.arn)
    total = time.perf_counter() - started
    timed = Timed(total=total, ok=bool(outcome.succeeded))
    if not outcome.succeeded:
        timed.error = json.dumps(outcome.error)[:300]
    router = _router_name(rt)
    for invocation in recorder.take():
        event = invocation.event if isinstance(invocation.event, dict) else {}
        step = event.get("Step")
        if step not in STEPS:
            continue
        if invocation.function == router:
            timed.steps[step] = timed.steps.get(step, 0.0) + invocation.duration
        elif "RetiringVersionId" not in event:  # retirements run later, outside the rotation
            timed.workers[step] = timed.workers.get(step, 0.0) + invocation.duration
    return timed


class Direct:
    """The workers driven directly, with the Secrets Manager writes a single function makes."""

    def __init__(self, rt: Any) -> None:
        from rotation_core.adapters.kms import KmsSealer

        self.rt = rt
        self.sm = rt.client("secretsmanager")
        key = rt.spec.functions["RouterFunction"].environment["SEALING_KEY_ARN"]
        self.sealer = KmsSealer(rt.client("kms"), key)

    def prepare(self, secret: BenchSecret) -> None:
        """Point the secret's rotation at the router, as for a rotated secret, without staging a
        rotation: the workers' roles read only secrets whose rotation function is the router
        (``secretsmanager:resource/AllowRotationLambdaArn``)."""
        from moto.secretsmanager.models import secretsmanager_backends

        from rotator.local import ACCOUNT

        found: Any = secretsmanager_backends[ACCOUNT][self.rt.region].describe_secret(secret.arn)
        found.rotation_lambda_arn = self.rt.router_function_arn
        found.rotation_enabled = True

    def _worker(self, secret: BenchSecret, step: str) -> Any:
        prefix = WORKERS.get(
            secret.engine if secret.strategy == "multi-credential" else secret.strategy
        )
        return self.rt.spec.functions[f"{prefix}{WORKER_STEPS[step]}Function"]

    def _invoke(self, secret: BenchSecret, step: str, base: dict[str, Any]) -> tuple[Any, float]:
        started = time.perf_counter()
        invocation = self.rt.host.invoke(self._worker(secret, step), {**base, "Step": step})
        if invocation.error:
            raise RuntimeError(f"{step}: {invocation.error.get('errorType')}")
        return invocation.payload, time.perf_counter() - started

    def rotate(self, secret: BenchSecret) -> Timed:
        from rotation_core.models import open_sealed_credential

        token = str(uuid.uuid4())
        described = self.sm.describe_secret(SecretId=secret.arn)
        base = {
            "InputVersion": 2,
            "SecretArn": described["ARN"],
            "SecretName": described["Name"],
            "DisplayName": described["Name"],
            "Token": token,
            "Strategy": secret.strategy,
            "Engine": secret.engine,
            "PasswordPolicy": {"PasswordLength": 32, "ExcludeCharacters": ":/@\"'\\"},
            "WriteProbe": False,
        }
        timed = Timed(total=0.0)
        started = time.perf_counter()
        try:
            # createSecret: the worker makes the credential; the driver stores AWSPENDING
            step_started = time.perf_counter()
            payload, worker = self._invoke(secret, "createSecret", base)
            context = {"SecretArn": described["ARN"], "ClientRequestToken": token}
            credential = open_sealed_credential(self.sealer.unseal(payload["Sealed"], context))
            current = json.loads(self.sm.get_secret_value(SecretId=secret.arn)["SecretString"])
            self.sm.put_secret_value(
                SecretId=secret.arn,
                ClientRequestToken=token,
                SecretString=json.dumps({**current, **credential}),
                VersionStages=["AWSPENDING"],
            )
            timed.steps["createSecret"] = time.perf_counter() - step_started
            timed.workers["createSecret"] = worker
            for step in ("setSecret", "testSecret"):
                step_started = time.perf_counter()
                _payload, worker = self._invoke(secret, step, base)
                timed.steps[step] = time.perf_counter() - step_started
                timed.workers[step] = worker
            # finishSecret: move AWSCURRENT, clear AWSPENDING (what Secrets Manager does)
            step_started = time.perf_counter()
            versions = self.sm.describe_secret(SecretId=secret.arn)["VersionIdsToStages"]
            old = next(v for v, stages in versions.items() if "AWSCURRENT" in stages)
            self.sm.update_secret_version_stage(
                SecretId=secret.arn,
                VersionStage="AWSCURRENT",
                MoveToVersionId=token,
                RemoveFromVersionId=old,
            )
            self.sm.update_secret_version_stage(
                SecretId=secret.arn, VersionStage="AWSPENDING", RemoveFromVersionId=token
            )
            timed.steps["finishSecret"] = time.perf_counter() - step_started
        except Exception as exc:
            timed.ok, timed.error = False, f"{type(exc).__name__}: {exc}"[:300]
        timed.total = time.perf_counter() - started
        return timed


def _step_table(results: dict[str, Any]) -> list[list[Any]]:
    rows = []
    for name, result in results.items():
        orchestrated, direct = result["orchestrated"], result["direct"]
        row: list[Any] = [name]
        for step in STEPS:
            router = orchestrated["steps"].get(step, {}).get("p50", float("nan"))
            worker = orchestrated["workers"].get(step, {}).get("p50", float("nan"))
            row.append(f"{router:.0f}/{worker:.0f}" if worker == worker else f"{router:.0f}/-")
        row.append(direct["total"]["p50"])
        rows.append(row)
    return rows


def run(
    rt: Any, servers: Servers, combos: list[tuple[str, str]], rotations: int, out: Output
) -> dict[str, Any]:
    say(f"\n== Latency: RotateSecret vs the workers driven directly, {rotations} rotations each ==")
    recorder, direct = Recorder(rt), Direct(rt)
    results: dict[str, Any] = {}
    try:
        for strategy, engine in combos:
            name = combo_name(strategy, engine)
            orchestrated_secret = make_secret(rt, servers, strategy, engine)
            direct_secret = make_secret(rt, servers, strategy, engine)
            direct.prepare(direct_secret)
            # one of each first, not counted: handler imports, first connections, TLS contexts
            warm = (
                rotate_orchestrated(rt, recorder, orchestrated_secret),
                direct.rotate(direct_secret),
            )
            runs: dict[str, list[Timed]] = {"orchestrated": [], "direct": []}
            for _ in range(rotations):
                runs["orchestrated"].append(rotate_orchestrated(rt, recorder, orchestrated_secret))
                runs["direct"].append(direct.rotate(direct_secret))
            results[name] = {path: _summarize(timed) for path, timed in runs.items()}
            results[name]["warm_up_ms"] = {
                "orchestrated": round(warm[0].total * 1000, 1),
                "direct": round(warm[1].total * 1000, 1),
            }
            o, d = results[name]["orchestrated"]["total"], results[name]["direct"]["total"]
            ratio = o["p50"] / d["p50"] if d["p50"] and d["p50"] == d["p50"] else float("nan")
            results[name]["ratio_p50"] = round(ratio, 2)
            say(
                f"  {name:32} RotateSecret p50 {o['p50']:7.0f} ms  p95 {o['p95']:7.0f} ms"
                f"   direct p50 {d['p50']:6.0f} ms   ratio {results[name]['ratio_p50']}"
                f"   failures {results[name]['orchestrated']['failures']}"
                f"/{results[name]['direct']['failures']}"
            )
    finally:
        recorder.close()
    say()
    say(
        table(
            ["strategy/engine", "RotateSecret p50", "p95", "direct p50", "p95", "ratio p50"],
            [
                [
                    n,
                    r["orchestrated"]["total"]["p50"],
                    r["orchestrated"]["total"]["p95"],
                    r["direct"]["total"]["p50"],
                    r["direct"]["total"]["p95"],
                    r["ratio_p50"],
                ]
                for n, r in results.items()
            ],
            title="RotateSecret and the direct path (ms)",
        )
    )
    say()
    say(
        table(
            ["strategy/engine", *[f"{s} router/worker" for s in STEPS], "direct total"],
            _step_table(results),
            title="Per step, p50 ms: the router's invocation / the workers inside it",
        )
    )
    document = {"rotations": rotations, "results": results}
    out.write("latency", document)
    _plot(results, out)
    return document


def _summarize(timed: list[Timed]) -> dict[str, Any]:
    ok = [t for t in timed if t.ok]
    steps: dict[str, list[float]] = defaultdict(list)
    workers: dict[str, list[float]] = defaultdict(list)
    for t in ok:
        for step, seconds in t.steps.items():
            steps[step].append(seconds)
        for step, seconds in t.workers.items():
            workers[step].append(seconds)
    return {
        "total": summary_ms(t.total for t in ok),
        "steps": {s: summary_ms(v) for s, v in steps.items()},
        "workers": {s: summary_ms(v) for s, v in workers.items()},
        "failures": len(timed) - len(ok),
        "errors": sorted({t.error for t in timed if not t.ok}),
    }


def _plot(results: dict[str, Any], out: Output) -> None:
    """Stacked bars per strategy/engine: the four steps' p50, the workers' share hatched."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        say("  (matplotlib is not installed: no plot)")
        return
    names = list(results)
    if not names:
        return
    fig, ax = plt.subplots(figsize=(10, 4.8))
    colors = {
        "createSecret": "#4c72b0",
        "setSecret": "#dd8452",
        "testSecret": "#55a868",
        "finishSecret": "#c44e52",
    }
    for row, path in enumerate(("orchestrated", "direct")):
        positions = [i * 2.6 + row for i in range(len(names))]
        bottoms = [0.0] * len(names)
        for step in STEPS:
            heights = [
                results[n][path]["steps"].get(step, {}).get("p50", 0.0) or 0.0 for n in names
            ]
            ax.bar(
                positions,
                heights,
                bottom=bottoms,
                color=colors[step],
                width=0.9,
                label=step if row == 0 else None,
                alpha=1.0 if path == "orchestrated" else 0.55,
            )
            bottoms = [b + h for b, h in zip(bottoms, heights, strict=True)]
    ax.set_xticks([i * 2.6 + 0.5 for i in range(len(names))])
    ax.set_xticklabels([n.replace("/", "\n") for n in names], fontsize=8)
    ax.set_ylabel("p50 per step (ms)")
    ax.set_title("RotateSecret per step (left bar) vs the workers driven directly (right bar)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out.png("latency_steps"), dpi=110)
    plt.close(fig)
