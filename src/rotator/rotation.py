"""RotateSecret as AWS runs it, replacing moto 5.2's version.

moto calls the four steps, ignores a failing one and marks the new version AWSCURRENT anyway,
and refuses a rotation while one version holds both AWSCURRENT and AWSPENDING. AWS instead:
- creates the new version id staged AWSPENDING (no value) and invokes the rotation function
  with each step in order, stopping at the first step that fails;
- leaves the labels as the function left them (a failed rotation keeps AWSPENDING on the new,
  possibly empty, version; AWSCURRENT does not move);
- treats AWSPENDING on the AWSCURRENT version as a finished rotation;
- when AWSPENDING sits on another version (a rotation that did not finish), reattempts that
  rotation with the same token instead of starting a new one.

moto also keeps answering GetSecretValue (no stage named) with the old version after
UpdateSecretVersionStage moves AWSCURRENT; :mod:`rotator.local` patches that too.

Unlike AWS the local call is synchronous: when RotateSecret returns, the rotation has ended.
A failure is reported the ways AWS reports it (the function's error, the state machine's
alert on the topic) and recorded in ``runtime.rotations``.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rotator.functions import Invocation

if TYPE_CHECKING:
    from rotator.local import LocalRuntime

STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")
# Secrets whose rotation is running: AWS refuses a second RotateSecret meanwhile.
_ROTATING: set[str] = set()
_ROTATING_LOCK = threading.Lock()


@dataclass
class RotationOutcome:
    secret_arn: str
    token: str
    succeeded: bool
    steps: list[Invocation] = field(default_factory=list)
    reattempt: bool = False

    @property
    def failed_step(self) -> str | None:
        failed = next((inv for inv in self.steps if inv.failed), None)
        return failed.event.get("Step") if failed else None

    @property
    def error(self) -> dict[str, Any] | None:
        failed = next((inv for inv in self.steps if inv.failed), None)
        return failed.error if failed else None


def aws_like_rotate_secret(
    runtime: LocalRuntime,
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
    assert runtime.host is not None
    function = runtime.host.find(lambda_arn)
    if function is None:
        raise ResourceNotFoundException(f"Resource not found for ARN '{lambda_arn}'.")
    if client_request_token is not None:
        backend._client_request_token_validator(client_request_token)

    secret.rotation_lambda_arn = lambda_arn
    secret.rotation_enabled = True
    secret.rotation_requested = True
    if days is not None:
        secret.auto_rotate_after_days = int(days)
        secret.next_rotation_date = int(time.time()) + int(days) * 86400
    if not rotate_immediately:
        return str(secret.to_short_dict())

    with _ROTATING_LOCK:
        if secret.arn in _ROTATING:
            raise InvalidRequestException(
                "A previous rotation isn't complete. That rotation will be reattempted."
            )
        _ROTATING.add(secret.arn)
    try:
        token, reattempt = choose_token(secret, client_request_token)
        outcome = RotationOutcome(
            secret_arn=secret.arn, token=token, succeeded=False, reattempt=reattempt
        )
        for step in STEPS:
            event = {"Step": step, "SecretId": secret.arn, "ClientRequestToken": token}
            invocation = runtime.host.invoke(function, event)
            outcome.steps.append(invocation)
            if invocation.failed:
                break
        else:
            outcome.succeeded = True
            secret.last_rotation_date = int(time.time())
    finally:
        with _ROTATING_LOCK:
            _ROTATING.discard(secret.arn)
    runtime.rotations.append(outcome)
    # Secrets Manager records the outcome in CloudTrail; EventBridge rules see it.
    runtime.emit_service_event(
        "AWS Service Event via CloudTrail",
        {
            "eventVersion": "1.08",
            "eventSource": "secretsmanager.amazonaws.com",
            "eventName": "RotationSucceeded" if outcome.succeeded else "RotationFailed",
            "awsRegion": runtime.region,
            "sourceIPAddress": "secretsmanager.amazonaws.com",
            "eventType": "AwsServiceEvent",
            "additionalEventData": {"SecretId": secret.arn},
        },
    )
    return json.dumps({"ARN": secret.arn, "Name": secret.name, "VersionId": token})


def choose_token(
    secret: Any, requested: str | None, *, reattempt_stale: bool = True
) -> tuple[str, bool]:
    """The token to rotate with, and whether this reattempts an unfinished rotation.

    A version holding AWSPENDING but not AWSCURRENT is an unfinished rotation. RotateSecret
    reattempts it with its own token, as Secrets Manager does (SDKs always send a token, so the
    request's token cannot mean "start afresh"). ``reattempt_stale=False`` starts a new rotation
    with ``requested`` instead: AWSPENDING moves to it (labels are unique) and the stale version
    keeps its value, which a worker may still need to log in.
    """
    for version_id, version in secret.versions.items():
        stages = version["version_stages"]
        if "AWSPENDING" not in stages:
            continue
        if "AWSCURRENT" in stages:
            stages.remove("AWSPENDING")  # a finished rotation, as AWS sees it
            break
        if reattempt_stale or requested is None or requested == version_id:
            return version_id, True
        stages.remove("AWSPENDING")
        break
    token = requested or str(uuid.uuid4())
    if token not in secret.versions:
        secret.versions[token] = {
            "createdate": int(time.time()),
            "version_id": token,
            "version_stages": ["AWSPENDING"],
        }
    elif "AWSCURRENT" not in secret.versions[token]["version_stages"]:
        secret.versions[token]["version_stages"].append("AWSPENDING")
    return token, False
