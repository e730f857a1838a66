"""The composition root: Lambda handlers wired to the domain through the adapters, once.

Handlers in ``functions/*/app.py`` stay a few lines long: they name a domain function and let
:func:`worker` / :func:`route` / :func:`safety_net` parse the event, read the settings once,
build the adapters (clients lazily, cached per process) and hand the ports to the domain.
Nothing below this module imports an adapter on its own.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable
from typing import Any

from rotation_core import adapters, telemetry
from rotation_core.adapters.credentials import Wiring, backend_for
from rotation_core.adapters.kms import KmsSealer
from rotation_core.adapters.secretsmanager import SecretsManagerReader, SecretsManagerWriter
from rotation_core.adapters.stepfunctions import StepFunctionsRunner
from rotation_core.config import Settings
from rotation_core.connection import ConnectionPolicy
from rotation_core.exceptions import RotationError, UnexpectedError
from rotation_core.models import PasswordPolicy, StepInput
from rotation_core.observability import logger, tracer
from rotation_core.router import Router, RouterConfig
from rotation_core.strategies.common import WorkerContext
from rotation_core.tls import TlsSettings
from rotation_core.vocabulary import Outcome, Step, StepResult

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]

#: every handler is traced; responses and errors never go into the trace (observability.py)
_traced: Callable[[Handler], Handler] = tracer.capture_lambda_handler(
    capture_response=False, capture_error=False
)

_CONTEXT_KEYS = [
    "function_name",
    "function_request_id",
    "secret_name",
    "step",
    "strategy",
    "engine",
    "token",
]


def _bind(context: Any, settings: Settings) -> None:
    # The function's own log level (the local runtime runs every function in one process).
    logger.setLevel(settings.log_level)
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


def _clients(settings: Settings) -> Callable[[str], Any]:
    """Clients of the function's region (cached per process: one per service and region)."""
    return lambda service: _client(service, settings.region)


def _sts_for(region: str | None) -> Callable[[str, str], Any]:
    """STS clients signing with a given key pair (to test an access key)."""

    def sts(key_id: str, secret: str) -> Any:
        import boto3

        return boto3.client(
            "sts", region_name=region, aws_access_key_id=key_id, aws_secret_access_key=secret
        )

    return sts


def connection_policy(context: Any, settings: Settings) -> ConnectionPolicy:
    """TLS policy from the deployment's settings; timeouts from the invocation's deadline."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    return ConnectionPolicy(
        tls=TlsSettings.from_environment(),
        remaining=(lambda: remaining() / 1000.0) if remaining else ConnectionPolicy().remaining,
        scram_only=settings.postgres_scram_only,
    )


def worker_context(context: Any = None, settings: Settings | None = None) -> WorkerContext:
    settings = settings or Settings.load()
    client = _clients(settings)
    policy = connection_policy(context, settings)
    wiring = Wiring(client=client, sts_for=_sts_for(settings.region), policy=policy)
    return WorkerContext(
        secrets=SecretsManagerReader(client("secretsmanager")),
        sealer=KmsSealer(client("kms"), settings.sealing_key_arn)
        if settings.sealing_key_arn
        else None,
        engines=lambda engine: adapters.engine_for(engine, policy),
        credentials=lambda engine: backend_for(engine, wiring),
        retire_after_seconds=settings.retire_after_seconds,
    )


def worker(step_fn: Callable[[WorkerContext, StepInput], StepResult]) -> Handler:
    """Wrap a domain step function as a worker Lambda handler."""

    @functools.wraps(step_fn)
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        settings = Settings.load()
        _bind(context, settings)
        try:
            step = StepInput.parse(event)
            logger.thread_safe_append_keys(
                secret_name=step.secret_name,
                step=str(step.step),
                strategy=str(step.strategy),
                engine=step.engine,
                token=step.token,
            )
            tracer.put_annotation(key="Step", value=str(step.step))
            tracer.put_annotation(key="Strategy", value=str(step.strategy))
            result = step_fn(worker_context(context, settings), step)
        except RotationError as exc:
            logger.error(
                "step failed", extra={"error_class": type(exc).__name__, "reason": str(exc)}
            )
            raise
        except Exception as exc:
            raise _unexpected(
                exc, str(event.get("Step") if isinstance(event, dict) else "")
            ) from None
        else:
            logger.info("step done", extra={"outcome": str(result.outcome or "sealed")})
        finally:
            logger.thread_safe_remove_keys(_CONTEXT_KEYS)
        payload = result.payload()
        if step.step == Step.SET:
            # when the password changed (the single-user outage window starts here); the
            # state machine selects it, so every setSecret answer carries the key
            changed = result.outcome == Outcome.CHANGED
            payload[telemetry.CHANGED_AT] = telemetry.now_iso() if changed else None
        return payload

    return _traced(handler)


def build_router(settings: Settings | None = None) -> Router:
    settings = settings or Settings.load()
    defaults = PasswordPolicy(
        length=int(settings.password_length or PasswordPolicy.length),
        exclude_characters=settings.exclude_characters
        if settings.exclude_characters is not None
        else PasswordPolicy.exclude_characters,
    )
    defaults.check()
    client = _clients(settings)
    return Router(
        SecretsManagerWriter(client("secretsmanager")),
        StepFunctionsRunner(client("stepfunctions")),
        KmsSealer(client("kms"), settings.required("sealing_key_arn")),
        RouterConfig(
            state_machine_arn=settings.required("state_machine_arn"),
            retirement_state_machine_arn=settings.retirement_state_machine_arn,
            default_policy=defaults,
            poll_initial_seconds=settings.poll_initial_seconds,
            poll_max_seconds=settings.poll_max_seconds,
            poll_growth=settings.poll_growth,
        ),
    )


@_traced
def route(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The router's handler body: one Secrets Manager step, recorded as metrics; a finished
    rotation is announced on the default event bus ("Secret rotated")."""
    settings = Settings.load()
    _bind(context, settings)
    remaining = getattr(context, "get_remaining_time_in_millis", None)

    def remaining_seconds() -> float:
        return remaining() / 1000.0 if remaining else 900.0

    step = event.get("Step") if isinstance(event, dict) else None
    if isinstance(step, str):
        tracer.put_annotation(key="Step", value=step[:40])
    began = time.monotonic()
    router: Router | None = None

    def facts() -> telemetry.RotationFacts:  # what the router learnt, once it has run
        return router.facts if router is not None else telemetry.RotationFacts()

    try:
        router = build_router(settings)
        result = router.handle(event, remaining_seconds)
    except RotationError as exc:
        logger.error(
            "rotation step failed", extra={"error_class": type(exc).__name__, "reason": str(exc)}
        )
        _failed(step, facts(), began)
        raise
    except Exception as exc:
        _failed(step, facts(), began)
        raise _unexpected(exc, str(step)) from None
    else:
        logger.info("rotation step done", extra={"outcome": str(result["Outcome"])})
        _done(step, facts(), began, result, settings)
    finally:
        logger.thread_safe_remove_keys(_CONTEXT_KEYS)
    return {k: str(v) if k == "Outcome" else v for k, v in result.items()}


