"""A worker facing a server that accepts connections and then says nothing ends with an error of
the taxonomy before its Lambda timeout, so the state machine can classify it (retry or alert)
instead of seeing a killed function (Lambda.Unknown).

Workers derive their connect, statement and lock timeouts from the invocation's remaining time,
keeping a margin to report the error (rotation_core.connection).
"""

from __future__ import annotations

import copy
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rotation_core import exceptions
from tests.functional.conftest import create_secret

EVENTS = Path(__file__).resolve().parents[2] / "events" / "workers"
#: the worker's Lambda timeout here (the template's is 30 s)
TIMEOUT = 6
TAXONOMY = {cls.__name__ for cls in (*exceptions.TRANSIENT_ERRORS, *exceptions.PERMANENT_ERRORS)}


class SilentServer:
    """Listens on loopback, accepts every connection and never sends or closes anything."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._held: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True, name="silent-server")
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _addr = self._listener.accept()
            except OSError:
                return
            self._held.append(conn)

    def close(self) -> None:
        self._listener.close()
        for conn in self._held:
            conn.close()


@pytest.fixture
def silent_server() -> Iterator[SilentServer]:
    server = SilentServer()
    yield server
    server.close()


CASES = {
    # (worker, event file, secret engine fields)
    "postgres": (
        "SingleUserCreateSecretFunction",
        "single-user",
        {"engine": "postgres", "dbname": "app"},
    ),
    "mysql": (
        "SingleUserCreateSecretFunction",
        "single-user",
        {"engine": "mysql", "dbname": "app"},
    ),
    "redis": ("RedisAclCreateSecretFunction", "multi-credential", {"engine": "redis"}),
}


@pytest.mark.parametrize("engine", sorted(CASES))
def test_a_worker_facing_a_silent_server_ends_with_a_classified_error_before_its_timeout(
    runtime: Any, silent_server: SilentServer, engine: str, record_property: Any
) -> None:
    logical_id, strategy, fields = CASES[engine]
    value = {
        "host": "127.0.0.1",
        "port": silent_server.port,
        "username": "app",
        "password": "initial-password-not-for-logs",
        **fields,
    }
    arn = create_secret(runtime, f"timeouts/{engine}", value)
    token = runtime.stage_rotation(arn)
    event = copy.deepcopy(json.loads((EVENTS / strategy / "createSecret.json").read_text()))
    event.update(SecretArn=arn, SecretName=f"timeouts/{engine}", Token=token, Engine=engine)
    spec = runtime.spec.functions[logical_id]
    runtime.host.timeouts[spec.name] = TIMEOUT

    invocation = runtime.host.invoke(spec, event)

    assert invocation.error is not None, "the worker did not fail"
    error_type = invocation.error.get("errorType")
    assert error_type in TAXONOMY, f"{engine}: {invocation.error}"
    assert invocation.duration < TIMEOUT - 0.5, f"{engine}: took {invocation.duration:.1f} s"
    record_property("silent_server", f"{engine}: {error_type} after {invocation.duration:.1f} s")
    print(
        f"\n{engine}: {error_type} after {invocation.duration:.1f} s (Lambda timeout {TIMEOUT} s)"
    )
