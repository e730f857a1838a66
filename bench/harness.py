"""What every benchmark shares: the servers, the stack, a secret of every strategy and engine,
statistics, and the results (JSON, tables, plots).

Everything runs on this machine, as the tests do: the repository's stack on moto with the real
handlers in-process (``rotator.local.LocalRuntime``), and throwaway PostgreSQL, MariaDB and
Redis servers that enforce passwords over TLS (``rotator.dbservers``).
"""

from __future__ import annotations

import contextlib
import datetime
import io
import json
import math
import os
import platform
import secrets
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"

#: (strategy, engine) pairs the benchmarks cover: the fault matrix's combinations
COMBOS: list[tuple[str, str]] = [
    ("single-user", "postgres"),
    ("single-user", "mariadb"),
    ("alternating-users", "postgres"),
    ("alternating-users", "mariadb"),
    ("multi-credential", "redis"),
    ("multi-credential", "iam"),
]
GROUP = "bench"
STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")


def combo_name(strategy: str, engine: str) -> str:
    return f"{strategy}/{engine}"


# --- statistics --------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) by linear interpolation between closest ranks; nan if empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summary_ms(seconds: Iterable[float]) -> dict[str, float]:
    """n, p50, p95, max and mean in milliseconds."""
    values = [s * 1000.0 for s in seconds]
    if not values:
        return {"n": 0, "p50": math.nan, "p95": math.nan, "max": math.nan, "mean": math.nan}
    return {
        "n": len(values),
        "p50": round(percentile(values, 0.5), 1),
        "p95": round(percentile(values, 0.95), 1),
        "max": round(max(values), 1),
        "mean": round(sum(values) / len(values), 1),
    }


# --- results -----------------------------------------------------------------------------------


def git_state() -> dict[str, Any]:
    def git(*args: str) -> str:
        try:
            return subprocess.run(
                ["git", *args], cwd=ROOT, capture_output=True, text=True, check=False
            ).stdout.strip()
        except OSError:
            return ""

    dirty = [
        line[3:]
        for line in git("status", "--porcelain").splitlines()
        if line[3:].startswith(("functions/", "src/", "statemachine/", "template.yaml"))
    ]
    return {"commit": git("rev-parse", "HEAD"), "uncommitted_code": dirty}


def machine() -> dict[str, Any]:
    load = os.getloadavg() if hasattr(os, "getloadavg") else (math.nan,) * 3
    try:
        import moto

        moto_version = moto.__version__
    except ImportError:  # pragma: no cover - the project depends on it
        moto_version = "?"
    return {
        "cpus": os.cpu_count(),
        "load_average_1_5_15": [round(x, 2) for x in load],
        "python": platform.python_version(),
        "platform": platform.platform(),
        "moto": moto_version,
    }


