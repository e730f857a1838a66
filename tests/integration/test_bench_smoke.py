"""The benchmark command runs and prints its tables (no timing is asserted: numbers are the
benchmark's output, not a test's verdict)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.integration


def test_a_quick_latency_run_prints_its_tables_and_writes_its_results() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--quick",
            "--only",
            "latency",
            "--rotations",
            "1",
            "--combo",
            "single-user/postgres",
            "--combo",
            "multi-credential/iam",
            "--label",
            "dev/smoke",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "RotateSecret and the direct path (ms)" in done.stdout
    assert "Per step, p50 ms" in done.stdout
    results = json.loads(
        (ROOT / "bench" / "results" / "dev" / "smoke" / "latency.json").read_text()
    )
    for combo in ("single-user/postgres", "multi-credential/iam"):
        measured = results["results"][combo]
        assert measured["orchestrated"]["failures"] == 0, measured["orchestrated"]["errors"]
        assert measured["direct"]["failures"] == 0, measured["direct"]["errors"]
        assert measured["orchestrated"]["total"]["n"] == 1
