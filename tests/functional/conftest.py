"""Functional tier: the real handlers and state machine on moto; no database server."""

from __future__ import annotations

import json
from typing import Any

UNREACHABLE = {
    "engine": "postgres",
    "host": "127.0.0.1",
    "port": 9,  # discard port: nothing listens, connections are refused at once
    "username": "app",
    "password": "initial-password-not-for-logs",
    "dbname": "orders",
}


def create_secret(
    rt: Any, name: str, value: dict[str, Any], tags: dict[str, str] | None = None
) -> str:
    kwargs: dict[str, Any] = {"Name": name, "SecretString": json.dumps(value)}
    if tags:
        kwargs["Tags"] = [{"Key": k, "Value": v} for k, v in tags.items()]
    return str(rt.client("secretsmanager").create_secret(**kwargs)["ARN"])


def versions(rt: Any, secret_id: str) -> dict[str, list[str]]:
    return dict(
        rt.client("secretsmanager").describe_secret(SecretId=secret_id)["VersionIdsToStages"]
    )


def event(step: str, secret_id: str, token: str, **extra: Any) -> dict[str, Any]:
    return {"Step": step, "SecretId": secret_id, "ClientRequestToken": token, **extra}


def iam_secret(rt: Any, user: str = "svc-orders") -> tuple[str, dict[str, Any]]:
    """An IAM user with one access key, and its secret: a rotation that needs no server."""
    iam = rt.client("iam")
    iam.create_user(UserName=user, Tags=[{"Key": "SecretRotation", "Value": rt.stack_name}])
    key = iam.create_access_key(UserName=user)["AccessKey"]
    value = {
        "engine": "iam",
        "username": user,
        "access_key_id": key["AccessKeyId"],
        "secret_access_key": key["SecretAccessKey"],
    }
    return create_secret(rt, f"iam/{user}", value), value
