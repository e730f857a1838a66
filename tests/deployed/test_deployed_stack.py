"""The stack on a real AWS account: deploy with ``sam deploy``, rotate a secret of each strategy,
tear down.

Runs only when asked (``ROTATOR_DEPLOYED_TESTS=1``: it creates billable resources) and when AWS
credentials exist; otherwise every test skips with the reason. Run it in its own process
(``pytest -n0 tests/deployed``): the local runtime's moto would intercept AWS calls made in a
process where it runs. Servers come from environment variables (an account that may create
users), each engine without one is skipped:

- ``ROTATOR_POSTGRES_URL``  ``postgresql://user:password@host:5432/dbname``
- ``ROTATOR_MYSQL_URL``     ``mysql://user:password@host:3306/dbname``
- ``ROTATOR_REDIS_URL``     ``rediss://user:password@host:6379``
- ``ROTATOR_DEPLOYED_PARAMETERS`` extra ``--parameter-overrides`` (``SubnetIds=...`` and so on)
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

ROOT = Path(__file__).resolve().parents[2]
SAM = ROOT / ".venv-sam" / "bin" / "sam"


def _skip_reason() -> str | None:
    if os.environ.get("ROTATOR_DEPLOYED_TESTS") != "1":
        return "set ROTATOR_DEPLOYED_TESTS=1 to deploy to a real AWS account (billable)"
    try:
        import boto3

        if boto3.session.Session().get_credentials() is None:
            return "no AWS credentials (aws configure, or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)"
        boto3.client("sts").get_caller_identity()
    except Exception as exc:
        return f"AWS credentials do not work: {type(exc).__name__}"
    if not SAM.exists():
        return "the SAM CLI is missing: run make sam"
    return None


# Decided at collection, before any test of this process could start the local moto.
SKIP = _skip_reason()
pytestmark = [pytest.mark.aws, pytest.mark.skipif(SKIP is not None, reason=SKIP or "")]


def _local_cloud_active() -> bool:
    from rotator.aws_local.cloud import LocalCloud

    return LocalCloud._current is not None


@dataclass
class Stack:
    name: str
    router_arn: str
    region: str

    def client(self, service: str) -> Any:
        import boto3

        return boto3.client(service, region_name=self.region)  # type: ignore[call-overload]


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    if _local_cloud_active():
        pytest.skip("the local moto runs in this process: run pytest -n0 tests/deployed alone")
    import boto3

    name = f"rotator-it-{secrets.token_hex(3)}"
    region = boto3.session.Session().region_name or "us-east-1"
    overrides = [
        f"NamePrefix={name}",
        *shlex.split(os.environ.get("ROTATOR_DEPLOYED_PARAMETERS", "")),
    ]
    subprocess.run([str(SAM), "build", "--region", region], cwd=ROOT, check=True)
    try:
        subprocess.run(
            [
                str(SAM),
                "deploy",
                "--stack-name",
                name,
                "--region",
                region,
                "--resolve-s3",
                "--capabilities",
                "CAPABILITY_IAM",
                "CAPABILITY_NAMED_IAM",
                "--no-confirm-changeset",
                "--no-fail-on-empty-changeset",
                "--parameter-overrides",
                *overrides,
            ],
            cwd=ROOT,
            check=True,
        )
        cfn = boto3.client("cloudformation", region_name=region)
        outputs = {
            o["OutputKey"]: o["OutputValue"]
            for o in cfn.describe_stacks(StackName=name)["Stacks"][0]["Outputs"]
        }
        yield Stack(name=name, router_arn=outputs["RouterFunctionArn"], region=region)
    finally:
        subprocess.run(
            [str(SAM), "delete", "--stack-name", name, "--region", region, "--no-prompts"],
            cwd=ROOT,
            check=False,
        )


def _secret(stack: Stack, value: dict[str, Any], tags: dict[str, str] | None = None) -> str:
    sm = stack.client("secretsmanager")
    kwargs: dict[str, Any] = {
        "Name": f"{stack.name}/{secrets.token_hex(4)}",
        "SecretString": json.dumps(value),
    }
    if tags:
        kwargs["Tags"] = [{"Key": k, "Value": v} for k, v in tags.items()]
    return str(sm.create_secret(**kwargs)["ARN"])


def _rotate_and_wait(stack: Stack, arn: str, timeout: float = 600) -> dict[str, Any]:
    """RotateSecret (asynchronous on AWS), then wait until AWSCURRENT moved to its token."""
    sm = stack.client("secretsmanager")
    token = sm.rotate_secret(SecretId=arn, RotationLambdaARN=stack.router_arn)["VersionId"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stages = sm.describe_secret(SecretId=arn)["VersionIdsToStages"]
        if "AWSCURRENT" in stages.get(token, []):
            value: dict[str, Any] = json.loads(sm.get_secret_value(SecretId=arn)["SecretString"])
            return value
        time.sleep(5)
    raise AssertionError(f"rotation of {arn} did not finish in {timeout} s")


def _cleanup(stack: Stack, *arns: str) -> None:
    sm = stack.client("secretsmanager")
    for arn in arns:
        sm.delete_secret(SecretId=arn, ForceDeleteWithoutRecovery=True)


def test_multi_credential_rotates_an_iam_users_access_key(stack: Stack) -> None:
    from rotator.checks import access_key_works

    iam = stack.client("iam")
    user = f"{stack.name}-svc"
    iam.create_user(UserName=user, Tags=[{"Key": "SecretRotation", "Value": stack.name}])
    try:
        key = iam.create_access_key(UserName=user)["AccessKey"]
        arn = _secret(
            stack,
            {
                "engine": "iam",
                "username": user,
                "access_key_id": key["AccessKeyId"],
                "secret_access_key": key["SecretAccessKey"],
            },
        )
        new = _rotate_and_wait(stack, arn)
        assert new["access_key_id"] != key["AccessKeyId"]
        assert access_key_works(new, stack.region)
        _cleanup(stack, arn)
    finally:
        for k in iam.list_access_keys(UserName=user)["AccessKeyMetadata"]:
            iam.delete_access_key(UserName=user, AccessKeyId=k["AccessKeyId"])
        iam.delete_user(UserName=user)


@dataclass
class Server:
    engine: str
    url: Any
    create_login: Callable[[str, str], None]
    drop_login: Callable[[str], None]
    can_login: Callable[[str, str], bool]


def _server(variable: str) -> Server:
    raw = os.environ.get(variable)
    if not raw:
        pytest.skip(f"{variable} is not set")
    url = urlparse(raw)
    if url.scheme.startswith("postgres"):
        import psycopg2
        from psycopg2 import sql

        def pg(user: str | None = None, password: str | None = None) -> Any:
            return psycopg2.connect(
                host=url.hostname,
                port=url.port or 5432,
                user=user or url.username,
                password=password or url.password,
                dbname=url.path.lstrip("/") or "postgres",
                sslmode="require",
                connect_timeout=10,
            )

        def create(user: str, password: str) -> None:
            with pg() as conn, conn.cursor() as cur:
                cur.execute(
                    sql.SQL("CREATE ROLE {} LOGIN PASSWORD %s").format(sql.Identifier(user)),
                    [password],
                )

        def drop(user: str) -> None:
            with pg() as conn, conn.cursor() as cur:
                for name in (user, f"{user}_clone"):
                    cur.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))

        def works(user: str, password: str) -> bool:
            try:
                pg(user, password).close()
                return True
            except Exception:
                return False

        return Server("postgres", url, create, drop, works)
    if url.scheme.startswith("mysql"):
        import pymysql

        def my(user: str | None = None, password: str | None = None) -> Any:
            return pymysql.connect(
                host=url.hostname,
                port=url.port or 3306,
                user=user or url.username,
                password=password or url.password,
                ssl={"check_hostname": False},
                connect_timeout=10,
            )

        def create(user: str, password: str) -> None:
            with my() as conn, conn.cursor() as cur:
                cur.execute("CREATE USER %s@'%%' IDENTIFIED BY %s", [user, password])

        def drop(user: str) -> None:
            with my() as conn, conn.cursor() as cur:
                for name in (user, f"{user}_clone"):
                    cur.execute("DROP USER IF EXISTS %s@'%%'", [name])

        def works(user: str, password: str) -> bool:
            try:
                my(user, password).close()
                return True
            except Exception:
                return False

        return Server("mysql", url, create, drop, works)
    import redis

    def rd(user: str | None = None, password: str | None = None) -> Any:
        return redis.Redis(
            host=url.hostname or "",
            port=url.port or 6379,
            username=user or url.username,
            password=password or url.password,
            ssl=url.scheme == "rediss",
            socket_timeout=10,
        )

    def create_acl(user: str, password: str) -> None:
        rd().acl_setuser(user, enabled=True, passwords=[f"+{password}"], commands=["+ping"])

    def drop_acl(user: str) -> None:
        rd().acl_deluser(user)

    def works_acl(user: str, password: str) -> bool:
        try:
            return bool(rd(user, password).ping())
        except Exception:
            return False

    return Server("redis", url, create_acl, drop_acl, works_acl)


def _database_secret(server: Server, user: str, password: str) -> dict[str, Any]:
    value: dict[str, Any] = {
        "engine": server.engine,
        "host": server.url.hostname,
        "port": server.url.port or {"postgres": 5432, "mysql": 3306, "redis": 6379}[server.engine],
        "username": user,
        "password": password,
    }
    if server.engine != "redis":
        value["dbname"] = server.url.path.lstrip("/") or None
    return {k: v for k, v in value.items() if v is not None}


@pytest.mark.parametrize("variable", ["ROTATOR_POSTGRES_URL", "ROTATOR_MYSQL_URL"])
def test_single_user_rotates_a_database_password(stack: Stack, variable: str) -> None:
    server = _server(variable)
    user, password = f"rot_{secrets.token_hex(4)}", secrets.token_urlsafe(24)
    server.create_login(user, password)
    try:
        arn = _secret(
            stack, _database_secret(server, user, password), {"RotationStrategy": "single-user"}
        )
        new = _rotate_and_wait(stack, arn)
        assert server.can_login(user, new["password"]) and not server.can_login(user, password)
        _cleanup(stack, arn)
    finally:
        server.drop_login(user)


@pytest.mark.parametrize("variable", ["ROTATOR_POSTGRES_URL", "ROTATOR_MYSQL_URL"])
def test_alternating_users_rotate_through_the_master(stack: Stack, variable: str) -> None:
    server = _server(variable)
    group = secrets.token_hex(4)
    master = _secret(
        stack,
        _database_secret(server, server.url.username, server.url.password),
        {"SecretRotationMaster": stack.name, "SecretRotationGroup": group},
    )
    user, password = f"rot_{secrets.token_hex(4)}", secrets.token_urlsafe(24)
    server.create_login(user, password)
    try:
        arn = _secret(
            stack,
            {**_database_secret(server, user, password), "masterarn": master},
            {"SecretRotationGroup": group},
        )
        new = _rotate_and_wait(stack, arn)
        assert new["username"] == f"{user}_clone"
        assert server.can_login(new["username"], new["password"])
        assert server.can_login(user, password), "the previous user keeps working"
        _cleanup(stack, arn, master)
    finally:
        server.drop_login(user)


def test_multi_credential_rotates_a_redis_acl_password(stack: Stack) -> None:
    server = _server("ROTATOR_REDIS_URL")
    user, password = f"rot_{secrets.token_hex(4)}", secrets.token_urlsafe(24)
    server.create_login(user, password)
    try:
        arn = _secret(stack, _database_secret(server, user, password))
        new = _rotate_and_wait(stack, arn)
        assert server.can_login(user, new["password"])
        assert server.can_login(user, password), "the old password works until its retirement"
        _cleanup(stack, arn)
    finally:
        server.drop_login(user)
