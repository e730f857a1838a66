"""``rotator local serve`` in a subprocess, the way a user starts it, trusting the test CA."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

PROJECT = Path(__file__).resolve().parents[2]


@dataclass
class Served:
    ready: dict[str, Any]
    process: subprocess.Popen[str]
    log_path: Path

    def client(self, service: str, **credentials: str) -> Any:
        """A boto3 client of the endpoint, signing with the key pair serve minted (or with
        ``aws_access_key_id``/``aws_secret_access_key`` given, e.g. an IAM user's key)."""
        return boto3.client(
            service,
            endpoint_url=self.ready["endpoint_url"],
            region_name=self.ready["region"],
            aws_access_key_id=credentials.get("aws_access_key_id", self.ready["aws_access_key_id"]),
            aws_secret_access_key=credentials.get(
                "aws_secret_access_key", self.ready["aws_secret_access_key"]
            ),
        )


@contextmanager
def serve(log_path: Path, ca_directory: Path | None, *extra: str) -> Iterator[Served]:
    """Start serve with ``--json``; functions trust the CA in ``ca_directory`` (bundle
    ``test-ca``). Yields once the ready line is read; stops it with SIGTERM, as Ctrl-C would."""
    command = [sys.executable, "-m", "rotator.cli", "local", "serve", "--json", *extra]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if ca_directory is not None:
        command += ["--parameter", "CaBundle=test-ca"]
        # the functions' environment is laid over the process's: every function sees it
        env["CA_BUNDLE_DIR"] = str(ca_directory)
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=log, text=True, env=env, cwd=PROJECT
        )
        try:
            line = process.stdout.readline() if process.stdout else ""
            assert line, f"serve exited before printing its ready line: {log_path.read_text()}"
            yield Served(json.loads(line), process, log_path)
        finally:
            process.terminate()
            process.wait(timeout=30)
