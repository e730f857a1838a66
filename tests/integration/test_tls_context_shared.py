"""Workers build one TLS context per process and CA bundle, not one per login (issue 11 §2).

Two logins to a real MariaDB and a real Redis server (TLS, the test CA) must wrap their
sockets with the same ``ssl.SSLContext`` object. redis-py on its own builds a context (and
loads the trust store into it) for every connection: the Redis half fails without the shared
context of ``rotation_core.tls``. PostgreSQL is not here: libpq builds its TLS state per
connection from ``sslrootcert`` and takes no context from Python.
"""

from __future__ import annotations

import ssl
import threading
from typing import Any

import pytest

from rotation_core import tls
from rotation_core.adapters import engine_for
from rotation_core.adapters.credentials.redis_acl import RedisAclPasswords
from rotation_core.connection import ConnectionPolicy
from rotation_core.models import DatabaseCredentials
from rotation_core.tls import TlsSettings
from rotator.dbservers import DatabaseServer
from tests.integration.conftest import database_secret, new_password, unique_name

pytestmark = pytest.mark.integration


@pytest.fixture
def wrapped(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """ids of the contexts that wrapped a socket while the test ran."""
    used: list[int] = []
    original = ssl.SSLContext.wrap_socket

    def wrap_socket(self: ssl.SSLContext, *args: Any, **kwargs: Any) -> Any:
        used.append(id(self))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(ssl.SSLContext, "wrap_socket", wrap_socket)
    return used


def _policy(test_ca: Any) -> ConnectionPolicy:
    return ConnectionPolicy(tls=TlsSettings(default_bundle="test-ca", bundle_dir=test_ca.directory))


def test_two_mariadb_logins_share_one_tls_context(
    mariadb_server: DatabaseServer, test_ca: Any, wrapped: list[int]
) -> None:
    username, password = unique_name("tls"), new_password()
    mariadb_server.create_login(username, password)
    creds = DatabaseCredentials.from_secret(database_secret(mariadb_server, username, password))
    engine = engine_for("mariadb", _policy(test_ca))
    wrapped.clear()  # the server's own admin connection

    engine.probe(creds)
    engine.probe(creds)

    assert len(wrapped) == 2 and wrapped[0] == wrapped[1]


def test_two_redis_logins_share_one_tls_context(
    redis_server: DatabaseServer, test_ca: Any, wrapped: list[int]
) -> None:
    username, password = unique_name("tls"), new_password()
    redis_server.create_login(username, password)
    backend = RedisAclPasswords(_policy(test_ca))
    creds = backend.parse(database_secret(redis_server, username, password), what="current")
    wrapped.clear()  # the server's own admin connection

    backend.probe(creds)
    backend.probe(creds)

    assert len(wrapped) == 2 and wrapped[0] == wrapped[1]


def test_threads_logging_in_at_once_build_one_context(monkeypatch: pytest.MonkeyPatch) -> None:
    """The first logins of many threads build the context once (a lock, not a race)."""
    built: list[ssl.SSLContext] = []
    start = threading.Barrier(8)
    original = tls._build_context

    def counting(ca_file: str | None) -> ssl.SSLContext:
        context = original(ca_file)
        built.append(context)
        return context

    monkeypatch.setattr(tls, "_build_context", counting)
    monkeypatch.setattr(tls, "_contexts", {})
    choice = TlsSettings().choose(None, None)
    got: list[ssl.SSLContext] = []

    def login() -> None:
        start.wait()
        got.append(choice.ssl_context())

    threads = [threading.Thread(target=login) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(built) == 1
    assert all(context is built[0] for context in got)
    assert choice.ssl_context() is got[0]
