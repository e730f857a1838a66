"""What the service tells the outside world about rotations: metrics and the "Secret rotated" event.

Everything here is identifiers, counts and times; never a value. Metrics go to stdout in
CloudWatch's Embedded Metric Format (Powertools), one isolated metric set per emission: the
local runtime runs the router and its workers as threads of one process, and Powertools'
``Metrics`` shares its metric set between instances (``EphemeralMetrics`` does not).
https://docs.aws.amazon.com/powertools/python/latest/core/metrics/#ephemeral-metrics

Metrics (namespace: the template's MetricsNamespace, else the stack name; service dimension
``secret-rotation``):

- ``StepSucceeded`` / ``StepFailed`` (Count), ``StepDuration`` (Seconds, what the router waited
  for the step's execution), ``StepAttempts`` (Count, the execution attempt that ended it), by
  ``Strategy``, ``Engine``, ``Step`` (``Strategy``/``Engine`` are ``unknown`` when the router
  failed before it could read the secret);
- ``RotationSucceeded`` / ``RotationFailed`` (Count), ``RotationDuration`` (Seconds, createSecret's
  execution start to the AWSCURRENT move) and, single-user only, ``OutageWindow`` (Seconds, from
  setSecret's password change to the AWSCURRENT move: clients reading AWSCURRENT are refused
  that long), by ``Strategy``, ``Engine``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from rotation_core.config import setting
from rotation_core.observability import METRICS_NAMESPACE, SERVICE, logger

#: the event consumers match on (source: the stack name)
DETAIL_TYPE = "Secret rotated"
#: the setSecret output field saying when the worker changed the password (ISO 8601, UTC)
CHANGED_AT = "ChangedAt"
#: a step execution's attempt suffix (rotation_core.router.execution_name)
_ATTEMPT = re.compile(r"-[0-9a-f]{24}-([0-9]{1,3})$")
UNKNOWN = "unknown"


@dataclass
class RotationFacts:
    """What the router learnt about the rotation it serves, for metrics and the event."""

    secret_arn: str = ""
    token: str = ""
    strategy: str = UNKNOWN
    engine: str = UNKNOWN
    #: when this token's createSecret execution started
    started: datetime | None = None
    #: when setSecret's worker changed the password (None: nothing changed, or not known)
    changed: datetime | None = None
    #: when the router moved AWSCURRENT
    finished: datetime | None = None


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(value: Any) -> datetime | None:
    """An ISO 8601 time a worker wrote, or None (absent, null or malformed: no metric)."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def changed_at(execution_output: str) -> datetime | None:
    """setSecret's change time from its execution output (``$.result.ChangedAt``)."""
    try:
        output = json.loads(execution_output or "{}")
    except ValueError:
        return None
    result = output.get("result") if isinstance(output, dict) else None
    return parse_time(result.get(CHANGED_AT)) if isinstance(result, dict) else None


def attempt_of(execution_arn: str) -> int:
    """1 for a step's first execution, N for ``<name>-N``."""
    found = _ATTEMPT.search(execution_arn or "")
    return int(found.group(1)) if found else 1


def namespace() -> str:
    return setting("POWERTOOLS_METRICS_NAMESPACE") or METRICS_NAMESPACE


def emit(dimensions: dict[str, str], values: dict[str, tuple[MetricUnit, float]]) -> None:
    """One EMF record: these metrics under these dimensions (and the service's)."""
    record = EphemeralMetrics(namespace=namespace(), service=SERVICE)
    for name, value in dimensions.items():
        record.add_dimension(name=name, value=value or UNKNOWN)
    for name, (unit, number) in values.items():
        record.add_metric(name=name, unit=unit, value=number)
    record.flush_metrics()


def record_step(
    step: Any, facts: RotationFacts, *, succeeded: bool, seconds: float, execution_arn: str = ""
) -> None:
    values: dict[str, tuple[MetricUnit, float]] = {
        "StepSucceeded" if succeeded else "StepFailed": (MetricUnit.Count, 1),
        "StepDuration": (MetricUnit.Seconds, round(seconds, 3)),
    }
    if execution_arn:
        values["StepAttempts"] = (MetricUnit.Count, attempt_of(execution_arn))
    step_name = (
        step if step in ("createSecret", "setSecret", "testSecret", "finishSecret") else None
    )
    emit({"Strategy": facts.strategy, "Engine": facts.engine, "Step": step_name or UNKNOWN}, values)


def record_rotation(facts: RotationFacts, *, succeeded: bool) -> None:
    values: dict[str, tuple[MetricUnit, float]] = {
        "RotationSucceeded" if succeeded else "RotationFailed": (MetricUnit.Count, 1)
    }
    duration = rotation_seconds(facts)
    if succeeded and duration is not None:
        values["RotationDuration"] = (MetricUnit.Seconds, duration)
    if succeeded and facts.strategy == "single-user" and facts.changed and facts.finished:
        window = (facts.finished - facts.changed).total_seconds()
        values["OutageWindow"] = (MetricUnit.Seconds, round(max(window, 0.0), 3))
    emit({"Strategy": facts.strategy, "Engine": facts.engine}, values)


def rotation_seconds(facts: RotationFacts) -> float | None:
    if facts.started is None or facts.finished is None:
        return None
    return round(max((facts.finished - facts.started).total_seconds(), 0.0), 3)


def rotated_event(facts: RotationFacts, source: str) -> dict[str, Any]:
    """The PutEvents entry for a finished rotation (identifiers and a duration only)."""
    detail: dict[str, Any] = {
        "SecretArn": facts.secret_arn,
        "VersionId": facts.token,
        "Strategy": facts.strategy,
        "DurationSeconds": rotation_seconds(facts),
    }
    return {
        "Source": source,
        "DetailType": DETAIL_TYPE,
        "Resources": [facts.secret_arn],
        "Detail": json.dumps(detail, sort_keys=True),
    }


def tell_consumers(events: Any, facts: RotationFacts) -> bool:
    """Put the "Secret rotated" event on the default bus; True when EventBridge took it.

    A failure here is logged and counted (``EventNotSent``), never raised: AWSCURRENT has
    already moved, and failing finishSecret now would report a rotation that succeeded as failed.
    """
    source = setting("EVENT_SOURCE")
    if not source:
        logger.info("no EVENT_SOURCE configured; no rotation event sent")
        return False
    try:
        answer = events.put_events(Entries=[rotated_event(facts, source)])
        sent = not answer.get("FailedEntryCount")
        reason = "" if sent else str((answer.get("Entries") or [{}])[0].get("ErrorCode", ""))
    except Exception as exc:
        sent, reason = False, type(exc).__name__
    if sent:
        logger.info("rotation event sent", extra={"detail_type": DETAIL_TYPE})
    else:
        logger.error("rotation event not sent", extra={"error_class": reason})
        emit({"Strategy": facts.strategy}, {"EventNotSent": (MetricUnit.Count, 1)})
    return sent
