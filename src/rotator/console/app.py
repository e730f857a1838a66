"""``rotator local serve --console``: a small Step Functions console for the local stack.

A page on its own loopback port lists the secrets and their rotations (the executions the
router started, grouped by secret and token) and, for one execution, draws the state machine
with the path taken, the failed state and the running state highlighted, and lists its history
events (inputs, outputs, errors; redacted, see :mod:`rotator.console.history`). The page polls
two small JSON endpoints, so a rotation's progress shows while it runs.

It reads everything through boto3 clients of the local endpoint, signed with the run's
operator key, as any AWS client would: ListSecrets/DescribeSecret (never GetSecretValue),
ListExecutions, DescribeExecution, GetExecutionHistory.

The page is for the developer's own browser only, under the same rules as the endpoint
(:mod:`rotator.serve_guard`): it binds loopback only; answers only a ``Host`` that is a loopback
name with its own port (DNS rebinding); refuses requests another site's page makes
(``Origin`` not its own, ``Sec-Fetch-Site: cross-site``); answers GET only; and serves nothing
outside a path holding a token minted for the run (other local users and processes cannot
guess the URL). Responses forbid framing, sniffing, caching and referrers, and the page runs
only its own script (Content-Security-Policy).
"""

from __future__ import annotations

import hmac
import json
import re
import secrets
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from importlib import resources
from typing import Any
from urllib.parse import parse_qs

from rotator.console.history import event_view, path_of, redact
from rotator.console.layout import END, START, machine_layout, svg
from rotator.serve_guard import is_loopback

_HOST = re.compile(r"(\[[0-9a-fA-F:]+\]|[^:\[\]]+)(?::([0-9]{1,5}))?")
_EXECUTION_ARN = re.compile(r"arn:aws[a-z-]*:states:[a-z0-9-]+:[0-9]{12}:execution:[^:\s]+:[^\s]+")
STATIC = {
    "": ("index.html", "text/html; charset=utf-8"),
    "console.js": ("console.js", "text/javascript; charset=utf-8"),
    "console.css": ("console.css", "text/css; charset=utf-8"),
}
SECURITY_HEADERS = [
    (
        "Content-Security-Policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    ),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    ("Cache-Control", "no-store"),
]
TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}


class BadRequestError(ValueError):
    """A request parameter is missing or malformed (the message names it)."""


