"""Attack class 6: ``rotator local serve`` answering a web page.

Every page open in the developer's browser can send requests to 127.0.0.1, and through DNS
rebinding read the answers as same-origin. The local endpoint holds secrets (and through the
local runtime, database masters), so it must: bind loopback only; refuse a Host header that is
not its own loopback address (DNS rebinding); send no CORS headers; and require requests signed
with a key pair minted at random for each run and printed in its ready line (moto's default
test credentials are public: any page could sign with them).

The ready line's key pair is looked up by name: ``aws_access_key_id``/``aws_secret_access_key``
(or ``access_key_id``/``secret_access_key``), at the top level or in a nested object.
"""

from __future__ import annotations

import datetime
import http.client
import json
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock
from urllib.parse import urlparse

import boto3
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
#: moto's documented test credentials, and what this project's own tests used to send
PUBLIC_KEYS = [("testing", "testing"), ("FOOBARKEY", "FOOBARSECRET"), ("anything", "anything")]
LIST_SECRETS = ("secretsmanager", "secretsmanager.ListSecrets", b"{}")


class Serve:
    """One ``rotator local serve --json`` process and its ready line."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "rotator.cli", "local", "serve", "--json", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            cwd=ROOT,
        )
        self._lines: queue.Queue[str] = queue.Queue()
        self._stderr: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()
        threading.Thread(target=self._drain, daemon=True).start()

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line)
        self._lines.put("")

    def _drain(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self._stderr.append(line)

    def ready_line(self, timeout: float = 90) -> dict[str, Any] | None:
        """The ready line, or None when serve exited without printing one."""
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("serve printed nothing in time") from None
        return json.loads(line) if line.strip() else None

    def stderr(self) -> str:
        return "".join(self._stderr)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


@pytest.fixture(scope="module")
def serve() -> Iterator[dict[str, Any]]:
    run = Serve()
    try:
        ready = run.ready_line()
        assert ready is not None, f"serve exited: {run.stderr()[-2000:]}"
        yield ready
    finally:
        run.stop()


def minted_key(ready: dict[str, Any]) -> tuple[str, str] | None:
    """The key pair the ready line carries, wherever it sits in it."""
    ids = ("aws_access_key_id", "access_key_id", "accesskeyid")
    secrets_ = ("aws_secret_access_key", "secret_access_key", "secretaccesskey")
    found_id = found_secret = None
    stack: list[Any] = [ready]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, value in item.items():
                if isinstance(value, dict | list):
                    stack.append(value)
                elif key.lower() in ids and isinstance(value, str):
                    found_id = value
                elif key.lower() in secrets_ and isinstance(value, str):
                    found_secret = value
        elif isinstance(item, list):
            stack.extend(item)
    return (found_id, found_secret) if found_id and found_secret else None


def signing_key(ready: dict[str, Any]) -> tuple[str, str]:
    """The minted pair; before serve mints one, any key (every request was accepted)."""
    return minted_key(ready) or PUBLIC_KEYS[0]


def _client(ready: dict[str, Any], service: str, key: tuple[str, str]) -> Any:
    return boto3.client(  # type: ignore[call-overload]
        service,
        endpoint_url=ready["endpoint_url"],
        region_name=REGION,
        aws_access_key_id=key[0],
        aws_secret_access_key=key[1],
    )


def raw_request(
    ready: dict[str, Any],
    *,
    key: tuple[str, str] | None,
    host: str | None = None,
    origin: str | None = None,
    method: str = "POST",
    extra_headers: dict[str, str] | None = None,
) -> http.client.HTTPResponse:
    """ListSecrets as a browser (or a script) would send it: optionally signed with ``key``,
    with any Host and Origin header, to the endpoint's real address."""
    endpoint = urlparse(ready["endpoint_url"])
    service, target, body = LIST_SECRETS
    host = host or endpoint.netloc
    headers = {"X-Amz-Target": target, "Content-Type": "application/x-amz-json-1.1"}
    if origin is not None:
        headers["Origin"] = origin
    headers.update(extra_headers or {})
    request = AWSRequest(
        method=method,
        url=f"http://{host}/",
        data=body if method == "POST" else b"",
        headers=headers,
    )
    if key is not None:
        SigV4Auth(Credentials(*key), service, REGION).add_auth(request)
    connection = http.client.HTTPConnection(endpoint.hostname, endpoint.port, timeout=30)
    sent = {k: v for k, v in request.headers.items()}
    sent["Host"] = host
    connection.request(method, "/", body=request.body, headers=sent)
    response = connection.getresponse()
    response.read()
    connection.close()
    return response


def _cors_headers(response: http.client.HTTPResponse) -> list[str]:
    return [f"{k}: {v}" for k, v in response.getheaders() if k.lower().startswith("access-control")]


