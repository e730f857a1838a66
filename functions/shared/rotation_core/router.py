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
from datetime import UTC, datetime, timedelta
from typing import Any

from rotation_core.exceptions import (
    PERMANENT_ERRORS,
    TRANSIENT_ERRORS,
    AwsRequestError,
    AwsThrottlingError,
    InvalidEventError,
    InvalidSecretError,
    RotationInProgressError,
    RotationNotEnabledError,
    RotationStateError,
    StepFailedError,
)
from rotation_core.models import (
    STEP_INPUT_VERSION,
    STEPS,
    STRATEGIES,
    PasswordPolicy,
    SecretMetadata,
    check_strategy,
    credential_kinds,
    open_sealed_credential,
    parse_secret_string,
    secret_kind,
)
from rotation_core.observability import logger
from rotation_core.ports import Execution, ExecutionRunner, Sealer, SecretWriter
from rotation_core.schema import validate
from rotation_core.telemetry import RotationFacts, changed_at
from rotation_core.vocabulary import Outcome, Stage, Step, Strategy

CURRENT, PENDING, PREVIOUS = Stage.CURRENT, Stage.PENDING, Stage.PREVIOUS

STRATEGY_TAG = "RotationStrategy"
WRITE_PROBE_TAG = "RotationWriteProbe"
_TERMINAL_FAILURES = frozenset({"FAILED", "TIMED_OUT", "ABORTED"})
_REUSE_SUCCESS = frozenset({Step.CREATE, Step.FINISH})
_SAFE_TOKEN = re.compile(r"[A-Za-z0-9_-]+")
_KNOWN_ERRORS = frozenset(cls.__name__ for cls in (*TRANSIENT_ERRORS, *PERMANENT_ERRORS))


@dataclass(frozen=True)
class RouterConfig:
    state_machine_arn: str
    retirement_state_machine_arn: str | None = None
    default_policy: PasswordPolicy = field(default_factory=PasswordPolicy)
    #: see :class:`PollSchedule`
    poll_initial_seconds: float = 0.1
    poll_max_seconds: float = 2.0
    poll_growth: float = 0.25
    #: stop waiting this long before the Lambda would be killed
    safety_margin_seconds: float = 5.0
    max_attempts: int = 25


@dataclass(frozen=True)
class PollSchedule:
    """How long the router sleeps between two ``DescribeExecution`` calls of one execution.

    The first poll comes ``first`` seconds after the start (steps usually end in well under a
    second); each later wait is ``growth`` times the time already waited, never less than
    ``first`` nor more than ``cap``. So the router sees an execution's end at most
    ``growth`` x its duration late (25 % by default) until the waits reach the cap, and at
    most ``cap`` late after that, with about ``log(T / first) / log(1 + growth)`` calls for a
    step of ``T`` seconds.

    What bounds it: DescribeExecution is throttled per account and Region with a token bucket
    of 300 calls refilled at 15 per second (us-east-1, us-west-2, eu-west-1; 250 and 10 per
    second in other Regions), shared by every router of the account (AWS Step Functions
    Developer Guide, "Quotas", API action throttling:
    https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html). A router
    waiting on a long step costs at most ``1 / cap`` calls per second (0.5 by default), so a
    few dozen rotations in flight stay inside the refill rate; a short step costs its
    handful of early calls from the bucket. A throttled poll (``ThrottlingException``) is
    not an error: the router waits the cap and asks again, and the execution runs on.
    """

    first: float = 0.1
    growth: float = 0.25
    cap: float = 2.0

    def __post_init__(self) -> None:
        if not (0 < self.first <= self.cap) or self.growth <= 0:
            raise ValueError("poll schedule needs 0 < first <= cap and growth > 0")

    def next_delay(self, waited: float) -> float:
        """The wait before the next poll, after ``waited`` seconds (0 before the first)."""
        return min(self.cap, max(self.first, waited * self.growth))


