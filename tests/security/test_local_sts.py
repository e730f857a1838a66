"""Attack class 9: the local STS accepts what AWS's refuses.

The multi-credential strategy trusts STS to say whether a key pair works (createSecret's proof
that AWSCURRENT holds a working key, testSecret's check of the new one, the retirement's check
that the old one no longer works). Locally, STS must refuse what AWS refuses: old signed
requests (SigV4 replays), temporary ``ASIA`` keys signed with the wrong secret, and key ids it
never issued. AWS: "a request must reach AWS within five minutes of the time stamp in the
request. Otherwise, AWS denies the request."
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_aws-signing.html)
"""

from __future__ import annotations

import datetime
import json
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

import boto3
import pytest
from botocore.exceptions import ClientError

from tests.security.conftest import iam_secret


def _sts(rt: Any, key_id: str, secret: str, token: str | None = None) -> Any:
    return boto3.client(
        "sts",
        region_name=rt.region,
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        aws_session_token=token,
    )


def _refusal(call: Any) -> str | None:
    """The error code STS answers with, or None when it accepted the request."""
    try:
        call()
    except ClientError as exc:
        return str(exc.response["Error"]["Code"])
    return None


@contextmanager
def _signed_at(moment: datetime.datetime) -> Iterator[None]:
    """Requests signed in this block carry ``moment`` as their signing time: a request
    recorded then and replayed now."""
    with mock.patch("botocore.auth.get_current_datetime", return_value=moment):
        yield


def test_a_signed_request_replayed_twenty_minutes_later_is_refused(runtime: Any) -> None:
    """Attacker: captured one signed GetCallerIdentity request of an IAM user (a proxy log, a
    debug dump) and replays it 20 minutes later; it never held the secret key.

    Today: the local STS checks the signature but not its age: the replay is accepted, so a
    retired key's "no longer works" check or a proof of a working key can be satisfied by an
    old request.

    Must hold: STS answers SignatureDoesNotMatch (AWS's "Signature expired") or RequestExpired;
    the same key signing now is accepted.
    """
    _arn, creds = iam_secret(runtime)
    sts = _sts(runtime, creds["access_key_id"], creds["secret_access_key"])
    assert _refusal(sts.get_caller_identity) is None
    old = datetime.datetime.now(datetime.UTC).replace(tzinfo=None) - datetime.timedelta(minutes=20)

    with _signed_at(old):
        refusal = _refusal(sts.get_caller_identity)

    assert refusal in ("SignatureDoesNotMatch", "RequestExpired"), f"replay answered {refusal}"


def test_temporary_credentials_with_a_wrong_secret_are_refused(runtime: Any) -> None:
    """Attacker: knows a temporary access key id (``ASIA...``) and its session token (both
    appear in logs and request headers), not its secret.

    Today: the local STS checks signatures only for IAM user keys: any secret passes.

    Must hold: STS answers SignatureDoesNotMatch for the wrong secret and accepts the right one.
    """
    iam = runtime.client("iam")
    role = iam.create_role(
        RoleName=f"sec-{secrets.token_hex(4)}",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
    )["Role"]["Arn"]
    temporary = runtime.client("sts").assume_role(RoleArn=role, RoleSessionName="victim")[
        "Credentials"
    ]
    assert temporary["AccessKeyId"].startswith("ASIA")
    right = _sts(
        runtime,
        temporary["AccessKeyId"],
        temporary["SecretAccessKey"],
        temporary["SessionToken"],
    )
    wrong = _sts(
        runtime, temporary["AccessKeyId"], "not-" + secrets.token_hex(18), temporary["SessionToken"]
    )

    assert _refusal(wrong.get_caller_identity) == "SignatureDoesNotMatch"
    assert _refusal(right.get_caller_identity) is None


@pytest.mark.parametrize("session_token", [None, "made-up-session-token"], ids=["bare", "token"])
def test_temporary_key_ids_sts_never_issued_are_refused(
    runtime: Any, session_token: str | None
) -> None:
    """Attacker: makes up a temporary key id (``ASIA`` + 16 characters), a secret and
    possibly a session token.

    Today: made-up ``AKIA`` ids are refused, but any ``ASIA`` id is accepted with any secret,
    as the identity ``user/moto``.

    Must hold: STS answers InvalidClientTokenId (or ExpiredToken for the session token) for
    key ids it never issued.
    """
    sts = _sts(runtime, "ASIA" + "Q" * 16, "made-up-secret-" + "s" * 24, session_token)

    refusal = _refusal(sts.get_caller_identity)

    assert refusal in ("InvalidClientTokenId", "ExpiredToken"), f"answered {refusal}"
