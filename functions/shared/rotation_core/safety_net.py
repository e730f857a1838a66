"""The alert safety net: failures that no state machine announced still page someone, once.

Two feeds reach it, and they never overlap:
- Secrets Manager's ``RotationFailed`` event (EventBridge) covers every failed rotation: those
  that never reached a state machine (the router crashed, timed out, lacked a permission,
  refused a malformed event or secret) and those whose step execution failed.
- the CloudWatch alarm on failed *retirement* executions (through its own SNS topic): the
  un-awaited retirements are the only executions Secrets Manager never reports.

Dedupe rule: a failure is announced here only if no failed execution of that secret in the
look-back window published its own alert (its history shows the ``Publish alert`` task
succeeded). The state machine's alert is the primary one; this is the net under it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from rotation_core.observability import logger
from rotation_core.ports import SecretStore
from rotation_core.recovery import ALERT_SCHEMA_VERSION
from rotation_core.router import belongs_to_rotation
from rotation_core.vocabulary import Outcome


class ExecutionHistory(Protocol):
    """What the safety net reads of Step Functions."""

    def executions(self, machine: str) -> list[dict[str, Any]]: ...

    def published_alert(self, execution_arn: str) -> bool: ...


#: publish(subject, body): one message on the alert topic
Publish = Callable[[str, dict[str, Any]], None]


@dataclass(frozen=True)
class SafetyNetConfig:
    alert_topic_arn: str
    rotation_state_machine_arn: str
    retirement_state_machine_arn: str
    router_log_group: str
    region: str
    lookback: timedelta = timedelta(minutes=30)


class SafetyNet:
    def __init__(
        self,
        history: ExecutionHistory,
        publish: Publish,
        secrets: SecretStore,
        config: SafetyNetConfig,
    ) -> None:
        self._history, self._publish_message = history, publish
        self._secrets, self._config = secrets, config

    def handle(self, event: dict[str, Any], now: datetime | None = None) -> dict[str, Any]:
        now = now or datetime.now(UTC)
        if event.get("source") == "aws.secretsmanager":
            return self._rotation_failed(event, now)
        records = event.get("Records") or []
        if records and records[0].get("EventSource") == "aws:sns":
            return self._alarm(event, now)
        logger.warning(
            "ignoring an event the safety net does not know", extra={"keys": sorted(event)}
        )
        return {"Outcome": Outcome.IGNORED}

    # --- Secrets Manager: RotationFailed ----------------------------------------------------------

    def _rotation_failed(self, event: dict[str, Any], now: datetime) -> dict[str, Any]:
        detail = event.get("detail") or {}
        secret_id = (
            (detail.get("additionalEventData") or {}).get("SecretId")
            or (detail.get("requestParameters") or {}).get("secretId")
            or next(iter(event.get("resources") or []), None)
        )
        if not secret_id:
            logger.warning("RotationFailed event without a secret id")
            return {"Outcome": Outcome.IGNORED}
        meta = self._secrets.describe(secret_id)
        arn, name = meta.arn, meta.name
        # The failed rotation left AWSPENDING on its token; only that rotation's executions
        # count (an alert about an earlier rotation of the same secret does not cover this one).
        stages = meta.versions
        token = next(
            (v for v, s in stages.items() if "AWSPENDING" in s and "AWSCURRENT" not in s), None
        )
        mine = [
            e
            # the token names the rotation: however far apart Secrets Manager's retries are,
            # an alert of any earlier execution of this token covers it (no look-back here)
            for e in self._executions(self._config.rotation_state_machine_arn, now, all_time=True)
            if token is not None and belongs_to_rotation(e["name"], arn, token)
        ]
        if any(e["status"] == "RUNNING" for e in mine):
            # the router gave up waiting (its timeout); the execution will announce itself
            logger.info("its execution is still running", extra={"secret_name": name})
            return {"Outcome": Outcome.STILL_RUNNING}
        failed = [e for e in mine if e["status"] == "FAILED"]
        if any(self._announced(e["executionArn"]) for e in failed):
            logger.info("already announced by its execution", extra={"secret_name": name})
            return {"Outcome": Outcome.ALREADY_ANNOUNCED}
        self._publish(
            f"Secret rotation failed: {_short(name)} (outside the state machine)",
            {
                "secret_name": name,
                "secret_arn": arn,
                "error": "RotationFailed",
                "source": "Secrets Manager RotationFailed event",
                "what_happened": (
                    "Secrets Manager reports the rotation failed and no rotation execution "
                    "announced it: the router refused the event or secret, could not write, "
                    "timed out, or lacked a permission."
                ),
                "failed_executions": [e["executionArn"] for e in failed],
                "rolled_back": "nothing: no execution ran to completion of a change",
                "router_logs": self._log_url(),
                "next_steps": (
                    "Read the router's log lines for this secret (error_class and reason name "
                    "the problem), fix it, then run rotate-secret again."
                ),
            },
        )
        return {"Outcome": Outcome.ANNOUNCED}

    # --- CloudWatch alarm on failed executions ----------------------------------------------------

    def _alarm(self, event: dict[str, Any], now: datetime) -> dict[str, Any]:
        # Only the failures inside the alarm's own evaluation window: a later notification
        # must not announce again what an earlier one did.
        alarm = _alarm_message(event)
        changed = _parse_time(alarm.get("StateChangeTime")) or now
        window = timedelta(seconds=_period(alarm) * _evaluation_periods(alarm) + 60)
        failed = [
            e
            for e in self._executions(self._config.retirement_state_machine_arn, changed)
            if e["status"] in _UNFINISHED and changed - window <= _stopped(e) <= changed
        ]
        silent = [e for e in failed if not self._announced(e["executionArn"])]
        for execution in silent:
            self._publish(
                "Credential retirement failed without its own alert",
                {
                    "error": "AlertNotPublished",
                    "execution_arn": execution["executionArn"],
                    "execution_name": execution["name"],
                    "what_happened": "A retirement execution failed and its own alert was not published.",
                    "next_steps": "Open the execution; its failed state's error names the problem.",
                    "console_url": _console_url(self._config.region, execution["executionArn"]),
                },
            )
        return {
            "Outcome": Outcome.ANNOUNCED if silent else Outcome.ALREADY_ANNOUNCED,
            "Announced": len(silent),
        }

    # --- helpers ----------------------------------------------------------------------------------

    def _executions(
        self, machine: str, now: datetime, *, all_time: bool = False
    ) -> list[dict[str, Any]]:
        """Executions running now or stopped in the look-back window (every one: ``all_time``)."""
        since = now - self._config.lookback
        return [
            e
            for e in self._history.executions(machine)
            if all_time or e["status"] == "RUNNING" or _stopped(e) >= since
        ]

    def _announced(self, execution_arn: str) -> bool:
        """True when the execution's ``Publish alert`` task succeeded."""
        return self._history.published_alert(execution_arn)

    def _publish(self, subject: str, body: dict[str, Any]) -> None:
        self._publish_message(subject[:100], {"schema_version": ALERT_SCHEMA_VERSION, **body})
        logger.info("safety-net alert published", extra={"subject": subject[:100]})

    def _log_url(self) -> str:
        region, group = self._config.region, self._config.router_log_group.replace("/", "$252F")
        return (
            f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}"
            f"#logsV2:log-groups/log-group/{group}"
        )


