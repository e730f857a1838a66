"""The guard in front of ``rotator local serve``: only signed, loopback, non-browser requests."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from rotator.serve_guard import GuardedServer, OperatorKey, RequestGuard, iam_user_secret


@pytest.fixture(scope="module")
def endpoint() -> Iterator[tuple[str, OperatorKey]]:
    from moto import mock_aws

    operator = OperatorKey.mint()
    with mock_aws():
        server = GuardedServer("127.0.0.1", 0, operator, iam_user_secret)
        host, port = server.start()
        try:
            yield f"http://{host}:{port}", operator
        finally:
            server.stop()


def _client(url: str, key_id: str, secret: str) -> Any:
    return boto3.client(
        "secretsmanager",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
    )


def test_requests_signed_with_the_minted_key_are_served(
    endpoint: tuple[str, OperatorKey],
) -> None:
    url, operator = endpoint
    client = _client(url, operator.access_key_id, operator.secret_access_key)
    assert client.list_secrets()["SecretList"] == []


@pytest.mark.parametrize(
    ("key_id", "secret"),
    [("testing", "testing"), ("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")],
)
def test_the_public_moto_default_credentials_are_refused(
    endpoint: tuple[str, OperatorKey], key_id: str, secret: str
) -> None:
    url, _operator = endpoint
    with pytest.raises(ClientError) as raised:
        _client(url, key_id, secret).list_secrets()
    assert raised.value.response["Error"]["Code"] == "InvalidClientTokenId"


def test_the_minted_key_id_with_another_secret_is_refused(
    endpoint: tuple[str, OperatorKey],
) -> None:
    url, operator = endpoint
    with pytest.raises(ClientError) as raised:
        _client(url, operator.access_key_id, "not-the-secret").list_secrets()
    assert raised.value.response["Error"]["Code"] == "SignatureDoesNotMatch"


def _raw(url: str, headers: dict[str, str], method: str = "POST") -> tuple[int, dict[str, str]]:
    request = urllib.request.Request(  # noqa: S310 - a loopback URL the test started
        url,
        data=b'{"MaxResults": 1}' if method == "POST" else None,
        method=method,
        headers={
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": "secretsmanager.ListSecrets",
            **headers,
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
            return response.status, dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers)


def test_an_unsigned_request_is_refused(endpoint: tuple[str, OperatorKey]) -> None:
    url, _operator = endpoint
    assert _raw(url, {})[0] == 403


def test_a_browser_preflight_gets_no_cors_grant(endpoint: tuple[str, OperatorKey]) -> None:
    url, _operator = endpoint
    status, headers = _raw(
        url,
        {"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        method="OPTIONS",
    )
    assert status == 403
    assert not any(name.lower().startswith("access-control-") for name in headers)


def test_a_rebound_host_name_is_refused(endpoint: tuple[str, OperatorKey]) -> None:
    url, _operator = endpoint
    port = url.rsplit(":", 1)[1]
    assert _raw(url, {"Host": f"attacker.example:{port}"})[0] == 403


def test_serving_on_a_non_loopback_address_is_refused() -> None:
    with pytest.raises(ValueError, match="loopback"):
        GuardedServer("0.0.0.0", 0, OperatorKey.mint(), iam_user_secret)  # noqa: S104


def test_a_signature_older_than_five_minutes_is_refused() -> None:
    operator = OperatorKey.mint()
    seen: list[str] = []

    def app(environ: dict[str, Any], start: Any) -> list[bytes]:
        seen.append("served")
        start("200 OK", [])
        return [b"ok"]

    later = datetime.now(UTC) + timedelta(minutes=6)
    guard = RequestGuard(app, operator, lambda _k: None, clock=lambda: later)
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    request = AWSRequest(
        method="POST", url="http://127.0.0.1:1/", data=b"{}", headers={"Host": "127.0.0.1:1"}
    )
    SigV4Auth(
        Credentials(operator.access_key_id, operator.secret_access_key), "sts", "us-east-1"
    ).add_auth(request)
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/",
        "QUERY_STRING": "",
        "CONTENT_LENGTH": "2",
        "wsgi.input": __import__("io").BytesIO(b"{}"),
        **{"HTTP_" + k.upper().replace("-", "_"): v for k, v in request.headers.items()},
    }
    statuses: list[str] = []
    guard(environ, lambda status, headers, *rest: statuses.append(status))
    assert statuses == ["403 Forbidden"] and seen == []


def test_a_signed_request_with_an_encoded_path_is_served(
    endpoint: tuple[str, OperatorKey],
) -> None:
    """REST APIs put ARNs in the path (Lambda Invoke): the signature covers the encoded form."""
    url, operator = endpoint
    client = boto3.client(
        "lambda",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id=operator.access_key_id,
        aws_secret_access_key=operator.secret_access_key,
    )
    with pytest.raises(ClientError) as raised:
        client.get_function(FunctionName="arn:aws:lambda:us-east-1:123456789012:function:nope")
    assert raised.value.response["Error"]["Code"] == "ResourceNotFoundException"