def resolve_strategy(tags: dict[str, str], current: dict[str, Any]) -> str:
    """Which strategy rotates this secret.

    1. the tag ``RotationStrategy``, if present;
    2. multi-credential for every engine that is not a database (IAM keys, Redis ACL users);
    3. alternating-users when the secret has a ``masterarn``;
    4. single-user.
    """
    tagged = tags.get(STRATEGY_TAG)
    if tagged is not None:
        if tagged not in STRATEGIES:
            raise InvalidSecretError(f"tag '{STRATEGY_TAG}' must be one of {', '.join(STRATEGIES)}")
        return tagged
    if current.get("engine") in credential_kinds():
        return Strategy.MULTI_CREDENTIAL
    return Strategy.ALTERNATING_USERS if "masterarn" in current else Strategy.SINGLE_USER


def execution_name(step: str, token: str, secret_arn: str, attempt: int) -> str:
    """Deterministic per (secret, step, token, attempt); at most 80 characters.

    The name ends in a 96-bit digest of the secret ARN and the whole token, so two rotations
    share a name only if SHA-256 collides. The token is shown before it for people reading the
    console, and only when it is made of safe characters (and cut to 36): it is a label, never
    what tells two rotations apart.
    """
    label = token[:36] if _SAFE_TOKEN.fullmatch(token) else "token"
    base = f"{step}-{label}-{_rotation_digest(secret_arn, token)}"
    return base if attempt == 1 else f"{base}-{attempt}"


def belongs_to_rotation(name: str, secret_arn: str, token: str) -> bool:
    """True for an execution this router named for (secret, token): any step, any attempt."""
    for step in (*STEPS, "retire", ADOPT):
        base = execution_name(step, token, secret_arn, 1)
        if name == base or re.fullmatch(re.escape(base) + r"-[0-9]{1,3}", name):
            return True
    return False


def _rotation_digest(secret_arn: str, token: str) -> str:
    # the separator cannot occur in an ARN, so (arn, token) pairs never concatenate alike
    return hashlib.sha256(f"{secret_arn}\n{token}".encode()).hexdigest()[:24]


#: executions that test a pending version this service did not write (before adopting it)
ADOPT = "adopt"
#: the step input field saying when the router stops waiting (ISO 8601, UTC)
DEADLINE_FIELD = "RouterDeadline"
#: input fields that do not change what an execution does to the secret: an execution an
#: earlier release or an earlier invocation of the router started is still this rotation's
_NOT_IDENTITY = (DEADLINE_FIELD, "InputVersion")


def _body(step_input: dict[str, Any]) -> str:
    """The execution input exactly as the router sends it (canonical JSON)."""
    return json.dumps(step_input, sort_keys=True, separators=(",", ":"))


def _same_input(execution: Execution, body: str) -> bool:
    """Whether an existing execution was started with this input (by this router, or by
    someone who could only have asked for exactly what the router asks). The deadline and the
    input version are not part of what the execution does to the secret."""
    try:
        theirs = json.loads(execution.input or "null")
        ours = json.loads(body)
    except ValueError:
        return False
    if not isinstance(theirs, dict) or not isinstance(ours, dict):
        return False
    for field_name in _NOT_IDENTITY:
        theirs.pop(field_name, None)
        ours.pop(field_name, None)
    return bool(theirs == ours)


def _display_name(name: str, limit: int = 60) -> str:
    return name if len(name) <= limit else name[: limit - 3] + "..."


