"""Integration tier: real database servers that enforce passwords, started once per session."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from rotator.dbservers import (
    CertificateAuthority,
    DatabaseServer,
    mariadb_available,
    postgres_available,
    redis_available,
    start_mariadb,
    start_postgres,
    start_redis,
)
from rotator.dbservers.tls import CA_BUNDLE_NAME

AVAILABLE: dict[str, Callable[[], bool]] = {
    "postgres": postgres_available,
    "mariadb": mariadb_available,
    "redis": redis_available,
}
SECRET_ENGINE = {"postgres": "postgres", "mariadb": "mariadb", "redis": "redis"}


def require_engine(engine: str) -> None:
    """Skip when the server binary is missing, but fail under CI=true: CI must run everything."""
    if AVAILABLE[engine]():
        return
    reason = f"{engine} server binaries are not installed on this machine"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; CI=true, so this is a failure rather than a skip")
    pytest.skip(reason)


def all_logins(server: DatabaseServer) -> set[str]:
    """Every role / account / ACL user the server knows."""
    if server.engine == "redis":
        client = server.admin_connection()
        try:
            return set(client.acl_users())
        finally:
            client.close()
    query = {
        "postgres": "SELECT rolname FROM pg_roles",
        "mariadb": "SELECT CONCAT(user, '@', host) FROM mysql.user",
    }[server.engine]
    with contextlib.closing(server.admin_connection()) as conn, conn.cursor() as cur:
        cur.execute(query)
        return {row[0] for row in cur.fetchall()}


@pytest.fixture(scope="session")
def test_ca(tmp_path_factory: pytest.TempPathFactory) -> CertificateAuthority:
    """The CA of every server in this session: ``.directory`` (CA_BUNDLE_DIR) holds
    ``test-ca.pem`` (``.ca_file``), the bundle named ``test-ca``."""
    return CertificateAuthority(tmp_path_factory.mktemp("test-ca"))


@pytest.fixture(scope="session")
def test_ca_stack_settings(test_ca: CertificateAuthority) -> dict[str, dict[str, str]]:
    """``LocalRuntime(**these)`` makes every function trust the session's test CA: the stack
    parameter ``CaBundle=test-ca`` and ``CA_BUNDLE_DIR`` pointing at the CA's directory."""
    return {
        "parameter_overrides": {"CaBundle": CA_BUNDLE_NAME},
        "function_environment": {"CA_BUNDLE_DIR": str(test_ca.directory)},
    }


@pytest.fixture(scope="session")
def postgres_server(test_ca: CertificateAuthority) -> Iterator[DatabaseServer]:
    require_engine("postgres")
    with start_postgres(ca=test_ca) as server:
        yield server


@pytest.fixture(scope="session")
def mariadb_server(test_ca: CertificateAuthority) -> Iterator[DatabaseServer]:
    require_engine("mariadb")
    with start_mariadb(ca=test_ca) as server:
        yield server


@pytest.fixture(scope="session")
def redis_server(test_ca: CertificateAuthority) -> Iterator[DatabaseServer]:
    require_engine("redis")
    with start_redis(ca=test_ca) as server:
        yield server


@pytest.fixture(params=["postgres", "mariadb"])
def db_server(request: pytest.FixtureRequest) -> DatabaseServer:
    server: DatabaseServer = request.getfixturevalue(f"{request.param}_server")
    return server


def new_password() -> str:
    return "Init-" + secrets.token_urlsafe(18)


def unique_name(prefix: str = "app") -> str:
    return f"{prefix}_{secrets.token_hex(4)}"


def database_secret(
    server: DatabaseServer, username: str, password: str, **extra: Any
) -> dict[str, Any]:
    """An AWS-shaped secret for ``username`` on ``server``."""
    secret: dict[str, Any] = {
        "engine": SECRET_ENGINE[server.engine],
        "host": server.host,
        "port": server.port,
        "username": username,
        "password": password,
    }
    if server.engine != "redis":
        secret["dbname"] = "app"
    return {**secret, **extra}


#: the rotation group (tag SecretRotationGroup) the test masters and secrets share
GROUP = "it-group"
GROUP_TAGS = [{"Key": "SecretRotationGroup", "Value": GROUP}]


def create_app_user(
    rt: Any,
    server: DatabaseServer,
    username: str | None = None,
    *,
    group: str | None = GROUP,
    **extra: Any,
) -> tuple[str, str, str]:
    """Create a login on ``server`` and its secret (in rotation group ``group``); returns
    (secret ARN, username, password)."""
    username = username or unique_name()
    password = new_password()
    server.create_login(username, password)
    tags = [{"Key": "SecretRotationGroup", "Value": group}] if group else []
    arn = rt.client("secretsmanager").create_secret(
        Name=f"it/{server.engine}/{secrets.token_hex(4)}",
        SecretString=json.dumps(database_secret(server, username, password, **extra)),
        Tags=tags,
    )["ARN"]
    return arn, username, password


def create_master(rt: Any, server: DatabaseServer, *, group: str = GROUP) -> str:
    """A superuser on ``server`` and its secret, tagged so the stack's workers may read it
    (SecretRotationMaster) and may use it for the secrets of ``group`` (SecretRotationGroup).
    Its secret names no database: a master works in its own (the engine's default)."""
    username, password = unique_name("master"), new_password()
    server.create_login(username, password, superuser=True)
    value = database_secret(server, username, password)
    value.pop("dbname", None)
    return str(
        rt.client("secretsmanager").create_secret(
            Name=f"it/{server.engine}/master/{secrets.token_hex(4)}",
            SecretString=json.dumps(value),
            Tags=[
                {"Key": "SecretRotationMaster", "Value": rt.stack_name},
                {"Key": "SecretRotationGroup", "Value": group},
            ],
        )["ARN"]
    )


def secret_value(rt: Any, arn: str, **kwargs: Any) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(
        rt.client("secretsmanager").get_secret_value(SecretId=arn, **kwargs)["SecretString"]
    )
    return value
