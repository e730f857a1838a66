"""RotateSecret as Secrets Manager runs it: asynchronous, refused while a rotation is unfinished,
retried by the service itself when it fails.

AWS:
- RotateSecret "starts the asynchronous process of rotating the secret": Secrets Manager
  invokes the rotation function with createSecret, setSecret, testSecret and finishSecret, with
  the new version's id as ClientRequestToken, stopping at the first step that fails.
  https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_RotateSecret.html
- "If the AWSPENDING staging label is present but not attached to the same version as
  AWSCURRENT, then any later invocation of RotateSecret assumes that a previous rotation request
  is still in progress and returns an error" (InvalidRequestException, the error RotateSecret
  documents for a request the secret's state does not allow). AWSPENDING on the AWSCURRENT
  version is a finished rotation. A failed rotation leaves AWSPENDING on the new (possibly
  empty) version; AWSCURRENT does not move. After a successful finishSecret (the function moves
  only AWSCURRENT) the service clears AWSPENDING.
  (same page; https://docs.aws.amazon.com/secretsmanager/latest/userguide/rotate-secrets_how.html)
- "If any rotation step fails, Secrets Manager retries the entire rotation process multiple
  times" (the same token: AWSPENDING still marks it); "If rotation fails, Secrets Manager
  retries the entire rotation process multiple times" (DescribeSecret, NextRotationDate).
  How many times and how far apart is not documented: locally
  ``LocalRuntime(automatic_retries=N, retry_interval=seconds)``, none by default.
  https://docs.aws.amazon.com/secretsmanager/latest/userguide/rotating-secrets.html#rotate-secrets_how
  https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_DescribeSecret.html
- CancelRotateSecret "turns off automatic rotation, and if a rotation is currently in progress,
  cancels the rotation"; it leaves AWSPENDING where it is. "To turn on automatic rotation again,
  call RotateSecret."
  https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_CancelRotateSecret.html
- Rotation is configured only with a function whose resource policy lets Secrets Manager invoke
  it (the caller gets AccessDeniedException).
  https://docs.aws.amazon.com/secretsmanager/latest/userguide/troubleshoot_rotation.html

moto 5.2 calls the four steps synchronously, ignores a failing one and marks the new version
AWSCURRENT anyway, refuses a rotation while one version holds both AWSCURRENT and AWSPENDING,
and never retries. This module restores the behaviour above. A rotation runs in a thread of its
own; RotateSecret returns at once when the runtime rotates in the background (while it serves
an endpoint, or ``rotate_in_background=True``), else when the first attempt has ended, so that
in-process callers see its outcome (``LocalRuntime.rotate`` waits for the retries too).
Secrets Manager's automatic retries run after ``retry_interval`` seconds, each only while
AWSPENDING still marks the token and rotation is on: clearing AWSPENDING, a new RotateSecret or
CancelRotateSecret ends them. Each attempt is recorded in ``runtime.rotations`` and reported as
Secrets Manager reports it (``RotationSucceeded``/``RotationFailed`` to EventBridge).

moto also keeps answering GetSecretValue (no stage named) with the old version after
UpdateSecretVersionStage moves AWSCURRENT; :mod:`.secret_current_version` restores that.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rotator.aws_local.contracts import ACCOUNT, Cloud, Runtime
from rotator.aws_local.lambda_host import Invocation
from rotator.aws_local.patches import MotoPatch

if TYPE_CHECKING:
    from rotator.aws_local.lambda_host import FunctionSpec

STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")
PENDING, CURRENT = "AWSPENDING", "AWSCURRENT"
#: what RotateSecret answers while a rotation is unfinished (InvalidRequestException)
STILL_ROTATING = "A previous rotation isn't complete. That rotation will be reattempted."

# Secrets with an attempt running, and the rotations each runtime started (stop() ends them).
_RUNNING: set[str] = set()
_LOCK = threading.Lock()
_ROTATIONS: weakref.WeakKeyDictionary[Any, list[Rotation]] = weakref.WeakKeyDictionary()


@dataclass
class RotationOutcome:
    """One attempt of a rotation: the router invocations it made and how it ended."""

    secret_arn: str
    token: str
    succeeded: bool
    steps: list[Invocation] = field(default_factory=list)
    #: 1 for the attempt RotateSecret started; 2, 3... for Secrets Manager's automatic retries
    attempt: int = 1
    #: CancelRotateSecret turned rotation off while this attempt ran (no step after that)
    cancelled: bool = False

    @property
    def reattempt(self) -> bool:
        """A retry of an earlier, failed attempt with the same token."""
        return self.attempt > 1

    @property
    def failed_step(self) -> str | None:
        failed = next((inv for inv in self.steps if inv.failed), None)
        return failed.event.get("Step") if failed else None

    @property
    def error(self) -> dict[str, Any] | None:
        failed = next((inv for inv in self.steps if inv.failed), None)
        return failed.error if failed else None


class Rotation:
    """One token's rotation: the attempt that started it, then Secrets Manager's retries."""

    def __init__(
        self,
        runtime: Runtime,
        secret: Any,
        token: str,
        function: FunctionSpec,
        *,
        first_attempt: int = 1,
        retries: int = 0,
        interval: float = 1.0,
    ) -> None:
        self.runtime, self.secret, self.token, self.function = runtime, secret, token, function
        self.secret_arn: str = secret.arn
        self.first_attempt, self.retries, self.interval = first_attempt, retries, interval
        self.outcomes: list[RotationOutcome] = []
        #: the first attempt has ended (and was reported)
        self.first_ended = threading.Event()
        #: no attempt runs and none is scheduled
        self.finished = threading.Event()
        self._cancelled = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"rotation:{secret.name}", daemon=True
        )

    def start(self) -> Rotation:
        _ROTATIONS.setdefault(self.runtime, []).append(self)
        self._thread.start()
        return self

    def cancel(self) -> None:
        """Schedule no more retries (an attempt already running stops before its next step)."""
        self._cancelled.set()

    def wait(self, timeout: float | None = None) -> RotationOutcome:
        """Wait until no attempt runs or is scheduled; the last attempt's outcome."""
        if not self.finished.wait(timeout):
            raise TimeoutError(f"the rotation of {self.secret.name} did not end")
        if not self.outcomes:
            raise RuntimeError(f"the rotation of {self.secret.name} ran no attempt")
        return self.outcomes[-1]

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    # --- the attempts --------------------------------------------------------------------------

    def _run(self) -> None:
        attempt = self.first_attempt
        try:
            while True:
                outcome = self._attempt(attempt)
                self.outcomes.append(outcome)
                self._report(outcome)
                self.first_ended.set()
                if outcome.succeeded or outcome.cancelled:
                    return
                if attempt - self.first_attempt >= self.retries:
                    return
                # Secrets Manager retries the same token later, if nobody cleared it meanwhile
                if self._cancelled.wait(self.interval) or not self._claim():
                    return
                attempt += 1
        finally:
            self.first_ended.set()
            self.finished.set()

    def _claim(self) -> bool:
        """Take the secret for a retry: the token is still unfinished, rotation still on, and
        no other attempt runs."""
        with _LOCK:
            if self.secret_arn in _RUNNING or not self.secret.rotation_enabled:
                return False
            if unfinished_version(self.secret) != self.token or self.secret.is_deleted():
                return False
            _RUNNING.add(self.secret_arn)
            return True

    def _attempt(self, attempt: int) -> RotationOutcome:
        """Run the steps (the secret is claimed); release it at the end."""
        from moto.core.exceptions import JsonRESTError

        runtime, secret, function = self.runtime, self.secret, self.function
        outcome = RotationOutcome(
            secret_arn=secret.arn, token=self.token, succeeded=False, attempt=attempt
        )
        try:
            for step in STEPS:
                if self._cancelled.is_set() or not secret.rotation_enabled:
                    outcome.cancelled = True  # CancelRotateSecret, or the runtime stopping
                    return outcome
                event = {"Step": step, "SecretId": secret.arn, "ClientRequestToken": self.token}
                # Secrets Manager may invoke the function only if its resource policy allows it
                # (AccessDeniedException otherwise; IAM checker, issue 8 §6).
                # (It invokes the ARN the secret names: the router's alias, as users set it.)
                try:
                    runtime.secrets_manager_may_invoke(
                        secret.rotation_lambda_arn or function.arn, secret.arn
                    )
                except JsonRESTError as refused:
                    outcome.steps.append(_refused(function, event, refused))
                    return outcome
                assert runtime.host is not None
                # each step invokes the ARN anew: an alias moved by a deployment between two
                # steps sends the next step to the new version
                function = runtime.host.find(secret.rotation_lambda_arn or "") or function
                invocation = runtime.host.invoke(function, event)
                outcome.steps.append(invocation)
                if invocation.failed:
                    return outcome
            outcome.succeeded = True
            secret.last_rotation_date = int(time.time())
            # The function only moved AWSCURRENT; the service itself then clears AWSPENDING
            # from that version ("AWSPENDING ... might not be attached to any version").
            finished = secret.versions.get(self.token, {}).get("version_stages", [])
            if CURRENT in finished and PENDING in finished:
                finished.remove(PENDING)
            return outcome
        finally:
            with _LOCK:
                _RUNNING.discard(self.secret_arn)

    def _report(self, outcome: RotationOutcome) -> None:
        """Record the attempt and report it as Secrets Manager does (CloudTrail -> EventBridge)."""
        runtime = self.runtime
        runtime.rotations.append(outcome)
        if outcome.cancelled or runtime.cloud is None:  # nothing to report, or nobody to hear
            return
        runtime.emit_service_event(
            "AWS Service Event via CloudTrail",
            {
                "eventVersion": "1.08",
                "eventSource": "secretsmanager.amazonaws.com",
                "eventName": "RotationSucceeded" if outcome.succeeded else "RotationFailed",
                "awsRegion": runtime.region,
                "sourceIPAddress": "secretsmanager.amazonaws.com",
                "eventType": "AwsServiceEvent",
                "additionalEventData": {"SecretId": self.secret_arn},
            },
        )