#: how a retirement can end without finishing; the alarm counts all three (metric math)
_UNFINISHED = frozenset({"FAILED", "TIMED_OUT", "ABORTED"})


def _period(alarm: dict[str, Any]) -> int:
    """The alarm's period: top-level for a single metric, per metric for metric math."""
    trigger = alarm.get("Trigger") or {}
    if "Period" in trigger:
        return int(trigger["Period"])
    periods = [
        int(((m.get("MetricStat") or {}).get("Period")) or 0)
        for m in trigger.get("Metrics") or []
        if isinstance(m, dict)
    ]
    return max(periods, default=0) or 300


def _evaluation_periods(alarm: dict[str, Any]) -> int:
    return int((alarm.get("Trigger") or {}).get("EvaluationPeriods", 1))


def _stopped(execution: dict[str, Any]) -> datetime:
    moment = execution.get("stopDate") or execution.get("startDate")
    return _aware(moment) if moment is not None else datetime.now(UTC)


def _alarm_message(event: dict[str, Any]) -> dict[str, Any]:
    try:
        message = json.loads(event["Records"][0]["Sns"]["Message"])
    except (KeyError, IndexError, TypeError, ValueError):
        return {}
    return message if isinstance(message, dict) else {}


def _parse_time(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        return _aware(
            datetime.fromisoformat(text.replace("Z", "+00:00").replace("+0000", "+00:00"))
        )
    except ValueError:
        return None


def _aware(moment: Any) -> datetime:
    if isinstance(moment, datetime):
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return datetime.fromtimestamp(float(moment), UTC)


def _short(name: str, limit: int = 50) -> str:
    return name if len(name) <= limit else name[: limit - 3] + "..."


def _console_url(region: str, execution_arn: str) -> str:
    return (
        f"https://{region}.console.aws.amazon.com/states/home?region={region}"
        f"#/v2/executions/details/{execution_arn}"
    )
