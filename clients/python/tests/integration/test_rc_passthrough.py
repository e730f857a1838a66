"""Errors that are not authentication failures pass through the library unchanged.

Real servers, the library's own connectors, one test per class of error (network, TLS, SQL,
permissions) on each engine: the driver's exception reaches the caller after exactly one
attempt, and the secret is never read again (a rotation is never blamed). A wrong password, by
contrast, is read again: that control proves these tests would see a refresh.

The secret comes from an in-memory source (no Secrets Manager is needed to raise these errors).
"""

from __future__ import annotations

import contextlib
import json
import socket
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from rotation_client import (
    AWSCURRENT,
    RetryPolicy,
    RotatingSecret,
    TlsSettings,
    connect_with,
    redis_client,
)
from rotation_client.source import SecretVersion

integration = pytest.mark.integration
ENGINES = ["postgres", "mariadb", "redis"]


class StaticSource:
    """A secret store holding one value; counts the reads a refresh would make."""

    def __init__(self, value: dict[str, Any]) -> None:
        self.text = json.dumps(value)
        self.fetches = 0

    def cached(self, secret_id: str) -> SecretVersion:
        return SecretVersion(self.text)

    def fetch(self, secret_id: str, stage: str) -> SecretVersion | None:
        self.fetches += 1
        return SecretVersion(self.text, "v1") if stage == AWSCURRENT else None

    def catch_up(self, secret_id: str) -> None:
        pass


def value_for(server: Any, username: str, password: str, **extra: Any) -> dict[str, Any]:
    value: dict[str, Any] = {
        "engine": server.engine,
        "host": server.host,
        "port": server.port,
        "username": username,
        "password": password,
    }
    if server.engine != "redis":
        value["dbname"] = "app"
    value.update(extra)
    return value


def login(server: Any, *, acl: tuple[str, ...] = ()) -> tuple[str, str]:
    """A fresh login on ``server`` (on Redis, with ``acl`` rules instead of every command)."""
    from tests.integration.conftest import new_password, unique_name

    username, password = unique_name("rc"), new_password()
    server.create_login(username, password)
    if acl:
        admin = server.admin_connection()
        try:
            admin.execute_command("ACL", "SETUSER", username, "reset", "on", f">{password}", *acl)
        finally:
            admin.close()
    return username, password


def use(
    engine: str, secret: RotatingSecret, ca_file: str, statement: str | None = None
) -> Callable[[], Any]:
    """Connect and run ``statement``, all of it inside the library's retry loop (the generic
    ``connect_with`` for PostgreSQL and MariaDB, the client's own loop for Redis): every error
    reaches the classifier, so a classifier that blamed rotation for it would be seen."""
    tls = TlsSettings(ca_file=ca_file)

    def sql(conn: Any) -> Any:
        try:
            with conn.cursor() as cur:
                cur.execute(statement or "SELECT 1")
                return cur.fetchall()
        finally:
            conn.close()

    if engine == "postgres":
        import psycopg2

        from rotation_client.postgres import connection_params as pg_params

        return lambda: connect_with(
            secret, lambda c: sql(psycopg2.connect(**pg_params(c, tls, {"connect_timeout": 3})))
        )
    if engine == "mariadb":
        import pymysql

        from rotation_client.mysql import connection_params as my_params

        return lambda: connect_with(
            secret, lambda c: sql(pymysql.connect(**my_params(c, tls, {"connect_timeout": 3})))
        )

    def redis_command() -> Any:
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        client = redis_client(
            secret, ca_file=ca_file, socket_timeout=3, retry=Retry(NoBackoff(), 0)
        )
        try:
            return client.execute_command(*(statement or "PING").split())
        finally:
            client.close()

    return redis_command


@pytest.fixture(params=ENGINES)
def server(request: pytest.FixtureRequest) -> Any:
    return request.getfixturevalue(f"{request.param}_server")


def secret_for(value: dict[str, Any]) -> tuple[RotatingSecret, StaticSource]:
    source = StaticSource(value)
    return RotatingSecret("it/passthrough", source, policy=RetryPolicy(budget=5)), source


def expect_unchanged(
    operation: Callable[[], Any], secret: RotatingSecret, source: StaticSource
) -> BaseException:
    with pytest.raises(Exception) as raised:
        operation()
    assert not isinstance(raised.value, AssertionError)
    assert secret.stats.attempts == 1, "retried"
    assert source.fetches == 0, "the secret was read again: the error was taken for a rotation"
    assert secret.stats.auth_failures == 0
    return raised.value


@contextlib.contextmanager
def closed_port() -> Iterator[int]:
    """A loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    yield port


DRIVER_ERRORS = {
    "postgres": "psycopg2",
    "mariadb": "pymysql",
    "redis": "redis",
}


def from_driver(exc: BaseException, engine: str) -> bool:
    return type(exc).__module__.split(".")[0] == DRIVER_ERRORS[engine]


@integration
def test_a_wrong_password_is_read_again_and_retried(server: Any) -> None:
    username, password = login(server)
    secret, source = secret_for(value_for(server, username, password + "-wrong"))
    secret.policy = RetryPolicy(budget=0.3, first_delay=0.05, max_delay=0.1)

    with pytest.raises(Exception) as raised:
        use(server.engine, secret, str(server.ca_file))()

    assert from_driver(raised.value, server.engine)
    assert source.fetches >= 1 and secret.stats.auth_failures >= 2


@integration
def test_a_network_error_passes_through_unchanged(server: Any) -> None:
    username, password = login(server)
    with closed_port() as port:
        secret, source = secret_for(value_for(server, username, password, port=port))
        error = expect_unchanged(use(server.engine, secret, str(server.ca_file)), secret, source)
    assert from_driver(error, server.engine)


@integration
def test_a_tls_verification_failure_passes_through_unchanged(server: Any) -> None:
    import trustme

    username, password = login(server)
    secret, source = secret_for(value_for(server, username, password))
    with tempfile.TemporaryDirectory() as directory:
        stranger = Path(directory) / "other-ca.pem"
        trustme.CA().cert_pem.write_to_path(str(stranger))  # a CA that did not sign the server
        error = expect_unchanged(use(server.engine, secret, str(stranger)), secret, source)
    assert from_driver(error, server.engine) or isinstance(error, OSError)
    assert "certificate" in str(error).lower() or "ssl" in str(error).lower()


@integration
def test_a_sql_error_passes_through_unchanged(server: Any) -> None:
    username, password = login(server)
    secret, source = secret_for(value_for(server, username, password))
    statement = "NOSUCHCOMMAND x" if server.engine == "redis" else "SELEC 1"

    error = expect_unchanged(
        use(server.engine, secret, str(server.ca_file), statement), secret, source
    )

    assert from_driver(error, server.engine)


@integration
def test_a_permission_error_passes_through_unchanged(server: Any) -> None:
    if server.engine == "redis":
        username, password = login(server, acl=("~*", "+ping", "+auth", "+hello"))
        statement = "GET some-key"  # NOPERM
    else:
        username, password = login(server)
        # the application's user may read neither PostgreSQL's password hashes nor MySQL's
        statement = (
            "SELECT rolpassword FROM pg_authid"
            if server.engine == "postgres"
            else "SELECT authentication_string FROM mysql.user"
        )
    secret, source = secret_for(value_for(server, username, password))

    error = expect_unchanged(
        use(server.engine, secret, str(server.ca_file), statement), secret, source
    )

    assert from_driver(error, server.engine)
    assert "denied" in str(error).lower() or "permission" in str(error).lower()
