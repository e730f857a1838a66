"""Cold start: each function's handler module imported in a fresh interpreter.

Per code directory of ``template.yaml`` (functions sharing a ``CodeUri`` share a module):
the import time of ``app`` in a new ``python`` process (median of N, the interpreter's own
start-up excluded), which drivers and SDKs that import loaded (what the function pays at a cold
start before its first line runs), and the size of its code with the shared layer's
(``functions/shared``; third-party packages excluded: ``sam build`` adds them).

The first invocation's extra cost (lazy driver imports, clients, TLS contexts) shows in the
latency benchmark's ``warm_up_ms`` (the first rotation of each strategy/engine, not counted).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.harness import ROOT, Output, Servers, say, table

CODE_DIRS = {
    "router": ["RouterFunction"],
    "single_user": ["SingleUser{Create,Set,Test}SecretFunction", "SingleUserRollbackFunction"],
    "alternating_users": ["AlternatingUsers{Create,Set,Test}SecretFunction"],
    "multi_credential": ["IamKeys*Function", "RedisAcl*Function"],
    "alerts": ["AlertSafetyNetFunction"],
}
#: modules worth knowing about at a cold start
WATCHED = (
    "boto3",
    "botocore",
    "psycopg2",
    "pymysql",
    "redis",
    "cryptography",
    "aws_lambda_powertools",
)

_PROBE = """
import json, sys, time
sys.path[:0] = [{code!r}, {layer!r}]
began = time.perf_counter()
import app
took = time.perf_counter() - began
print(json.dumps({{"seconds": took, "loaded": [m for m in {watched!r} if m in sys.modules]}}))
"""


def _size_kb(*paths: Path) -> float:
    total = 0
    for path in paths:
        for file in path.rglob("*"):
            if file.is_file() and "__pycache__" not in file.parts:
                total += file.stat().st_size
    return round(total / 1024.0, 1)


def _probe(code: Path) -> dict[str, Any]:
    script = _PROBE.format(
        code=str(code), layer=str(ROOT / "functions" / "shared"), watched=WATCHED
    )
    env = {**os.environ, "POWERTOOLS_METRICS_NAMESPACE": "bench", "AWS_DEFAULT_REGION": "us-east-1"}
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=env,
        cwd=code,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"importing {code.name}/app.py failed: {done.stderr.strip()[-300:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def run(servers: Servers | None, out: Output, repeats: int = 5) -> dict[str, Any]:
    say(f"\n== Cold start: handler import in a fresh interpreter, median of {repeats} ==")
    results: dict[str, Any] = {}
    for name, functions in CODE_DIRS.items():
        code = ROOT / "functions" / name
        probes = [_probe(code) for _ in range(repeats)]
        seconds = [p["seconds"] for p in probes]
        results[name] = {
            "functions": functions,
            "import_ms_median": round(statistics.median(seconds) * 1000.0, 1),
            "import_ms_max": round(max(seconds) * 1000.0, 1),
            "loaded_at_import": probes[-1]["loaded"],
            "code_kb": _size_kb(code),
            "code_with_layer_kb": _size_kb(code, ROOT / "functions" / "shared"),
        }
    say(
        table(
            [
                "code dir",
                "import ms (median)",
                "max",
                "loaded at import",
                "code KB",
                "with layer KB",
            ],
            [
                [
                    n,
                    r["import_ms_median"],
                    r["import_ms_max"],
                    ", ".join(r["loaded_at_import"]) or "-",
                    r["code_kb"],
                    r["code_with_layer_kb"],
                ]
                for n, r in results.items()
            ],
            title="Handler modules (functions sharing a CodeUri share one)",
        )
    )
    document = {"repeats": repeats, "results": results}
    out.write("cold_start", document)
    return document