@dataclass
class Output:
    """Where one run writes: ``bench/results/`` (or ``bench/results/<label>/``)."""

    directory: Path
    label: str
    parse_cache: bool = True

    @classmethod
    def make(cls, label: str | None, parse_cache: bool) -> Output:
        directory = RESULTS / label if label else RESULTS
        directory.mkdir(parents=True, exist_ok=True)
        return cls(directory, label or "latest", parse_cache)

    def write(self, name: str, data: dict[str, Any]) -> Path:
        path = self.directory / f"{name}.json"
        document = {
            "benchmark": name,
            "label": self.label,
            "when": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "local_runtime_parse_cache": self.parse_cache,
            "git": git_state(),
            "machine": machine(),
            **data,
        }
        path.write_text(json.dumps(document, indent=2, sort_keys=False, default=str) + "\n")
        return path

    def png(self, name: str) -> Path:
        return self.directory / f"{name}.png"


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], title: str = "") -> str:
    """A plain text table (numbers right-aligned)."""

    def cell(value: Any) -> str:
        if isinstance(value, float):
            if math.isnan(value):
                return "-"
            return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.2f}".rstrip("0").rstrip(".")
        return str(value)

    raw_rows = [list(row) for row in rows]
    body = [[cell(v) for v in row] for row in raw_rows]
    widths = [max([len(h)] + [len(r[i]) for r in body]) for i, h in enumerate(headers)]
    lines = [title] if title else []
    lines.append("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    lines.append("  ".join("-" * w for w in widths))
    for row, raw in zip(body, raw_rows, strict=True):
        lines.append(
            "  ".join(
                c.rjust(w) if isinstance(v, int | float) else c.ljust(w)
                for c, w, v in zip(row, widths, raw, strict=True)
            )
        )
    return "\n".join(lines)


def say(text: str = "") -> None:
    """Print to the real stdout, also while :func:`quiet_functions` swallows ``print``."""
    out = sys.__stdout__
    if out is not None:
        out.write(text + "\n")
        out.flush()


# --- servers and the stack ---------------------------------------------------------------------


class Servers:
    """A CA and, started on first use, one PostgreSQL, MariaDB and Redis server that use it."""

    def __init__(self, stack: contextlib.ExitStack) -> None:
        from rotator.dbservers import CertificateAuthority

        self._stack = stack
        self._dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-ca-")))
        self.ca = CertificateAuthority(self._dir)
        self._servers: dict[str, Any] = {}

    def available(self, engine: str) -> bool:
        from rotator.dbservers import mariadb_available, postgres_available, redis_available

        checks = {
            "postgres": postgres_available,
            "mariadb": mariadb_available,
            "redis": redis_available,
        }
        return engine == "iam" or checks[engine]()

    def get(self, engine: str) -> Any:
        if engine == "iam":
            return None
        if engine not in self._servers:
            from rotator.dbservers import start_mariadb, start_postgres, start_redis

            start = {"postgres": start_postgres, "mariadb": start_mariadb, "redis": start_redis}
            self._servers[engine] = self._stack.enter_context(start[engine](ca=self.ca))
        return self._servers[engine]

    @property
    def ca_file(self) -> str:
        return str(self.ca.ca_file)

    def stack_settings(self) -> dict[str, Any]:
        from rotator.dbservers.tls import CA_BUNDLE_NAME

        return {
            "parameter_overrides": {"CaBundle": CA_BUNDLE_NAME},
            "function_environment": {"CA_BUNDLE_DIR": str(self.ca.directory)},
        }


@contextlib.contextmanager
def quiet_functions() -> Iterator[None]:
    """The functions' JSON log lines and EMF metrics go nowhere (the tables stay readable)."""
    from rotator.functions import redirect_function_logs

    sink = io.StringIO()
    redirect_function_logs(sink)
    try:
        with contextlib.redirect_stdout(_Discard()):
            yield
    finally:
        redirect_function_logs(sys.__stdout__)


class _Discard(io.TextIOBase):
    """stdout for code that prints (EMF metrics); our own tables go to ``sys.__stdout__``."""

    def write(self, text: str) -> int:
        return len(text)


@contextlib.contextmanager
def local_stack(servers: Servers, parse_cache: bool = True, **kwargs: Any) -> Iterator[Any]:
    """The repository's stack on moto, trusting the servers' CA; without the parse cache when
    asked (the code before it: moto parses the definition at every execution)."""
    from rotator.aws_local.patches.definition_cache import ParsedDefinitionsAreCached
    from rotator.local import LocalRuntime

    settings = servers.stack_settings()
    environment = {**settings["function_environment"], **kwargs.pop("function_environment", {})}
    with LocalRuntime(
        parameter_overrides=settings["parameter_overrides"],
        function_environment=environment,
        **kwargs,
    ) as rt:
        assert rt.cloud is not None
        with (
            rt.cloud.suspended(ParsedDefinitionsAreCached)
            if not parse_cache
            else contextlib.nullcontext()
        ):
            yield rt


# --- secrets of every strategy and engine ------------------------------------------------------


@dataclass
class BenchSecret:
    arn: str
    strategy: str
    engine: str
    username: str
    server: Any  # DatabaseServer, or None for IAM


def _password(prefix: str = "Bench") -> str:
    return f"{prefix}-{secrets.token_urlsafe(18)}"


def _db_value(server: Any, username: str, password: str) -> dict[str, Any]:
    value: dict[str, Any] = {
        "engine": server.engine,
        "host": server.host,
        "port": server.port,
        "username": username,
        "password": password,
    }
    if server.engine != "redis":
        value["dbname"] = "app"
    return value


def make_secret(rt: Any, servers: Servers, strategy: str, engine: str) -> BenchSecret:
    """A login (or IAM user) and its secret, tagged as the stack's roles require."""
    sm = rt.client("secretsmanager")
    tag = secrets.token_hex(4)
    group = [{"Key": "SecretRotationGroup", "Value": GROUP}]
    if engine == "iam":
        iam = rt.client("iam")
        user = f"bench-{tag}"
        iam.create_user(UserName=user, Tags=[{"Key": "SecretRotation", "Value": rt.stack_name}])
        key = iam.create_access_key(UserName=user)["AccessKey"]
        value = {
            "engine": "iam",
            "username": user,
            "access_key_id": key["AccessKeyId"],
            "secret_access_key": key["SecretAccessKey"],
        }
        arn = sm.create_secret(Name=f"bench/iam/{tag}", SecretString=json.dumps(value))["ARN"]
        return BenchSecret(arn, strategy, engine, user, None)
    server = servers.get(engine)
    username, password = f"app_{tag}", _password()
    server.create_login(username, password)
    value = _db_value(server, username, password)
    if strategy == "alternating-users":
        master, master_password = f"master_{tag}", _password("Master")
        server.create_login(master, master_password, superuser=True)
        master_value = _db_value(server, master, master_password)
        master_value.pop("dbname", None)
        value["masterarn"] = sm.create_secret(
            Name=f"bench/{engine}/master/{tag}",
            SecretString=json.dumps(master_value),
            Tags=[{"Key": "SecretRotationMaster", "Value": rt.stack_name}, *group],
        )["ARN"]
    arn = sm.create_secret(
        Name=f"bench/{engine}/{strategy}/{tag}", SecretString=json.dumps(value), Tags=group
    )["ARN"]
    return BenchSecret(arn, strategy, engine, username, server)


def available_combos(
    servers: Servers, wanted: Sequence[tuple[str, str]] = COMBOS
) -> list[tuple[str, str]]:
    chosen = []
    for strategy, engine in wanted:
        if servers.available(engine):
            chosen.append((strategy, engine))
        else:
            say(
                f"  ({engine} server binaries are not installed here: skipping {strategy}/{engine})"
            )
    return chosen