class Router:
    def __init__(
        self,
        secrets: SecretWriter,
        runner: ExecutionRunner,
        sealer: Sealer,
        config: RouterConfig,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._now = now
        self._secrets = secrets
        self._runner = runner
        self._sealer = sealer
        self._config = config
        self._sleep = sleep
        self._clock = clock
        #: what this invocation learnt about the rotation (telemetry; identifiers and times)
        self.facts = RotationFacts()

    # --- the protocol ------------------------------------------------------------------------

    def handle(self, event: Any, remaining_seconds: Callable[[], float]) -> dict[str, Any]:
        event = validate(event, "event", what="rotation event", error=InvalidEventError)
        step, token = event["Step"], event["ClientRequestToken"]
        metadata = self._describe_secret(event["SecretId"])
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
            return {"Step": step, "Outcome": Outcome.ALREADY_CURRENT}
        require_stage(metadata, token, PENDING)

        strategy, current = self._resolve(metadata)
        engine = current["engine"]
        policy = PasswordPolicy.resolve(self._config.default_policy, metadata.tags)
        logger.thread_safe_append_keys(strategy=strategy, engine=engine)
        self.facts = RotationFacts(metadata.arn, token, strategy, engine)

        step_input = {
            "InputVersion": STEP_INPUT_VERSION,
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
        if step in ("createSecret", "setSecret") and self._pending_exists(metadata.arn, token):
            # A value editor can stage AWSPENDING with a password of its choosing (it may not
            # read the secret, but would then know the next one): only a pending version this
            # rotation's own createSecret wrote, or one already in force, is taken further.
            origin = self._pending_origin(metadata, step_input)
            if origin == "foreign" and step == "createSecret":
                origin = self._adopt_or_clear(metadata, step_input, remaining_seconds)
            if origin == "foreign":
                raise RotationStateError(
                    "AWSPENDING of this token was not written by this rotation's createSecret; "
                    "remove the AWSPENDING label from that version (aws secretsmanager "
                    "update-secret-version-stage --remove-from-version-id) and rotate again"
                )
            if step == "createSecret":
                logger.info(
                    "pending version already stored; nothing to do", extra={"origin": origin}
                )
                return {"Step": step, "Outcome": f"already-{origin}"}
        if step == "finishSecret":
            self._require_tested(step_input)
        # When the router will have stopped waiting: a single-user execution that changes the
        # password after that rolls it back (nobody would move AWSCURRENT; clients would stay
        # locked out until Secrets Manager's next retry). Not part of the rotation's identity.
        deadline = self._now() + timedelta(
            seconds=max(0.0, remaining_seconds() - self._config.safety_margin_seconds)
        )
        step_input[DEADLINE_FIELD] = deadline.strftime("%Y-%m-%dT%H:%M:%SZ")
        if step == "finishSecret":
            return self._finish(metadata, token, strategy, step_input)
        execution_arn, output = self.run_step(step_input, remaining_seconds)
        if step == "createSecret":
            self._store_pending(metadata, token, current, output, event.get("RotationToken"))
        return {"Step": step, "Outcome": Outcome.DONE, "ExecutionArn": execution_arn}

    def _finish(
        self, metadata: SecretMetadata, token: str, strategy: str, step_input: dict[str, Any]
    ) -> dict[str, Any]:
        """finishSecret without an execution's round trip inside the outage window.

        The finishSecret execution changes nothing in any backend (it routes to a Pass state:
        no worker, no rollback, no alert on its path), so waiting for it only kept single-user
        clients locked out for one more round trip. The router checks that this token's test
        passed (done by the caller), moves AWSCURRENT (UpdateSecretVersionStage with
        MoveToVersionId and RemoveFromVersionId, as before), then starts the step's
        execution without awaiting it, so the console still shows all four steps.

        The order keeps the one-alert rule: if the label move fails, no finishSecret execution
        exists, the router fails, and Secrets Manager's RotationFailed reaches the safety net,
        which finds no running or alerting execution of this token and announces it once.
        Once the label moved the rotation is done; a failure to record the step (throttling,
        say) is logged, not raised: failing would report a rotation that did complete.
        """
        self._secrets.finish(metadata.arn, token)
        self.facts.finished = self._now()
        logger.info("AWSCURRENT moved to the new version")
        execution_arn = self._record_finish(step_input)
        self._retire_previous(metadata, token, strategy)
        self._note_rotation_times(step_input)
        return {"Step": "finishSecret", "Outcome": Outcome.DONE, "ExecutionArn": execution_arn}

    def _record_finish(self, step_input: dict[str, Any]) -> str | None:
        """Start the finishSecret execution (never awaited); its ARN, or None if not recorded."""
        body = _body(step_input)
        token, secret_arn = step_input["Token"], step_input["SecretArn"]
        try:
            for attempt in range(1, self._config.max_attempts + 1):
                name = execution_name("finishSecret", token, secret_arn, attempt)
                arn = self._execution_arn(name)
                if self._start(name, body):
                    logger.info("finishSecret recorded", extra={"execution_arn": arn})
                    return arn
                existing = self._runner.describe(arn)
                if existing is not None and _same_input(existing, body):
                    return arn  # an earlier invocation of this step recorded it
        except (AwsThrottlingError, AwsRequestError) as exc:
            logger.error(
                "finishSecret done but its execution could not be started",
                extra={"error_class": type(exc).__name__, "reason": str(exc)},
            )
            return None
        logger.error("finishSecret done but every execution name of this step is taken")
        return None

    def _describe_secret(self, secret_id: str) -> SecretMetadata:
        try:
            return self._secrets.describe(secret_id)
        except AwsRequestError as exc:
            if exc.code in ("ResourceNotFoundException", "AccessDeniedException", "AccessDenied"):
                # a router may read only the secrets it rotates: a secret that does not exist
                # and one whose rotation function is another answer the same (AccessDenied)
                raise InvalidEventError(
                    "event field 'SecretId' names a secret that does not exist or whose "
                    f"rotation function is not this router ({exc.code})"
                ) from None
            raise

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
        if strategy != Strategy.MULTI_CREDENTIAL or not self._config.retirement_state_machine_arn:
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
        machine = self._config.retirement_state_machine_arn
        body = _body(
            {
                "InputVersion": STEP_INPUT_VERSION,
                "Step": "finishSecret",
                "SecretArn": metadata.arn,
                "SecretName": metadata.name,
                "DisplayName": _display_name(metadata.name),
                "Token": token,
                "Strategy": strategy,
                "Engine": current["engine"],
                "RetiringVersionId": previous,
            }
        )
        for attempt in range(1, self._config.max_attempts + 1):
            name = execution_name("retire", token, metadata.arn, attempt)
            existing = None
            if not self._start(name, body, machine):
                existing = self._runner.describe(self._execution_arn(name, machine))
            if existing is None or _same_input(existing, body):
                logger.info(
                    "retirement of the superseded credential scheduled", extra={"execution": name}
                )
                return
            # someone else started an execution under this name: it is not ours to count on
            logger.warning("ignoring a retirement with a foreign input", extra={"execution": name})
        raise RotationStateError("could not schedule the retirement: every name is taken")

    def _note_rotation_times(self, step_input: dict[str, Any]) -> None:
        """For the rotation's metrics and event: when createSecret's execution started and
        when setSecret's worker changed the password (its ``ChangedAt``), if they are known."""
        created = self._newest_execution({**step_input, "Step": "createSecret"})
        self.facts.started = created.started if created is not None else None
        changed = self._newest_execution({**step_input, "Step": "setSecret"})
        self.facts.changed = changed_at(changed.output) if changed is not None else None

    # --- executions --------------------------------------------------------------------------

    def run_step(
        self,
        step_input: dict[str, Any],
        remaining_seconds: Callable[[], float],
        *,
        name: str | None = None,
    ) -> tuple[str, dict[str, Any]]:
        """Start (or attach to) the step's execution and wait for its result.

        A retried router invocation finds the execution by its deterministic name: a running
        one is awaited; a failed one is followed by a fresh attempt. A succeeded createSecret
        is reused (running it again would make a second credential); a succeeded setSecret or
        testSecret runs again, because a later rollback may have undone it and both steps are
        idempotent.
        """
        body = _body(step_input)
        reuse_success = step_input["Step"] in _REUSE_SUCCESS
        for attempt in range(1, self._config.max_attempts + 1):
            execution = execution_name(
                name or step_input["Step"], step_input["Token"], step_input["SecretArn"], attempt
            )
            arn = self._execution_arn(execution)
            if not self._start(execution, body):
                existing = self._runner.describe(arn)
                if existing is None or not _same_input(existing, body):
                    # started by someone else under our name: never attach to it or reuse it
                    logger.warning(
                        "ignoring an execution with a foreign input", extra={"execution_arn": arn}
                    )
                    continue
                status = existing.status
                if status in _TERMINAL_FAILURES or (status == "SUCCEEDED" and not reuse_success):
                    continue
                logger.info("attaching to existing execution", extra={"execution_arn": arn})
                if status == "SUCCEEDED":
                    return arn, json.loads(existing.output or "{}")
            else:
                logger.info("started execution", extra={"execution_arn": arn})
            finished = self._wait(arn, remaining_seconds)
            if finished.status == "SUCCEEDED":
                return arn, json.loads(finished.output or "{}")
            raise StepFailedError(self._failure_message(step_input["Step"], arn, finished))
        raise RotationStateError(
            f"{step_input['Step']} already failed {self._config.max_attempts} times for this token"
        )

    def _require_tested(self, step_input: dict[str, Any]) -> None:
        """finishSecret promotes only what this token's testSecret proved, with nothing since.

        The newest testSecret execution of this rotation (same input as this router sends)
        must have succeeded (a rollback ends a test execution as failed) and no setSecret
        execution may have started after it: otherwise AWSCURRENT would move to a credential
        no backend was shown to accept.
        """
        tested = self._newest_execution({**step_input, "Step": "testSecret"})
        if tested is None or tested.status != "SUCCEEDED":
            state = "never ran" if tested is None else f"ended {tested.status}"
            raise RotationStateError(
                f"finishSecret refused: testSecret for this token {state}; "
                "AWSCURRENT moves only to a version whose test passed"
            )
        changed = self._newest_execution({**step_input, "Step": "setSecret"})
        if changed is not None and changed.started > tested.started:
            raise RotationStateError(
                "finishSecret refused: setSecret ran again after the last passed testSecret"
            )

    def _pending_origin(self, metadata: SecretMetadata, step_input: dict[str, Any]) -> str:
        """Who wrote AWSPENDING: "created" (this rotation's createSecret sealed exactly that
        credential), "adopted" (it was already in force: an adoption test passed), or
        "foreign" (anyone else: a value editor, or another rotation function)."""
        token = step_input["Token"]
        created = self._newest_execution({**step_input, "Step": "createSecret"})
        if created is not None and created.status == "SUCCEEDED":
            context = {"SecretArn": metadata.arn, "ClientRequestToken": token}
            sealed = json.loads(created.output or "{}").get("Sealed")
            credential = open_sealed_credential(self._sealer.unseal(sealed, context))
            pending = parse_secret_string(
                self._secrets.get_string(metadata.arn, stage=PENDING, version_id=token),
                what="AWSPENDING secret",
            )
            if all(pending.get(field) == value for field, value in credential.items()):
                return "created"
        adopted = self._newest_execution({**step_input, "Step": "testSecret"}, name=ADOPT)
        if adopted is not None and adopted.status == "SUCCEEDED":
            return "adopted"
        return "foreign"

    def _adopt_or_clear(
        self,
        metadata: SecretMetadata,
        step_input: dict[str, Any],
        remaining_seconds: Callable[[], float],
    ) -> str:
        """A pending version this service did not write (e.g. one AWS's own rotation function
        left half-finished before the secret was switched to this router): adopt it if the
        backend already accepts it (its test passes: the rotation then completes, ending any
        lockout the interrupted function caused); otherwise remove its AWSPENDING label, so
        nothing anyone staged is ever set, and the next rotation starts afresh."""
        test_input = {**step_input, "Step": "testSecret"}
        try:
            self.run_step(test_input, remaining_seconds, name=ADOPT)
        except StepFailedError:
            self._secrets.clear_pending(metadata.arn, step_input["Token"])
            raise RotationStateError(
                "AWSPENDING was not written by this service and does not work on the backend: "
                "its label was removed (nothing was changed), so the next rotation starts afresh"
            ) from None
        logger.info("adopted a pending version already in force")
        return "adopted"

    def _newest_execution(
        self, step_input: dict[str, Any], *, name: str | None = None
    ) -> Execution | None:
        """The highest attempt of a step's execution for this rotation that this router
        started (its input is what the router sends), or None. ``name`` is the execution
        name's prefix when it is not the step's (adoption tests)."""
        body = _body(step_input)
        step, token, secret_arn = step_input["Step"], step_input["Token"], step_input["SecretArn"]
        newest = None
        for attempt in range(1, self._config.max_attempts + 1):
            found = self._runner.describe(
                self._execution_arn(execution_name(name or step, token, secret_arn, attempt))
            )
            if found is None:
                break
            if _same_input(found, body):
                newest = found
        return newest

    def _execution_arn(self, name: str, machine: str | None = None) -> str:
        return self._runner.execution_arn(machine or self._config.state_machine_arn, name)

    def _start(self, name: str, body: str, machine: str | None = None) -> bool:
        return self._runner.start(machine or self._config.state_machine_arn, name, body)

    def _wait(self, arn: str, remaining_seconds: Callable[[], float]) -> Execution:
        """Poll the execution until it ends (see :class:`PollSchedule` for the intervals)."""
        config = self._config
        schedule = PollSchedule(
            config.poll_initial_seconds, config.poll_growth, config.poll_max_seconds
        )
        began = self._clock()
        delay = schedule.next_delay(0.0)
        while True:
            if remaining_seconds() - delay < config.safety_margin_seconds:
                raise RotationInProgressError(
                    f"execution {arn} is still running; a retry of this step will attach to it"
                )
            self._sleep(delay)
            try:
                found = self._runner.describe(arn)
            except AwsThrottlingError:
                # the account's DescribeExecution bucket is empty: ask again later
                logger.warning("execution poll throttled", extra={"execution_arn": arn})
                delay = schedule.cap
                continue
            if found is None:
                raise RotationStateError(f"execution {arn} disappeared")
            if found.status != "RUNNING":
                return found
            delay = schedule.next_delay(self._clock() - began)

    @staticmethod
    def _failure_message(step: str, arn: str, finished: Execution) -> str:
        error = finished.error or finished.status
        message = f"{step} failed with {error} (execution {arn})"
        # Only our own error classes have messages vetted to carry no values.
        if error in _KNOWN_ERRORS:
            try:
                detail = json.loads(finished.cause or "")["errorMessage"]
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
        """AWSPENDING = AWSCURRENT with the new credential the worker sealed for this rotation.

        Workers seal only the credential fields: every other key comes from AWSCURRENT as the
        router read it, so a worker cannot aim the pending version at another server or master,
        and a secret of any size rotates (the sealed part stays far below KMS's 4 KiB).
        """
        context = {"SecretArn": metadata.arn, "ClientRequestToken": token}
        credential = open_sealed_credential(self._sealer.unseal(output.get("Sealed"), context))
        pending = {**current, **credential}
        secret_kind(pending, what="pending secret")
        self._secrets.put_pending(
            metadata.arn, token, json.dumps(pending, separators=(",", ":")), rotation_token
        )
        logger.info("pending version stored")


def require_stage(metadata: SecretMetadata, token: str, stage: Stage) -> None:
    if stage not in metadata.versions.get(token, []):
        raise RotationStateError(
            f"secret version {token} of {metadata.name!r} is not staged {stage} for rotation"
        )
