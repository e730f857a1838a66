"""Run the template's Lambda handlers in this process, the way Lambda would call them.

Each invocation gets the function's own environment (laid over the process environment for
that thread only), a Lambda-shaped context with a deadline, the function's timeout enforced,
and an error payload shaped like Lambda's (``errorType`` is what Step Functions matches on).
"""

from __future__ import annotations

import importlib.util
import logging
import sys
import threading
import time
import traceback
import types
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rotation_core import config
from rotation_core.observability import logger as _service_logger  # creates the handler we copy
from rotator.template import FunctionSpec

SERVICE_LOGGER = "secret-rotation"


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

    @property
    def failed(self) -> bool:
        return self.error is not None


def rotation_step(invocation: Invocation) -> dict[str, Any] | None:
    """What a router invocation did (step, secret, status, execution); None for a worker's."""
    event = invocation.event if isinstance(invocation.event, dict) else {}
    if "ClientRequestToken" not in event:
        return None
    payload = invocation.payload if isinstance(invocation.payload, dict) else {}
    execution = str(payload.get("ExecutionArn") or "").rsplit(":", 1)[-1] or "-"
    return {
        "step": event.get("Step"),
        "secret": event.get("SecretId"),
        "status": f"FAILED {invocation.error.get('errorType')}" if invocation.error else "done",
        "seconds": round(invocation.duration, 2),
        "execution": execution,
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
        self._attach_sink()

    def _attach_sink(self) -> None:
        service_logger = logging.getLogger(_service_logger.name or SERVICE_LOGGER)
        formatter = next((h.formatter for h in service_logger.handlers if h.formatter), None)
        if formatter is not None:
            self.sink.setFormatter(formatter)
        service_logger.addHandler(self.sink)

    def close(self) -> None:
        logging.getLogger(SERVICE_LOGGER).removeHandler(self.sink)

    def find(self, name_or_arn: str) -> FunctionSpec | None:
        key = name_or_arn.split(":$LATEST")[0]
        return self._by_arn.get(key) or self._by_name.get(key.rsplit(":", 1)[-1])

    def handler(self, spec: FunctionSpec) -> Callable[..., Any]:
        module_name, function_name = spec.handler.rsplit(".", 1)
        key = (str(spec.code_dir), module_name)
        with self._lock:
            if key not in self._modules:
                path = spec.code_dir / f"{module_name}.py"
                unique = f"_rotator_fn_{spec.code_dir.name}_{module_name}"
                loader = importlib.util.spec_from_file_location(unique, path)
                if loader is None or loader.loader is None:
                    raise ImportError(f"cannot load handler module {path}")
                module = importlib.util.module_from_spec(loader)
                sys.modules[unique] = module
                loader.loader.exec_module(module)
                self._modules[key] = module
            handler: Callable[..., Any] = getattr(self._modules[key], function_name)
        return handler

    def invoke(self, spec: FunctionSpec, event: Any) -> Invocation:
        """Call the handler like Lambda: own environment, context, timeout, error payload."""
        context = LambdaContext(
            function_name=spec.name,
            invoked_function_arn=spec.arn,
            memory_limit_in_mb=spec.memory,
            deadline=time.monotonic() + spec.timeout,
        )
        environment = {
            **spec.environment,
            "AWS_REGION": self._region,
            "AWS_DEFAULT_REGION": self._region,
            "AWS_LAMBDA_FUNCTION_NAME": spec.name,
            "AWS_LAMBDA_FUNCTION_TIMEOUT": str(spec.timeout),
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
        worker.join(spec.timeout)
        if worker.is_alive():
            outcome = {
                "error": {
                    "errorType": "Sandbox.Timedout",
                    "errorMessage": f"Task timed out after {spec.timeout:.2f} seconds",
                }
            }
        invocation = Invocation(
            function=spec.name,
            event=event,
            payload=outcome.get("payload"),
            error=outcome.get("error"),
            duration=time.monotonic() - started,
        )
        with self._lock:
            self.invocations.append(invocation)
        for hook in list(self.after_invoke):
            hook(invocation)
        return invocation


def _error_payload(exc: BaseException, request_id: str) -> dict[str, Any]:
    frames = traceback.format_tb(exc.__traceback__)
    return {
        "errorMessage": str(exc),
        "errorType": type(exc).__name__,
        "requestId": request_id,
        "stackTrace": [line.rstrip() for line in frames],
    }
