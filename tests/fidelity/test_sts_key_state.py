"""STS refuses unknown, inactive and not-yet-propagated access keys
(rotator.aws_local.patches.sts_key_state)."""

from __future__ import annotations

import uuid
from typing import Any

from rotator.aws_local.patches.sts_key_state import StsRefusesUnusableKeys
from rotator.checks import access_key_works


def _user_with_key(rt: Any) -> dict[str, str]:
    iam = rt.client("iam")
    user = f"fidelity-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=user)
    key = iam.create_access_key(UserName=user)["AccessKey"]
    return {
        "username": user,
        "access_key_id": key["AccessKeyId"],
        "secret_access_key": key["SecretAccessKey"],
    }


def _deactivate(rt: Any, creds: dict[str, str]) -> None:
    rt.client("iam").update_access_key(
        UserName=creds["username"], AccessKeyId=creds["access_key_id"], Status="Inactive"
    )


def test_an_active_key_works(runtime: Any) -> None:
    assert access_key_works(_user_with_key(runtime), runtime.region)


def test_an_inactive_key_is_refused(runtime: Any) -> None:
    creds = _user_with_key(runtime)
    _deactivate(runtime, creds)
    assert not access_key_works(creds, runtime.region)


def test_a_deleted_key_is_refused(runtime: Any) -> None:
    creds = _user_with_key(runtime)
    runtime.client("iam").delete_access_key(
        UserName=creds["username"], AccessKeyId=creds["access_key_id"]
    )
    assert not access_key_works(creds, runtime.region)


def test_moto_alone_accepts_an_inactive_key(runtime: Any) -> None:
    creds = _user_with_key(runtime)
    _deactivate(runtime, creds)
    with runtime.cloud.suspended(StsRefusesUnusableKeys):
        assert access_key_works(creds, runtime.region)
