"""Small checks the demo and the tests make the way a client would."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def access_key_works(creds: dict[str, Any], region: str, endpoint_url: str | None = None) -> bool:
    """True if STS accepts the access key and says it belongs to ``creds['username']``."""
    import boto3

    sts = boto3.client(
        "sts",
        region_name=region,
        endpoint_url=endpoint_url,
        aws_access_key_id=creds["access_key_id"],
        aws_secret_access_key=creds["secret_access_key"],
    )
    try:
        return str(sts.get_caller_identity()["Arn"]).endswith(f":user/{creds['username']}")
    except Exception:
        return False


def eventually(predicate: Callable[[], bool], timeout: float = 30, interval: float = 0.2) -> bool:
    """Poll ``predicate`` until it holds (True) or ``timeout`` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())