class ConsoleData:
    """What the page shows, read from the stack through AWS clients."""

    def __init__(self, clients: Callable[[str], Any], machines: dict[str, str]) -> None:
        self._client = clients
        #: logical id -> state machine ARN (RotationStateMachine, RetirementStateMachine)
        self.machines = machines
        #: describe_execution of executions that have ended (they no longer change)
        self._ended: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def _describe(self, arn: str) -> dict[str, Any]:
        with self._lock:
            if arn in self._ended:
                return self._ended[arn]
        found: dict[str, Any] = self._client("stepfunctions").describe_execution(executionArn=arn)
        if found.get("status") in TERMINAL:
            with self._lock:
                self._ended[arn] = found
        return found

    def overview(self) -> dict[str, Any]:
        sm, sfn = self._client("secretsmanager"), self._client("stepfunctions")
        secrets_list: list[dict[str, Any]] = []
        for page in sm.get_paginator("list_secrets").paginate():
            for secret in page["SecretList"]:
                secrets_list.append(
                    {
                        "name": secret["Name"],
                        "arn": secret["ARN"],
                        "rotation_enabled": bool(secret.get("RotationEnabled")),
                        "last_rotated": _when(secret.get("LastRotatedDate")),
                        "stages": secret.get("SecretVersionsToStages", {}),
                        "rotations": [],
                    }
                )
        by_arn = {s["arn"]: s for s in secrets_list}
        rotations: dict[tuple[str, str], dict[str, Any]] = {}
        unmatched: list[dict[str, Any]] = []
        for logical_id, machine in self.machines.items():
            for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=machine):
                for execution in page["executions"]:
                    described = self._describe(execution["executionArn"])
                    try:
                        data = json.loads(described.get("input") or "{}")
                    except ValueError:
                        data = {}
                    data = data if isinstance(data, dict) else {}
                    row = {
                        "arn": execution["executionArn"],
                        "name": execution["name"],
                        "machine": logical_id,
                        "step": str(data.get("Step") or _step_of(execution["name"])),
                        "status": execution["status"],
                        "started": _when(execution.get("startDate")),
                        "stopped": _when(execution.get("stopDate")),
                    }
                    secret_arn, token = data.get("SecretArn"), data.get("Token")
                    if secret_arn in by_arn and isinstance(token, str):
                        rotation = rotations.setdefault(
                            (str(secret_arn), token),
                            {"token": token, "executions": [], "secret": secret_arn},
                        )
                        rotation["executions"].append(row)
                    else:
                        unmatched.append(row)
        for rotation in rotations.values():
            rotation["executions"].sort(key=lambda e: e["started"])
            rotation["started"] = rotation["executions"][0]["started"]
            rotation["status"] = _rotation_status(rotation["executions"])
            by_arn[rotation.pop("secret")]["rotations"].append(rotation)
        for secret in secrets_list:
            secret["rotations"].sort(key=lambda r: r["started"], reverse=True)
        secrets_list.sort(key=lambda s: s["name"])
        return {"secrets": secrets_list, "other_executions": unmatched}

    def execution(self, arn: str) -> dict[str, Any]:
        if not _EXECUTION_ARN.fullmatch(arn):
            raise BadRequestError("arn: expected a Step Functions execution ARN")
        machine_arn = arn.replace(":execution:", ":stateMachine:", 1).rsplit(":", 1)[0]
        logical = next((k for k, v in self.machines.items() if v == machine_arn), None)
        if logical is None:
            raise BadRequestError("arn: not an execution of this stack's state machines")
        sfn = self._client("stepfunctions")
        try:
            described = self._describe(arn)
        except Exception as exc:
            if getattr(exc, "response", {}).get("Error", {}).get("Code") in (
                "ExecutionDoesNotExist",
                "InvalidArn",
            ):
                raise BadRequestError("arn: no such execution") from None
            raise
        events: list[dict[str, Any]] = []
        for page in sfn.get_paginator("get_execution_history").paginate(executionArn=arn):
            events.extend(page["events"])
        machine = "retirement" if logical == "RetirementStateMachine" else "rotation"
        layout = machine_layout(machine)
        edges = {(s, t) for s, t, _l, _e, _p in layout.edges}
        status = str(described.get("status"))
        path = path_of(events, edges, status)
        picture = svg(
            layout,
            visited=frozenset(path["visited"]),
            failed=frozenset(path["failed"]),
            current=frozenset(path["current"]),
            taken=frozenset(path["taken"]),
        )
        shown = {START: "start", END: "end"}
        return {
            "arn": arn,
            "name": described.get("name"),
            "machine": logical,
            "status": status,
            "started": _when(described.get("startDate")),
            "stopped": _when(described.get("stopDate")),
            "input": redact(described.get("input") or ""),
            "output": redact(described.get("output") or ""),
            "error": described.get("error") or "",
            "cause": redact(described.get("cause") or ""),
            "failed_states": sorted(shown.get(s, s) for s in path["failed"]),
            "current_states": sorted(path["current"]),
            "visited_states": sorted(shown.get(s, s) for s in path["visited"]),
            "events": [event_view(e) for e in events],
            "svg": picture,
        }


def _when(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime) else ""


def _step_of(name: str) -> str:
    return name.split("-", 1)[0]


def _rotation_status(executions: list[dict[str, Any]]) -> str:
    statuses = [e["status"] for e in executions]
    if "RUNNING" in statuses:
        return "RUNNING"
    if any(s in ("FAILED", "TIMED_OUT", "ABORTED") for s in statuses[-1:]):
        return "FAILED"
    if executions[-1]["step"] == "finishSecret" and statuses[-1] == "SUCCEEDED":
        return "SUCCEEDED"
    return "IN PROGRESS"


