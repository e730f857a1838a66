"""STS checks SigV4 signatures of IAM user keys (rotator.aws_local.patches.sts_signature)."""

from __future__ import annotations

import uuid
from typing import Any

from rotator.aws_local.patches.sts_signature import StsChecksSignatures
from rotator.checks import access_key_works


def _forged(rt: Any) -> dict[str, str]:
    """A real key id with a made-up secret: what someone who only saw the id could sign with."""
    iam = rt.client("iam")
    user = f"fidelity-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=user)
    key = iam.create_access_key(UserName=user)["AccessKey"]
    return {
        "username": user,
        "access_key_id": key["AccessKeyId"],
        "secret_access_key": "not-" + key["SecretAccessKey"][4:],
    }


def test_a_request_signed_with_the_wrong_secret_is_refused(runtime: Any) -> None:
    assert not access_key_works(_forged(runtime), runtime.region)


def test_moto_alone_accepts_a_request_signed_with_the_wrong_secret(runtime: Any) -> None:
    creds = _forged(runtime)
    with runtime.cloud.suspended(StsChecksSignatures):
        assert access_key_works(creds, runtime.region)


def test_a_request_signed_more_than_five_minutes_ago_is_refused(runtime: Any) -> None:
    import datetime
    from unittest import mock

    iam = runtime.client("iam")
    user = f"fidelity-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=user)
    key = iam.create_access_key(UserName=user)["AccessKey"]
    creds = {
        "username": user,
        "access_key_id": key["AccessKeyId"],
        "secret_access_key": key["SecretAccessKey"],
    }
    then = datetime.datetime.now(datetime.UTC).replace(tzinfo=None) - datetime.timedelta(minutes=6)
    with mock.patch("botocore.auth.get_current_datetime", return_value=then):
        assert not access_key_works(creds, runtime.region)
    assert access_key_works(creds, runtime.region)
