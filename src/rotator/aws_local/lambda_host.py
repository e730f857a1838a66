"""Hand-made: run the deployed Lambda functions' handlers in this process, as Lambda would.

moto's Lambda would run each function's code in a Docker container; the local runtime instead
loads the handler from the source tree the function was packaged from (``CodeUri``) and calls
it in a thread. Everything else comes from the function CloudFormation created in moto: name,
ARN, handler, timeout, memory, environment and execution role.

Each invocation gets the function's own environment (laid over the process environment for
that thread only), a Lambda-shaped context with a deadline, the function's timeout enforced,
and an error payload shaped like Lambda's (``errorType`` is what Step Functions matches on; a
timed-out invocation answers as Lambda does, with a message and no ``errorType``).
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import re
import sys
import threading
import time
import traceback
import types
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rotation_core import config
from rotation_core.observability import logger as _service_logger  # creates the handler we copy

SERVICE_LOGGER = "secret-rotation"


@dataclass
class FunctionSpec:
    """One deployed function, as Lambda knows it, and the source directory of its code."""

    logical_id: str
    name: str
    arn: str
    code_dir: Path
    handler: str
    timeout: int
    memory: int
    environment: dict[str, str]
    role_arn: str = ""
    description: str = ""
    #: the version an invocation runs ("$LATEST" unless a version or alias was invoked)
    version: str = "$LATEST"


@dataclass
class LambdaContext:
    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    deadline: float
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    @property
    def log_stream_name(self) -> str:
        return f"local/{self.aws_request_id}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


@dataclass
class Invocation:
    function: str
    event: Any
    payload: Any
    error: dict[str, Any] | None
    duration: float
    version: str = "$LATEST"

    @property
    def failed(self) -> bool:
        return self.error is not None


def rotation_step(invocation: Invocation) -> dict[str, Any] | None:
    """What a router invocation did (step, secret, status, execution); None for a worker's."""
    event = invocation.event if isinstance(invocation.event, dict) else {}
    if "ClientRequestToken" not in event:
        return None
    payload = invocation.payload if isinstance(invocation.payload, dict) else {}
    execution = str(payload.get("ExecutionArn") or "")
    status = "done"
    if invocation.error:
        # StepFailedError's message is the router's own: "<step> failed with <Class>... (execution
        # <arn>)"; name the worker's class and the execution rather than the wrapper
        message = str(invocation.error.get("errorMessage") or "")
        cause = re.search(r"failed with ([A-Za-z.]+)", message)
        ran = re.search(r"\(execution (arn:[^)\s]+)\)", message)
        status = f"FAILED {cause.group(1) if cause else invocation.error.get('errorType')}"
        execution = ran.group(1) if ran else execution
    return {
        "step": event.get("Step"),
        "secret": event.get("SecretId"),
        "status": status,
        "seconds": round(invocation.duration, 2),
        "execution": execution or "-",
    }