def test_the_ready_line_carries_a_key_pair_minted_for_this_run(serve: dict[str, Any]) -> None:
    """Attacker: a web page; it knows moto's public test credentials and can guess any fixed
    default.

    Today: the ready line carries no key pair ("any access key works").

    Must hold: the ready line names an access key id and secret that are not public defaults,
    a second run mints a different pair, and requests signed with the pair are served.
    """
    key = minted_key(serve)
    assert key is not None, f"the ready line names no key pair: {sorted(serve)}"
    assert key not in PUBLIC_KEYS and key[0] not in {k for k, _ in PUBLIC_KEYS}
    assert len(key[1]) >= 20
    other = Serve()
    try:
        second = other.ready_line()
    finally:
        other.stop()
    assert second is not None and minted_key(second) not in (None, key)
    assert "SecretList" in _client(serve, "secretsmanager", key).list_secrets()


def test_unsigned_requests_are_refused(serve: dict[str, Any]) -> None:
    """Attacker: a web page posting to the loopback port without any signature.

    Today: moto answers every unsigned request: the page can list and read secrets.

    Must hold: the answer is 403 and carries no data.
    """
    response = raw_request(serve, key=None)

    assert response.status == 403, f"unsigned request answered {response.status}"


@pytest.mark.parametrize("key", PUBLIC_KEYS, ids=[k for k, _ in PUBLIC_KEYS])
def test_requests_signed_with_public_default_keys_are_refused(
    serve: dict[str, Any], key: tuple[str, str]
) -> None:
    """Attacker: a page (or any local process of another user) signing with moto's public
    test credentials, which every moto user knows.

    Today: any key pair is accepted.

    Must hold: the request fails with an authentication error (HTTP 403).
    """
    with pytest.raises(ClientError) as refused:
        _client(serve, "secretsmanager", key).list_secrets()

    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_no_cors_headers_are_sent(serve: dict[str, Any]) -> None:
    """Attacker: a web page on another origin; the browser sends a preflight (OPTIONS), then
    the request with an Origin header, and reads the answer only if CORS allows it.

    Today: moto allows every origin (``Access-Control-Allow-Origin`` reflected or ``*``).

    Must hold: neither the preflight nor a request carrying an Origin gets any
    Access-Control-* header, and the request with an Origin is not served (403).
    """
    preflight = raw_request(
        serve,
        key=None,
        method="OPTIONS",
        origin="http://attacker.example",
        extra_headers={
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type,x-amz-target",
        },
    )
    cross_origin = raw_request(serve, key=signing_key(serve), origin="http://attacker.example")

    assert _cors_headers(preflight) == [], _cors_headers(preflight)
    assert _cors_headers(cross_origin) == [], _cors_headers(cross_origin)
    assert cross_origin.status == 403, f"a cross-origin request answered {cross_origin.status}"


@pytest.mark.parametrize("host", ["attacker.example", "rebind.attacker.example:{port}"])
def test_a_rebound_host_name_is_refused(serve: dict[str, Any], host: str) -> None:
    """Attacker: a page on ``attacker.example`` whose DNS name it re-points at 127.0.0.1 (DNS
    rebinding): the browser then treats the endpoint as same-origin and sends
    ``Host: attacker.example``.

    Today: moto answers whatever the Host header says.

    Must hold: a request whose Host is not the endpoint's loopback address is refused (403),
    even when correctly signed with the minted key pair.
    """
    port = urlparse(serve["endpoint_url"]).port
    response = raw_request(serve, key=signing_key(serve), host=host.format(port=port))

    assert response.status == 403, f"Host {host!r} answered {response.status}"


def test_serve_does_not_bind_a_non_loopback_address() -> None:
    """Attacker: anyone on the developer's network (a café's Wi-Fi) reaching the endpoint when
    serve is asked to bind 0.0.0.0.

    Today: ``--host 0.0.0.0`` binds every interface and prints a ready line.

    Must hold: serve refuses: it exits with a non-zero status, names ``--host`` in its error
    and never prints a ready line.
    """
    run = Serve("--host", "0.0.0.0")  # noqa: S104 - the attack under test
    try:
        ready = run.ready_line()
        run.process.wait(timeout=30) if ready is None else None
    finally:
        run.stop()

    assert ready is None, f"serve bound {ready and ready.get('endpoint_url')}"
    assert run.process.returncode not in (0, None)
    assert "--host" in run.stderr() or "host" in run.stderr().lower()


def test_a_signed_request_replayed_later_is_refused(serve: dict[str, Any]) -> None:
    """Attacker: recorded one request the developer's client signed with the minted key (a
    proxy, a shared terminal log) and replays it 20 minutes later.

    Today: nothing checks signatures at all.

    Must hold: a signature more than five minutes old is refused (403), as AWS refuses it
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_aws-signing.html).
    """
    recorded_at = datetime.datetime.now(datetime.UTC).replace(tzinfo=None) - datetime.timedelta(
        minutes=20
    )
    with mock.patch("botocore.auth.get_current_datetime", return_value=recorded_at):
        response = raw_request(serve, key=signing_key(serve))

    assert response.status == 403, f"a 20-minute-old signature answered {response.status}"
