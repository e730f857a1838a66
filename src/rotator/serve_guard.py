"""``rotator local serve`` answers only the developer's own AWS clients, never a web page.

A loopback endpoint that holds secrets is reachable from every page open in the developer's
browser: a page can send requests to 127.0.0.1 (and, through DNS rebinding, read the answers
as same-origin). So the server:

- binds to loopback only;
- answers only requests whose ``Host`` is a loopback name with its own port (a rebound name
  like ``attacker.example`` is refused);
- sends no CORS headers and refuses requests that carry an ``Origin`` (browsers add it; AWS
  SDKs and the CLI do not);
- requires every request to be signed (SigV4, header form) by a key pair minted at random for
  this run and printed in the ready line, or by an IAM user's access key that the stack holds
  (clients test rotated keys with them). moto's default test credentials are public, so any
  page could sign with them: they are refused like any unknown key. A signature older or newer
  than five minutes is refused, as AWS refuses it ("a request must reach AWS within five
  minutes of the time stamp in the request": IAM User Guide, AWS Signature Version 4 for API
  requests, https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_aws-signing.html).
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import re
import secrets
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

LOOPBACK_NAMES = ("localhost",)
MAX_SKEW = timedelta(minutes=5)
_AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256 Credential=([^/]+)/([0-9]{8})/([^/]+)/([^/]+)/aws4_request,\s*"
    r"SignedHeaders=([^,]+),\s*Signature=([0-9a-f]{64})"
)


@dataclass(frozen=True)
class OperatorKey:
    """The key pair a serve run mints for its operator (never the public moto defaults)."""

    access_key_id: str
    secret_access_key: str

    @classmethod
    def mint(cls) -> OperatorKey:
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
        key_id = "AKIALOCAL" + "".join(secrets.choice(alphabet) for _ in range(11))
        return cls(key_id, secrets.token_urlsafe(30))


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class RequestGuard:
    """WSGI middleware in front of moto's server application."""

    def __init__(
        self,
        app: Callable[..., Iterable[bytes]],
        operator: OperatorKey,
        user_secret: Callable[[str], str | None],
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._app = app
        self._operator = operator
        #: the secret of an active IAM user access key the stack holds, or None
        self._user_secret = user_secret
        self._clock = clock
        self.port: int | None = None

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        refusal = self._refusal(environ)
        if refusal is not None:
            status, code, message = refusal
            # the error in the shape the caller's protocol reads (JSON or query/XML)
            if "HTTP_X_AMZ_TARGET" in environ:
                content_type = "application/x-amz-json-1.1"
                body = json.dumps({"__type": code, "message": message}).encode()
            else:
                content_type = "text/xml"
                body = (
                    f'<?xml version="1.0"?><ErrorResponse><Error><Type>Sender</Type>'
                    f"<Code>{code}</Code><Message>{message}</Message></Error></ErrorResponse>"
                ).encode()
            start_response(
                status,
                [
                    ("Content-Type", content_type),
                    ("Content-Length", str(len(body))),
                    ("x-amzn-ErrorType", code),
                ],
            )
            return [body]

        def without_cors(status: str, headers: list[tuple[str, str]], *rest: Any) -> Any:
            kept = [(k, v) for k, v in headers if not k.lower().startswith("access-control-")]
            return start_response(status, kept, *rest)

        return self._app(environ, without_cors)

    # --- the checks, cheapest first ------------------------------------------------------------

    def _refusal(self, environ: dict[str, Any]) -> tuple[str, str, str] | None:
        if not self._host_allowed(environ.get("HTTP_HOST", "")):
            return ("403 Forbidden", "InvalidHost", "Host must be this loopback endpoint")
        if environ.get("HTTP_ORIGIN") is not None or environ.get("REQUEST_METHOD") == "OPTIONS":
            return ("403 Forbidden", "CrossOriginRefused", "browser requests are not served")
        return self._signature_refusal(environ)

    def _host_allowed(self, host_header: str) -> bool:
        match = re.fullmatch(r"(\[[0-9a-fA-F:]+\]|[^:\[\]]+)(?::([0-9]{1,5}))?", host_header)
        if match is None:
            return False
        host, port = match.group(1), match.group(2)
        if not is_loopback(host):
            return False
        return self.port is None or port is None or int(port) == self.port

    def _signature_refusal(self, environ: dict[str, Any]) -> tuple[str, str, str] | None:
        header = environ.get("HTTP_AUTHORIZATION", "")
        match = _AUTHORIZATION.fullmatch(header.strip())
        if match is None:
            return ("403 Forbidden", "MissingAuthenticationToken", "requests must be signed")
        key_id, _day, region, service, signed, signature = match.groups()
        secret = (
            self._operator.secret_access_key
            if hmac.compare_digest(key_id, self._operator.access_key_id)
            else self._user_secret(key_id)
        )
        if secret is None:
            return ("403 Forbidden", "InvalidClientTokenId", "the access key is not known here")
        stamp = environ.get("HTTP_X_AMZ_DATE", "")
        try:
            signed_at = datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        except ValueError:
            return ("403 Forbidden", "IncompleteSignature", "X-Amz-Date is required")
        if abs(self._clock() - signed_at) > MAX_SKEW:
            return ("403 Forbidden", "SignatureExpired", "the signature is older than 5 minutes")
        expected = _signature(environ, key_id, secret, region, service, signed, stamp)
        if expected is None or not hmac.compare_digest(expected, signature):
            return ("403 Forbidden", "SignatureDoesNotMatch", "the signature does not match")
        return None


def _signature(
    environ: dict[str, Any],
    key_id: str,
    secret: str,
    region: str,
    service: str,
    signed: str,
    stamp: str,
) -> str | None:
    """Recompute the request's SigV4 signature with botocore's own signer."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    body = _read_body(environ)
    headers = {
        name[5:].replace("_", "-").lower(): value
        for name, value in environ.items()
        if name.startswith("HTTP_")
    }
    if "CONTENT_TYPE" in environ:
        headers["content-type"] = environ["CONTENT_TYPE"]
    if environ.get("CONTENT_LENGTH"):
        headers["content-length"] = environ["CONTENT_LENGTH"]
    wanted = signed.split(";")
    if any(name not in headers for name in wanted):
        return None
    # the path as the client sent it, still percent-encoded: that is the form it signed
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    query = environ.get("QUERY_STRING", "")
    path = raw or environ.get("PATH_INFO", "/") + (f"?{query}" if query else "")
    url = f"http://{headers['host']}{path}"
    request = AWSRequest(
        method=environ.get("REQUEST_METHOD", "GET"),
        url=url,
        data=body,
        headers={name: headers[name] for name in wanted},
    )
    request.context["timestamp"] = stamp
    auth = SigV4Auth(Credentials(key_id, secret), service, region)
    return str(
        auth.signature(auth.string_to_sign(request, auth.canonical_request(request)), request)
    )


def _read_body(environ: dict[str, Any]) -> bytes:
    """Read the body once and put it back for the application behind the guard."""
    import io

    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    return body


class GuardedServer:
    """moto's server application behind :class:`RequestGuard`, on a loopback port."""

    def __init__(
        self,
        host: str,
        port: int,
        operator: OperatorKey,
        user_secret: Callable[[str], str | None],
    ) -> None:
        if not is_loopback(host):
            raise ValueError(f"refusing to serve on {host!r}: only loopback addresses are allowed")
        self._host, self._port = host, port
        self._operator, self._user_secret = operator, user_secret
        self._server: Any = None
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> tuple[str, int]:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        guard = RequestGuard(
            DomainDispatcherApplication(create_backend_app), self._operator, self._user_secret
        )
        # Bind here: a busy port is then an OSError for the caller to report (werkzeug would
        # print its own advice and exit the process).
        family = socket.AF_INET6 if ":" in self._host.strip("[]") else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        try:
            listener.bind((self._host.strip("[]"), self._port))
            listener.listen(128)
        except OSError:
            listener.close()
            raise
        self._listener = listener
        self._server = make_server(
            self._host.strip("[]"),
            listener.getsockname()[1],
            guard,
            threaded=True,
            request_handler=MotoRequestHandler,
            fd=listener.fileno(),
        )
        host, port = self._server.server_address[:2]
        guard.port = int(port)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return str(host), int(port)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._listener is not None:
            self._listener.close()


def iam_user_secret(access_key_id: str) -> str | None:
    """The secret of an active IAM user access key held in moto's IAM (any account)."""
    from moto.iam.models import iam_backends

    for by_partition in iam_backends.values():
        for backend in by_partition.values():
            for user in list(backend.users.values()):
                for key in user.access_keys:
                    if key.access_key_id == access_key_id and key.status == "Active":
                        return str(key.secret_access_key)
    return None


def serve_guarded(host: str, port: int, operator: OperatorKey) -> Iterator[str]:
    """Context-manager body for LocalRuntime.serve: yields the endpoint URL."""
    server = GuardedServer(host, port, operator, iam_user_secret)
    bound_host, bound_port = server.start()
    try:
        shown = f"[{bound_host}]" if ":" in bound_host else bound_host
        yield f"http://{shown}:{bound_port}"
    finally:
        server.stop()
