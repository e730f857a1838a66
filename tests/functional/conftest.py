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