class ConsoleApp:
    """The WSGI application: the page, its script and style, and two JSON endpoints."""

    def __init__(self, data: ConsoleData, token: str) -> None:
        self.data = data
        self.token = token
        self.port: int | None = None

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        status, content_type, body = self._answer(environ)
        start_response(
            status,
            [
                ("Content-Type", content_type),
                ("Content-Length", str(len(body))),
                *SECURITY_HEADERS,
            ],
        )
        return [body]

    def _answer(self, environ: dict[str, Any]) -> tuple[str, str, bytes]:
        refusal = self._refusal(environ)
        if refusal is not None:
            return "403 Forbidden", "text/plain; charset=utf-8", refusal.encode()
        path = environ.get("PATH_INFO", "")
        prefix, _, rest = path.lstrip("/").partition("/")
        if not hmac.compare_digest(prefix.encode(), self.token.encode()):
            return "404 Not Found", "text/plain; charset=utf-8", b"not found"
        if rest in STATIC:
            filename, content_type = STATIC[rest]
            text = resources.files("rotator.console").joinpath("static", filename).read_bytes()
            return "200 OK", content_type, text
        query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        try:
            if rest == "api/overview":
                return _json("200 OK", self.data.overview())
            if rest == "api/execution":
                arns = query.get("arn", [])
                if len(arns) != 1:
                    raise BadRequestError("arn: give exactly one execution ARN")
                return _json("200 OK", self.data.execution(arns[0]))
        except BadRequestError as exc:
            return _json("400 Bad Request", {"error": str(exc)})
        except Exception as exc:  # the endpoint went away, a throttle, ...: say which, no more
            code = getattr(exc, "response", {}).get("Error", {}).get("Code")
            return _json(
                "502 Bad Gateway", {"error": f"reading the stack: {code or type(exc).__name__}"}
            )
        return "404 Not Found", "text/plain; charset=utf-8", b"not found"

    def _refusal(self, environ: dict[str, Any]) -> str | None:
        match = _HOST.fullmatch(environ.get("HTTP_HOST", ""))
        if match is None or not is_loopback(match.group(1)):
            return "Host must be this loopback address"
        if self.port is not None and match.group(2) and int(match.group(2)) != self.port:
            return "Host must be this loopback address"
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            return "only GET is served"
        origin = environ.get("HTTP_ORIGIN")
        own = f"http://{environ.get('HTTP_HOST', '')}"
        if origin is not None and origin != own:
            return "requests from other sites are refused"
        if environ.get("HTTP_SEC_FETCH_SITE", "same-origin") not in ("same-origin", "none"):
            return "requests from other sites are refused"
        return None


def _json(status: str, value: Any) -> tuple[str, str, bytes]:
    return status, "application/json", json.dumps(value, default=str).encode()


@contextmanager
def serve_console(
    runtime: Any, host: str = "127.0.0.1", port: int = 0, token: str | None = None
) -> Iterator[str]:
    """Serve the console for a serving :class:`~rotator.local.LocalRuntime`; yields its URL."""
    import boto3
    from werkzeug.serving import WSGIRequestHandler, make_server

    class Quiet(WSGIRequestHandler):
        def log_request(self, *args: Any, **kwargs: Any) -> None:
            """The page polls every second: no line per request on serve's stderr."""

    if not is_loopback(host):
        raise ValueError(f"refusing to serve the console on {host!r}: loopback only")
    ready = runtime.describe()
    session = boto3.session.Session(
        aws_access_key_id=ready["aws_access_key_id"],
        aws_secret_access_key=ready["aws_secret_access_key"],
        region_name=ready["region"],
    )
    clients: dict[str, Any] = {}
    lock = threading.Lock()

    def client(service: str) -> Any:
        with lock:
            if service not in clients:
                clients[service] = session.client(service, endpoint_url=ready["endpoint_url"])  # type: ignore[call-overload]
            return clients[service]

    app = ConsoleApp(ConsoleData(client, dict(ready["state_machine_arns"])), token or _token())
    bare = host.strip("[]")
    family = socket.AF_INET6 if ":" in bare else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    try:
        listener.bind((bare, port))
        listener.listen(64)
    except OSError:
        listener.close()
        raise
    server = make_server(
        bare,
        listener.getsockname()[1],
        app,
        threaded=True,
        fd=listener.fileno(),
        request_handler=Quiet,
    )
    app.port = int(server.server_address[1])
    thread = threading.Thread(target=server.serve_forever, daemon=True, name="console")
    thread.start()
    shown = f"[{bare}]" if ":" in bare else bare
    try:
        yield f"http://{shown}:{app.port}/{app.token}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
        listener.close()


def _token() -> str:
    return secrets.token_urlsafe(18)