def _refused(function: FunctionSpec, event: dict[str, Any], refused: Exception) -> Invocation:
    """A step Secrets Manager could not invoke, recorded like a failed invocation."""
    code = getattr(refused, "error_type", type(refused).__name__)
    message = getattr(refused, "message", "") or str(refused)
    return Invocation(
        function=function.name,
        event=event,
        payload=None,
        error={"errorType": code, "errorMessage": message},
        duration=0.0,
    )


# --- the API ------------------------------------------------------------------------------------


def aws_like_rotate_secret(
    cloud: Cloud,
    backend: Any,
    secret_id: str,
    client_request_token: str | None = None,
    rotation_lambda_arn: str | None = None,
    rotation_rules: dict[str, Any] | None = None,
    rotate_immediately: bool = True,
) -> str:
    from moto.secretsmanager.exceptions import (
        InvalidParameterException,
        InvalidRequestException,
        ResourceNotFoundException,
        SecretNotFoundException,
    )

    if not backend._is_valid_identifier(secret_id):
        raise SecretNotFoundException()
    secret = backend.secrets[secret_id]
    if secret.is_deleted():
        raise InvalidRequestException(
            "You tried to perform the operation on a secret that's currently marked deleted."
        )
    if rotation_lambda_arn and len(rotation_lambda_arn) > 2048:
        raise InvalidParameterException("RotationLambdaARN must <= 2048 characters long.")
    days = (rotation_rules or {}).get("AutomaticallyAfterDays")
    if days is not None and not 1 <= int(days) <= 1000:
        raise InvalidParameterException(
            "RotationRules.AutomaticallyAfterDays must be within 1-1000."
        )
    lambda_arn = rotation_lambda_arn or secret.rotation_lambda_arn
    if not lambda_arn:
        raise InvalidRequestException(
            "No Lambda rotation function ARN is associated with this secret."
        )
    runtime = cloud.find_runtime(lambda_arn)
    function = runtime.host.find(lambda_arn) if runtime and runtime.host else None
    if runtime is None or runtime.host is None or function is None:
        raise ResourceNotFoundException(f"Resource not found for ARN '{lambda_arn}'.")
    if client_request_token is not None:
        backend._client_request_token_validator(client_request_token)
    # Configuring rotation checks that Secrets Manager may invoke the function.
    runtime.secrets_manager_may_invoke(lambda_arn, secret.arn)  # the alias ARN, if it names one

    secret.rotation_lambda_arn = lambda_arn
    secret.rotation_enabled = True
    secret.rotation_requested = True
    if days is not None:
        secret.auto_rotate_after_days = int(days)
        secret.next_rotation_date = int(time.time()) + int(days) * 86400
    if not rotate_immediately:
        return str(secret.to_short_dict())

    with _LOCK:
        if secret.arn in _RUNNING or unfinished_version(secret) is not None:
            raise InvalidRequestException(STILL_ROTATING)
        token, _reattempt = choose_token(secret, client_request_token)
        _RUNNING.add(secret.arn)
    for earlier in _ROTATIONS.get(runtime, []):
        if earlier.secret_arn == secret.arn:
            earlier.cancel()  # a new rotation replaces an abandoned token's scheduled retries
    try:
        rotation = Rotation(
            runtime,
            secret,
            token,
            function,
            retries=int(getattr(runtime, "automatic_retries", 0)),
            interval=float(getattr(runtime, "retry_interval", 1.0)),
        ).start()
    except BaseException:
        with _LOCK:
            _RUNNING.discard(secret.arn)
        raise
    if not rotates_in_background(runtime):
        rotation.first_ended.wait()
    return json.dumps({"ARN": secret.arn, "Name": secret.name, "VersionId": token})