class LogSink(logging.Handler):
    """Keeps every formatted log line the functions emit (for scans and for ``serve``)."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []
        self._lock = threading.Lock()
        self.listeners: list[Callable[[str], None]] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:
            line = record.getMessage()
        with self._lock:
            self.lines.append(line)
        for listener in self.listeners:
            listener(line)


def redirect_function_logs(stream: Any) -> None:
    """Send the functions' log lines (Powertools' stdout handler) to ``stream`` instead."""
    for handler in logging.getLogger(_service_logger.name or SERVICE_LOGGER).handlers:
        if isinstance(handler, logging.StreamHandler) and not isinstance(handler, LogSink):
            handler.setStream(stream)


# Hooks tests use to inject faults: called with (function spec, event) before the handler.
BeforeInvoke = Callable[[FunctionSpec, Any], None]


class FunctionHost:
    """Loads ``functions/<dir>/<module>.py`` handlers and invokes them in-process."""

    def __init__(self, functions: dict[str, FunctionSpec], region: str) -> None:
        self._by_name = {spec.name: spec for spec in functions.values()}
        self._by_arn = {spec.arn: spec for spec in functions.values()}
        self._region = region
        self._modules: dict[tuple[str, str], types.ModuleType] = {}
        self._lock = threading.Lock()
        self.invocations: list[Invocation] = []
        self.before_invoke: list[BeforeInvoke] = []
        self.after_invoke: list[Callable[[Invocation], None]] = []
        self.sink = LogSink()
        #: laid over every function's environment (e.g. CA_BUNDLE_DIR for the tests' CA)
        self.extra_environment: dict[str, str] = {}
        #: function name -> timeout replacing the deployed one (fault tests time workers out)
        self.timeouts: dict[str, int] = {}
        #: qualified version ARN -> the source tree that version was published from (a stack
        #: update publishes new versions from new code; the old ones keep theirs)
        self.version_dirs: dict[str, Path] = {}
        #: (function name, alias) -> the version the alias points to now (set by the runtime)
        self.alias_version: Callable[[str, str], str | None] = lambda _fn, _alias: None
        self._attach_sink()

    def _attach_sink(self) -> None:
        service_logger = logging.getLogger(_service_logger.name or SERVICE_LOGGER)
        formatter = next((h.formatter for h in service_logger.handlers if h.formatter), None)
        if formatter is not None:
            self.sink.setFormatter(formatter)
        service_logger.addHandler(self.sink)

    def open(self) -> None:
        """Collect the functions' log lines again (after :meth:`close`)."""
        self._attach_sink()

    def close(self) -> None:
        logging.getLogger(SERVICE_LOGGER).removeHandler(self.sink)

    def find(self, name_or_arn: str) -> FunctionSpec | None:
        """The function a name, ARN or qualified ARN (``:<version>``, ``:<alias>``) names.

        A version (or the version an alias points to) runs the handler module of the source
        tree it was published from (:attr:`version_dirs`), loaded once per tree. The layer
        (``rotation_core``) is this process's single copy for every version: versions that
        differ in ``rotation_core`` alone run the same layer code here (on AWS each version
        keeps its layer version).
        """
        key = name_or_arn.split(":$LATEST")[0]
        parts = key.split(":")
        qualifier = ""
        if len(parts) == 8 and parts[5] == "function":
            key, qualifier = ":".join(parts[:7]), parts[7]  # a version or alias of the function
        elif len(parts) == 2:
            key, qualifier = parts  # name:qualifier
        spec = self._by_arn.get(key) or self._by_name.get(key.rsplit(":", 1)[-1])
        if spec is None or not qualifier:
            return spec
        version = qualifier if qualifier.isdigit() else self.alias_version(spec.name, qualifier)
        if version is None:
            return spec
        code_dir = self.version_dirs.get(f"{spec.arn}:{version}", spec.code_dir)
        return replace(spec, code_dir=code_dir, version=version)

    def handler(self, spec: FunctionSpec) -> Callable[..., Any]:
        module_name, function_name = spec.handler.rsplit(".", 1)
        key = (str(spec.code_dir), module_name)
        with self._lock:
            if key not in self._modules:
                path = spec.code_dir / f"{module_name}.py"
                tree = hashlib.sha256(str(spec.code_dir).encode()).hexdigest()[:8]
                unique = f"_rotator_fn_{spec.code_dir.name}_{module_name}_{tree}"
                loader = importlib.util.spec_from_file_location(unique, path)
                if loader is None or loader.loader is None:
                    raise ImportError(f"cannot load handler module {path}")
                module = importlib.util.module_from_spec(loader)
                sys.modules[unique] = module
                loader.loader.exec_module(module)
                self._modules[key] = module
            handler: Callable[..., Any] = getattr(self._modules[key], function_name)
        return handler

    def redeployed(self, functions: dict[str, FunctionSpec]) -> None:
        """The stack was updated: ``functions`` as deployed now (their ``$LATEST``)."""
        self._by_name = {spec.name: spec for spec in functions.values()}
        self._by_arn = {spec.arn: spec for spec in functions.values()}

    def functions(self) -> list[FunctionSpec]:
        return list(self._by_arn.values())

    def invoke(self, spec: FunctionSpec, event: Any) -> Invocation:
        """Call the handler like Lambda: own environment, context, timeout, error payload."""
        timeout = self.timeouts.get(spec.name, spec.timeout)
        context = LambdaContext(
            function_name=spec.name,
            invoked_function_arn=spec.arn
            if spec.version == "$LATEST"
            else f"{spec.arn}:{spec.version}",
            function_version=spec.version,
            memory_limit_in_mb=spec.memory,
            deadline=time.monotonic() + timeout,
        )
        environment = {
            **spec.environment,
            **self.extra_environment,
            "AWS_REGION": self._region,
            "AWS_DEFAULT_REGION": self._region,
            "AWS_LAMBDA_FUNCTION_NAME": spec.name,
            "AWS_LAMBDA_FUNCTION_TIMEOUT": str(timeout),
        }
        outcome: dict[str, Any] = {}

        def run() -> None:
            with config.environment(environment):
                try:
                    for hook in list(self.before_invoke):
                        hook(spec, event)
                    outcome["payload"] = self.handler(spec)(event, context)
                except BaseException as exc:
                    outcome["error"] = _error_payload(exc, context.aws_request_id)

        started = time.monotonic()
        worker = threading.Thread(target=run, name=f"lambda:{spec.name}", daemon=True)
        worker.start()
        worker.join(timeout)
        if worker.is_alive():
            outcome = {"error": timed_out(context.aws_request_id, time.monotonic() - started)}
        invocation = Invocation(
            function=spec.name,
            event=event,
            payload=outcome.get("payload"),
            error=outcome.get("error"),
            duration=time.monotonic() - started,
            version=spec.version,
        )
        with self._lock:
            self.invocations.append(invocation)
        for hook in list(self.after_invoke):
            hook(invocation)
        return invocation


def timed_out(request_id: str, seconds: float) -> dict[str, Any]:
    """What Lambda answers for an invocation that ran out of time: a message, no ``errorType``.

    Step Functions names such an error ``Lambda.Unknown`` ("Unhandled errors in Lambda are
    reported as Lambda.Unknown ... These include out-of-memory errors and function timeouts"),
    with the payload quoted in the cause;
    :mod:`rotator.aws_local.patches.lambda_unknown` does the naming locally.
    https://docs.aws.amazon.com/step-functions/latest/dg/bp-lambda-serviceexception.html
    https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html
    (``Sandbox.Timedout`` is the name Lambda documents for a timeout in the Init phase, which
    the in-process host has none of.)
    """
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return {"errorMessage": f"{now} {request_id} Task timed out after {seconds:.2f} seconds"}


def _error_payload(exc: BaseException, request_id: str) -> dict[str, Any]:
    frames = traceback.format_tb(exc.__traceback__)
    return {
        "errorMessage": str(exc),
        "errorType": type(exc).__name__,
        "requestId": request_id,
        "stackTrace": [line.rstrip() for line in frames],
    }
