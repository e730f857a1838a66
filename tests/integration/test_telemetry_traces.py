"""Traces carry no secret and no SQL: real rotations with Tracer on, segments read off the wire.

A child process (``telemetry_trace_probe``) runs a single-user and an alternating-users rotation
on the local runtime with tracing enabled as in Lambda; the X-Ray SDK sends its segments over
UDP to ``AWS_XRAY_DAEMON_ADDRESS``, a socket this test opened. Every segment is then searched
for every password any version of any secret held (old, new, the master's) and for SQL. The
router's and the workers' handler segments must be there, so the scan cannot pass on nothing.

This fails if Tracer patched its default set of libraries: the X-Ray SDK's psycopg2/pymysql
patches put each statement's text into the trace (``sql.sanitized_query``).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rotator.dbservers import DatabaseServer
from tests.conftest import assert_no_value_in
from tests.integration.conftest import database_secret, new_password, unique_name

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
#: SQL our engines send (and words only SQL uses here); no trace may hold any of it
SQL = re.compile(r"\b(ALTER|SELECT|CREATE USER|CREATE ROLE|GRANT|SET PASSWORD|IDENTIFIED)\b")


class Collector:
    """A UDP socket playing the X-Ray daemon: keeps every document it receives."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.packets: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        host, port = self.sock.getsockname()
        return f"{host}:{port}"

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.packets.append(self.sock.recv(65535))
            except TimeoutError:
                continue

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()

    def documents(self) -> list[dict[str, Any]]:
        """Each packet is a header line, then one segment or subsegment document."""
        found = []
        for packet in self.packets:
            header, _, body = packet.decode().partition("\n")
            assert json.loads(header).get("format") == "json"
            found.append(json.loads(body))
        return found


@pytest.fixture
def collector() -> Iterator[Collector]:
    found = Collector()
    try:
        yield found
    finally:
        found.close()


def _names(document: dict[str, Any]) -> Iterator[str]:
    yield str(document.get("name"))
    for child in document.get("subsegments", []):
        yield from _names(child)


def _trace_header() -> str:
    root = f"1-{secrets.token_hex(4)}-{secrets.token_hex(12)}"
    return f"Root={root};Parent={secrets.token_hex(8)};Sampled=1"


def test_traces_of_real_rotations_hold_no_secret_and_no_sql(
    postgres_server: DatabaseServer,
    test_ca_stack_settings: dict[str, dict[str, str]],
    collector: Collector,
    tmp_path: Path,
) -> None:
    # GIVEN a single-user secret and an alternating-users secret with its master
    single, alternating, master = unique_name(), unique_name(), unique_name("master")
    passwords = {name: new_password() for name in (single, alternating, master)}
    postgres_server.create_login(single, passwords[single])
    postgres_server.create_login(alternating, passwords[alternating])
    postgres_server.create_login(master, passwords[master], superuser=True)
    master_secret = database_secret(postgres_server, master, passwords[master])
    master_secret.pop("dbname")
    spec = {
        "runtime": test_ca_stack_settings,
        "master": master_secret,
        "users": [
            database_secret(postgres_server, single, passwords[single]),
            database_secret(postgres_server, alternating, passwords[alternating], masterarn=True),
        ],
    }
    out = tmp_path / "result.json"
    env = {
        **os.environ,
        "LAMBDA_TASK_ROOT": str(ROOT / "functions"),
        "_X_AMZN_TRACE_ID": _trace_header(),
        "AWS_XRAY_DAEMON_ADDRESS": collector.address,
        "PYTHONPATH": str(ROOT),
    }

    # WHEN both rotate with tracing on
    run = subprocess.run(
        [sys.executable, "-m", "tests.integration.telemetry_trace_probe", str(out)],
        input=json.dumps(spec),
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )

    # THEN (the child's output is not shown: a failure must not print what a driver said)
    assert run.returncode == 0, "the probe process failed (run it by hand to see why)"
    result = json.loads(out.read_text())
    assert result["succeeded"] == [True, True]
    values = {**result["values"], **{f"initial {n}": p for n, p in passwords.items()}}
    assert len(values) >= 6  # both secrets' old and new passwords, the master's
    documents = collector.documents()
    names = {name for document in documents for name in _names(document)}
    # the router's and every step worker's handler segment arrived (nothing vacuous)
    assert {"## route", "## create_secret", "## set_secret", "## test_secret"} <= names
    # and the AWS calls they made (the botocore patch is on)
    assert {"secretsmanager", "kms", "events"} <= names
    text = "\n".join(packet.decode() for packet in collector.packets)
    assert_no_value_in(text, values)
    # booleans: pytest would otherwise print the trace text it compared
    holds_sql_metadata = '"sql"' in text
    holds_sql_text = SQL.search(text) is not None
    assert not holds_sql_metadata, "a trace holds SQL metadata (a database driver is patched)"
    assert not holds_sql_text, "a trace holds SQL text"