def rotates_in_background(runtime: Any) -> bool:
    """Whether RotateSecret returns at once (as on AWS): always while the runtime serves an
    endpoint, else as ``runtime.rotate_in_background`` says (default: after the first attempt)."""
    chosen = getattr(runtime, "rotate_in_background", None)
    if chosen is not None:
        return bool(chosen)
    return getattr(runtime, "endpoint_url", None) is not None


def unfinished_version(secret: Any) -> str | None:
    """The version holding AWSPENDING but not AWSCURRENT (a rotation in progress), if any."""
    for version_id, version in secret.versions.items():
        stages = version["version_stages"]
        if PENDING in stages and CURRENT not in stages:
            return str(version_id)
    return None


def rotation_of(runtime: Any, secret_arn: str, token: str) -> Rotation | None:
    """The newest rotation ``runtime`` started for this secret and token."""
    found = [
        r for r in _ROTATIONS.get(runtime, []) if (r.secret_arn, r.token) == (secret_arn, token)
    ]
    return found[-1] if found else None


def retry_now(runtime: Runtime, secret_arn: str) -> Rotation:
    """Secrets Manager's automatic retry of the unfinished rotation, started now (tests use it
    instead of waiting for ``retry_interval``); a scheduled retry of that token is dropped."""
    from moto.secretsmanager.exceptions import InvalidRequestException
    from moto.secretsmanager.models import secretsmanager_backends

    secret: Any = secretsmanager_backends[ACCOUNT][runtime.region].describe_secret(secret_arn)
    assert runtime.host is not None
    function = runtime.host.find(secret.rotation_lambda_arn or "")
    with _LOCK:
        token = unfinished_version(secret)
        if token is None or function is None or secret.arn in _RUNNING:
            raise InvalidRequestException(f"secret {secret.name} has no rotation to retry now")
        _RUNNING.add(secret.arn)
    earlier = [r for r in _ROTATIONS.get(runtime, []) if r.secret_arn == secret.arn]
    for rotation in earlier:
        rotation.cancel()
    attempts = sum(len(r.outcomes) for r in earlier if r.token == token)
    try:
        return Rotation(runtime, secret, token, function, first_attempt=attempts + 1).start()
    except BaseException:
        with _LOCK:
            _RUNNING.discard(secret.arn)
        raise


