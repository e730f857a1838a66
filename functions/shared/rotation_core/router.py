"""The Secrets Manager side of rotation: validate, preflight, run one execution per step, write.

The router is the only writer of secret versions and staging labels (invariant 1). It never
puts a secret value into an execution: the state machine sees identifiers and a password
policy; the pending secret comes back sealed with KMS and is opened here.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rotation_core.aws import (
    CURRENT,
    PENDING,
    PREVIOUS,
    Sealer,
    SecretMetadata,
    SecretWriter,
    aws_errors,
    error_code,
    require_stage,
)
from rotation_core.exceptions import (
    PERMANENT_ERRORS,
    TRANSIENT_ERRORS,
    InvalidEventError,
    InvalidSecretError,
    RotationInProgressError,
    RotationNotEnabledError,
    RotationStateError,
    StepFailedError,
)
from rotation_core.models import (
    STEPS,
    STRATEGIES,
    PasswordPolicy,
    check_strategy,
    parse_secret_string,
    secret_kind,
)
from rotation_core.observability import logger
from rotation_core.schema import validate

if TYPE_CHECKING:
    from mypy_boto3_stepfunctions import SFNClient

STRATEGY_TAG = "RotationStrategy"
WRITE_PROBE_TAG = "RotationWriteProbe"
_TERMINAL_FAILURES = frozenset({"FAILED", "TIMED_OUT", "ABORTED"})
_REUSE_SUCCESS = frozenset({"createSecret", "finishSecret"})
_SAFE_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,40}")
_KNOWN_ERRORS = frozenset(cls.__name__ for cls in (*TRANSIENT_ERRORS, *PERMANENT_ERRORS))


@dataclass(frozen=True)
class RouterConfig:
    state_machine_arn: str
    retirement_state_machine_arn: str | None = None
    default_policy: PasswordPolicy = field(default_factory=PasswordPolicy)
    poll_initial_seconds: float = 0.2
    poll_max_seconds: float = 2.0
    #: stop waiting this long before the Lambda would be killed
    safety_margin_seconds: float = 5.0
    max_attempts: int = 25


def resolve_strategy(tags: dict[str, str], current: dict[str, Any]) -> str:
    """Which strategy rotates this secret.

    1. the tag ``RotationStrategy``, if present;
    2. multi-credential for IAM access keys and Redis ACL users (engine ``iam``/``redis``);
    3. alternating-users when the secret has a ``masterarn``;
    4. single-user.
    """
    tagged = tags.get(STRATEGY_TAG)
    if tagged is not None:
        if tagged not in STRATEGIES:
            raise InvalidSecretError(f"tag '{STRATEGY_TAG}' must be one of {', '.join(STRATEGIES)}")
        return tagged
    if current.get("engine") in ("iam", "redis"):
        return "multi-credential"
    return "alternating-users" if "masterarn" in current else "single-user"


def execution_name(step: str, token: str, secret_arn: str, attempt: int) -> str:
    """Deterministic per (secret, step, token, attempt); at most 80 characters."""
    token_part = token if _SAFE_TOKEN.fullmatch(token) else _digest(token, 32)
    base = f"{step}-{token_part}-{_digest(secret_arn, 8)}"
    return base if attempt == 1 else f"{base}-{attempt}"


def belongs_to_rotation(name: str, secret_arn: str, token: str) -> bool:
    """True for an execution this router named for (secret, token): any step, any attempt."""
    for step in (*STEPS, "retire"):
        base = execution_name(step, token, secret_arn, 1)
        if name == base or re.fullmatch(re.escape(base) + r"-[0-9]+", name):
            return True
    return False


def _digest(text: str, size: int) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:size]


def _display_name(name: str, limit: int = 60) -> str:
    return name if len(name) <= limit else name[: limit - 3] + "..."


class Router:
    def __init__(
        self,
        secrets: SecretWriter,
        sfn: SFNClient,
        sealer: Sealer,
        config: RouterConfig,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._secrets = secrets
        self._sfn = sfn
        self._sealer = sealer
        self._config = config
        self._sleep = sleep
        self._clock = clock

    # --- the protocol ------------------------------------------------------------------------

    def handle(self, event: Any, remaining_seconds: Callable[[], float]) -> dict[str, Any]:
        event = validate(event, "event", what="rotation event", error=InvalidEventError)
        step, token = event["Step"], event["ClientRequestToken"]
        metadata = self._secrets.describe(event["SecretId"])
        logger.thread_safe_append_keys(secret_name=metadata.name, step=step, token=token)
        if not metadata.rotation_enabled:
            raise RotationNotEnabledError(
                f"secret {metadata.name!r} does not have rotation enabled"
            )
        if token not in metadata.versions:
            raise RotationStateError(
                f"secret version {token} has no stage for rotation of {metadata.name!r}"
            )
        if CURRENT in metadata.versions[token]:
            if step == "finishSecret":
                # a finish that crashed after the label move still owes the retirement
                self._retire_previous(metadata, token, self._resolve(metadata)[0])
            logger.info("version already AWSCURRENT; nothing to do")
            return {"Step": step, "Outcome": "already-current"}
        require_stage(metadata, token, PENDING)

        strategy, current = self._resolve(metadata)
        engine = current["engine"]
        policy = PasswordPolicy.resolve(self._config.default_policy, metadata.tags)
        logger.thread_safe_append_keys(strategy=strategy, engine=engine)

        if step == "createSecret" and self._pending_exists(metadata.arn, token):
            logger.info("pending version already stored; nothing to do")
            return {"Step": step, "Outcome": "already-created"}

        step_input = {
            "Step": step,
            "SecretArn": metadata.arn,
            "SecretName": metadata.name,
            "DisplayName": _display_name(metadata.name),
            "Token": token,
            "Strategy": strategy,
            "Engine": engine,
            "PasswordPolicy": policy.to_input(),
            "WriteProbe": metadata.tags.get(WRITE_PROBE_TAG, "").lower() == "true",
        }
        execution_arn, output = self.run_step(step_input, remaining_seconds)
        if step == "createSecret":
            self._store_pending(metadata, token, current, output, event.get("RotationToken"))
        elif step == "finishSecret":
            self._secrets.finish(metadata.arn, token)
            logger.info("AWSCURRENT moved to the new version")
            self._retire_previous(metadata, token, strategy)
        return {"Step": step, "Outcome": "done", "ExecutionArn": execution_arn}

    def _resolve(self, metadata: SecretMetadata) -> tuple[str, dict[str, Any]]:
        """The strategy and the validated AWSCURRENT value; refuses impossible pairs."""
        current = parse_secret_string(
            self._secrets.get_string(metadata.arn, stage=CURRENT), what="AWSCURRENT secret"
        )
        strategy = resolve_strategy(metadata.tags, current)
        check_strategy(secret_kind(current, what="AWSCURRENT secret"), strategy)
        return strategy, current

    def _retire_previous(self, metadata: SecretMetadata, token: str, strategy: str) -> None:
        """Multi-credential: start (never await) the retirement of the superseded credential."""
        if strategy != "multi-credential" or not self._config.retirement_state_machine_arn:
            return
        previous = next(
            (v for v, stages in metadata.versions.items() if CURRENT in stages and v != token),
            None,
        ) or next((v for v, stages in metadata.versions.items() if PREVIOUS in stages), None)
        if previous is None or previous == token:
            return
        current = parse_secret_string(
            self._secrets.get_string(metadata.arn, stage=CURRENT), what="AWSCURRENT secret"
        )
        body = json.dumps(
            {
                "Step": "finishSecret",
                "SecretArn": metadata.arn,
                "SecretName": metadata.name,
                "DisplayName": _display_name(metadata.name),
                "Token": token,
                "Strategy": strategy,
                "Engine": current["engine"],
                "RetiringVersionId": previous,
            },
            sort_keys=True,
            separators=(",", ":"),
        )
        name = execution_name("retire", token, metadata.arn, 1)
        try:
            with aws_errors("StartExecution"):
                self._sfn.start_execution(
                    stateMachineArn=self._config.retirement_state_machine_arn, name=name, input=body
                )
        except Exception as exc:
            if error_code(exc) != "ExecutionAlreadyExists":
                raise
        logger.info("retirement of the superseded credential scheduled", extra={"execution": name})

    # --- executions --------------------------------------------------------------------------

    def run_step(
        self, step_input: dict[str, Any], remaining_seconds: Callable[[], float]
    ) -> tuple[str, dict[str, Any]]:
        """Start (or attach to) the step's execution and wait for its result.

        A retried router invocation finds the execution by its deterministic name: a running
        one is awaited; a failed one is followed by a fresh attempt. A succeeded createSecret
        is reused (running it again would make a second credential); a succeeded setSecret or
        testSecret runs again, because a later rollback may have undone it and both steps are
        idempotent.
        """
        body = json.dumps(step_input, sort_keys=True, separators=(",", ":"))
        reuse_success = step_input["Step"] in _REUSE_SUCCESS
        for attempt in range(1, self._config.max_attempts + 1):
            name = execution_name(
                step_input["Step"], step_input["Token"], step_input["SecretArn"], attempt
            )
            arn = self._execution_arn(name)
            if not self._start(name, body):
                status = self._describe(arn)["status"]
                if status in _TERMINAL_FAILURES or (status == "SUCCEEDED" and not reuse_success):
                    continue
                logger.info("attaching to existing execution", extra={"execution_arn": arn})
            else:
                logger.info("started execution", extra={"execution_arn": arn})
            description = self._wait(arn, remaining_seconds)
            if description["status"] == "SUCCEEDED":
                return arn, json.loads(description.get("output") or "{}")
            raise StepFailedError(self._failure_message(step_input["Step"], arn, description))
        raise RotationStateError(
            f"{step_input['Step']} already failed {self._config.max_attempts} times for this token"
        )

    def _execution_arn(self, name: str) -> str:
        return self._config.state_machine_arn.replace(":stateMachine:", ":execution:") + ":" + name

    def _start(self, name: str, body: str) -> bool:
        try:
            with aws_errors("StartExecution"):
                self._sfn.start_execution(
                    stateMachineArn=self._config.state_machine_arn, name=name, input=body
                )
        except Exception as exc:
            if error_code(exc) == "ExecutionAlreadyExists":
                return False
            raise
        return True

    def _describe(self, arn: str) -> dict[str, Any]:
        with aws_errors("DescribeExecution"):
            description: dict[str, Any] = dict(self._sfn.describe_execution(executionArn=arn))
        return description

    def _wait(self, arn: str, remaining_seconds: Callable[[], float]) -> dict[str, Any]:
        delay = self._config.poll_initial_seconds
        while True:
            description = self._describe(arn)
            if description["status"] != "RUNNING":
                return description
            if remaining_seconds() - delay < self._config.safety_margin_seconds:
                raise RotationInProgressError(
                    f"execution {arn} is still running; a retry of this step will attach to it"
                )
            self._sleep(delay)
            delay = min(delay * 1.5, self._config.poll_max_seconds)

    @staticmethod
    def _failure_message(step: str, arn: str, description: dict[str, Any]) -> str:
        error = description.get("error") or description["status"]
        message = f"{step} failed with {error} (execution {arn})"
        # Only our own error classes have messages vetted to carry no values.
        if error in _KNOWN_ERRORS:
            try:
                detail = json.loads(description.get("cause") or "")["errorMessage"]
                message = f"{step} failed with {error}: {detail} (execution {arn})"
            except (ValueError, KeyError, TypeError):
                pass
        return message

    # --- writes ------------------------------------------------------------------------------

    def _pending_exists(self, arn: str, token: str) -> bool:
        return self._secrets.get_string(arn, stage=PENDING, version_id=token) is not None

    def _store_pending(
        self,
        metadata: SecretMetadata,
        token: str,
        current: dict[str, Any],
        output: dict[str, Any],
        rotation_token: str | None,
    ) -> None:
        context = {"SecretArn": metadata.arn, "ClientRequestToken": token}
        pending = self._sealer.unseal(output.get("Sealed"), context)
        secret_kind(pending, what="pending secret")
        if any(pending.get(k) != current.get(k) for k in ("engine", "host", "port", "masterarn")):
            raise RotationStateError("the pending secret names another engine, host or master")
        self._secrets.put_pending(
            metadata.arn, token, json.dumps(pending, separators=(",", ":")), rotation_token
        )
        logger.info("pending version stored")