def _failed(step: Any, facts: telemetry.RotationFacts, began: float) -> None:
    telemetry.record_step(step, facts, succeeded=False, seconds=time.monotonic() - began)
    if facts.secret_arn:  # a rotation of a secret this router serves, not a refused event
        telemetry.record_rotation(facts, succeeded=False)


def _done(
    step: Any,
    facts: telemetry.RotationFacts,
    began: float,
    result: dict[str, Any],
    settings: Settings,
) -> None:
    if result["Outcome"] != Outcome.DONE:
        return  # nothing ran (already current, pending already stored)
    execution = str(result.get("ExecutionArn") or "")
    seconds = time.monotonic() - began
    telemetry.record_step(step, facts, succeeded=True, seconds=seconds, execution_arn=execution)
    if step == Step.FINISH:
        telemetry.record_rotation(facts, succeeded=True)
        telemetry.tell_consumers(_client("events", settings.region), facts)


@_traced
def safety_net(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The alert safety net's handler body (RotationFailed events, the failed-executions alarm)."""
    from rotation_core.adapters.aws_errors import aws_errors
    from rotation_core.safety_net import SafetyNet, SafetyNetConfig

    settings = Settings.load()
    _bind(context, settings)
    client = _clients(settings)
    topic = settings.required("alert_topic_arn")

    def publish(subject: str, body: dict[str, Any]) -> None:
        with aws_errors("Publish"):
            client("sns").publish(
                TopicArn=topic, Subject=subject, Message=json.dumps(body, sort_keys=True)
            )

    net = SafetyNet(
        StepFunctionsRunner(client("stepfunctions")),
        publish,
        SecretsManagerReader(client("secretsmanager")),
        SafetyNetConfig(
            alert_topic_arn=topic,
            rotation_state_machine_arn=settings.required("state_machine_arn"),
            retirement_state_machine_arn=settings.required("retirement_state_machine_arn"),
            router_log_group=settings.router_log_group or "",
            region=settings.region or "",
        ),
    )
    try:
        answer = net.handle(event)
        return {k: str(v) if k == "Outcome" else v for k, v in answer.items()}
    finally:
        logger.thread_safe_remove_keys(_CONTEXT_KEYS)


def _unexpected(exc: Exception, step: str) -> UnexpectedError:
    """Any exception outside the taxonomy leaves as UnexpectedError naming only its class:
    drivers put statements, characters and sometimes values into their messages."""
    logger.error(
        "step failed unexpectedly",
        extra={"error_class": "UnexpectedError", "cause_class": type(exc).__name__},
    )
    return UnexpectedError(f"{step} failed with an unexpected {type(exc).__name__}")


@_traced
def probe(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The operator's probe (rotator status/doctor/plan): findings about one secret, no values.

    Reads and logs in only; it has no sealer and its role no write permission.
    """
    from rotation_core.probe import ProbeRequest
    from rotation_core.probe import probe as run_probe

    settings = Settings.load()
    _bind(context, settings)
    try:
        request = ProbeRequest.parse(event)
        # the strategies' own log lines ("password changed"...) describe what a rotation
        # would do: every line of the probe says it is a dry run
        logger.thread_safe_append_keys(secret_name=request.secret_id, dry_run=True)
        policy = connection_policy(context, settings)
        ctx = WorkerContext(
            secrets=SecretsManagerReader(_clients(settings)("secretsmanager")),
            engines=lambda engine: adapters.engine_for(engine, policy),
        )
        answer = run_probe(ctx, request)
    except RotationError as exc:
        logger.error("probe failed", extra={"error_class": type(exc).__name__, "reason": str(exc)})
        raise
    except Exception as exc:
        raise _unexpected(exc, "probe") from None
    else:
        logger.info("probe done", extra={"plan": request.plan})
    finally:
        logger.thread_safe_remove_keys([*_CONTEXT_KEYS, "dry_run"])
    return answer