def stop_rotations(runtime: Any, timeout: float = 30.0) -> None:
    """The runtime is leaving its stack: no more retries; let a running attempt stop."""
    rotations = _ROTATIONS.pop(runtime, [])
    for rotation in rotations:
        rotation.cancel()
    deadline = time.monotonic() + timeout
    for rotation in rotations:
        rotation.join(max(0.0, deadline - time.monotonic()))


def choose_token(
    secret: Any, requested: str | None, *, reattempt_stale: bool = True
) -> tuple[str, bool]:
    """Stage the version a rotation works on; (its token, whether it was already AWSPENDING).

    AWSPENDING on the AWSCURRENT version is a finished rotation: the label goes. With
    ``reattempt_stale`` (what the service does when it retries), a version that holds
    AWSPENDING but not AWSCURRENT is the rotation to continue, whatever was requested.
    ``reattempt_stale=False`` starts a new rotation with ``requested`` instead: AWSPENDING moves
    to it (labels are unique) and the stale version keeps its value, which a worker may still
    need to log in (what an operator does by clearing AWSPENDING, then rotating).
    """
    for version_id, version in secret.versions.items():
        stages = version["version_stages"]
        if PENDING not in stages:
            continue
        if CURRENT in stages:
            stages.remove(PENDING)  # a finished rotation, as AWS sees it
            break
        if reattempt_stale or requested is None or requested == version_id:
            return version_id, True
        stages.remove(PENDING)
        break
    token = requested or str(uuid.uuid4())
    if token not in secret.versions:
        secret.versions[token] = {
            "createdate": int(time.time()),
            "version_id": token,
            "version_stages": [PENDING],
        }
    elif CURRENT not in secret.versions[token]["version_stages"]:
        secret.versions[token]["version_stages"].append(PENDING)
    return token, False


class RotateSecretRunsTheSteps(MotoPatch):
    aws_doc = "https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_RotateSecret.html"

    def replacements(self) -> list[tuple[type, str, Any]]:
        from moto.secretsmanager.models import SecretsManagerBackend

        cloud = self.cloud

        def rotate_secret(backend: Any, *args: Any, **kwargs: Any) -> str:
            return aws_like_rotate_secret(cloud, backend, *args, **kwargs)

        return [(SecretsManagerBackend, "rotate_secret", rotate_secret)]
