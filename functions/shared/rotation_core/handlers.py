"""Glue between Lambda handlers and the domain: lazily built clients, logging, metrics.

Handlers in ``functions/*/app.py`` stay a few lines long: they name a domain function and
let :func:`worker` / :func:`router_handler` do the parsing and wiring.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from rotation_core import config
from rotation_core.aws import Sealer, SecretReader, SecretWriter
from rotation_core.backends.iam_keys import IamKeys
from rotation_core.exceptions import RotationError
from rotation_core.models import PasswordPolicy, StepInput
from rotation_core.observability import logger, metrics
from rotation_core.router import Router, RouterConfig
from rotation_core.strategies.common import WorkerContext

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]

_CONTEXT_KEYS = [
    "function_name",
    "function_request_id",
    "secret_name",
    "step",
    "strategy",
    "engine",
    "token",
]


def _bind(context: Any) -> None:
    # The function's own log level (the local runtime runs every function in one process).
    logger.setLevel(str(config.setting("POWERTOOLS_LOG_LEVEL") or "INFO").upper())
    # Thread-local keys: in the local runtime the router and its workers share one process.
    logger.thread_safe_append_keys(
        function_name=getattr(context, "function_name", None),
        function_request_id=getattr(context, "aws_request_id", None),
    )


@functools.cache
def _client(service: str, region: str | None) -> Any:
    # Created on first use, not at import: a cold start that fails validation makes no client.
    # Standard retry mode absorbs throttling and 5xx answers with backoff inside the SDK.
    import boto3
    from botocore.config import Config

    return boto3.client(
        service, region_name=region, config=Config(retries={"mode": "standard", "max_attempts": 4})
    )  # type: ignore[call-overload]


def client(service: str) -> Any:
    return _client(service, config.setting("AWS_REGION") or config.setting("AWS_DEFAULT_REGION"))


def _sts_for(key_id: str, secret: str) -> Any:
    """An STS client signing with a given key pair (to test a new access key)."""
    import boto3

    return boto3.client(
        "sts",
        region_name=config.setting("AWS_REGION") or config.setting("AWS_DEFAULT_REGION"),
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
    )


def worker_context() -> WorkerContext:
    key = config.setting("SEALING_KEY_ARN")
    return WorkerContext(
        secrets=SecretReader(client("secretsmanager")),
        sealer=Sealer(client("kms"), key) if key else None,
        iam_keys=lambda: IamKeys(client("iam"), _sts_for),
    )


def worker(step_fn: Callable[[WorkerContext, StepInput], dict[str, Any]]) -> Handler:
    """Wrap a domain step function as a worker Lambda handler."""

    @functools.wraps(step_fn)
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        _bind(context)
        step = StepInput.parse(event)
        logger.thread_safe_append_keys(
            secret_name=step.secret_name,
            step=step.step,
            strategy=step.strategy,
            engine=step.engine,
            token=step.token,
        )
        try:
            result = step_fn(worker_context(), step)
        except RotationError as exc:
            logger.error(
                "step failed", extra={"error_class": type(exc).__name__, "reason": str(exc)}
            )
            raise
        else:
            logger.info("step done", extra={"outcome": result.get("Outcome", "sealed")})
        finally:
            logger.thread_safe_remove_keys(_CONTEXT_KEYS)
        return result

    return handler


def build_router() -> Router:
    defaults = PasswordPolicy(
        length=config.int_setting("PASSWORD_LENGTH", PasswordPolicy.length),
        exclude_characters=config.setting("EXCLUDE_CHARACTERS", PasswordPolicy.exclude_characters)
        or "",
    )
    defaults.check()
    return Router(
        SecretWriter(client("secretsmanager")),
        client("stepfunctions"),
        Sealer(client("kms"), config.required_setting("SEALING_KEY_ARN")),
        RouterConfig(
            state_machine_arn=config.required_setting("STATE_MACHINE_ARN"),
            retirement_state_machine_arn=config.setting("RETIREMENT_STATE_MACHINE_ARN"),
            default_policy=defaults,
            poll_initial_seconds=config.float_setting("POLL_INITIAL_SECONDS", 0.2),
            poll_max_seconds=config.float_setting("POLL_MAX_SECONDS", 2.0),
        ),
    )


def route(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The router's handler body: one Secrets Manager step, recorded as a metric."""
    _bind(context)
    remaining = getattr(context, "get_remaining_time_in_millis", None)

    def remaining_seconds() -> float:
        return remaining() / 1000.0 if remaining else 900.0

    step = event.get("Step") if isinstance(event, dict) else None
    try:
        result = build_router().handle(event, remaining_seconds)
    except RotationError as exc:
        logger.error(
            "rotation step failed", extra={"error_class": type(exc).__name__, "reason": str(exc)}
        )
        _count("StepFailed", step)
        raise
    else:
        _count("StepSucceeded", step)
        logger.info("rotation step done", extra={"outcome": result["Outcome"]})
    finally:
        logger.thread_safe_remove_keys(_CONTEXT_KEYS)
    return result


def safety_net(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The alert safety net's handler body (RotationFailed events, the failed-executions alarm)."""
    from rotation_core.safety_net import SafetyNet, SafetyNetConfig

    _bind(context)
    region = config.setting("AWS_REGION") or config.setting("AWS_DEFAULT_REGION") or ""
    net = SafetyNet(
        client("stepfunctions"),
        client("sns"),
        client("secretsmanager"),
        SafetyNetConfig(
            alert_topic_arn=config.required_setting("ALERT_TOPIC_ARN"),
            rotation_state_machine_arn=config.required_setting("STATE_MACHINE_ARN"),
            retirement_state_machine_arn=config.required_setting("RETIREMENT_STATE_MACHINE_ARN"),
            router_log_group=config.setting("ROUTER_LOG_GROUP") or "",
            region=region,
        ),
    )
    try:
        return net.handle(event)
    finally:
        logger.thread_safe_remove_keys(_CONTEXT_KEYS)


def _count(name: str, step: Any) -> None:
    if step in ("createSecret", "setSecret", "testSecret", "finishSecret"):
        metrics.add_dimension(name="Step", value=str(step))
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)
    metrics.flush_metrics(raise_on_empty_metrics=False)
