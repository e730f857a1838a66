"""RotateSecret as Secrets Manager runs it (rotator.aws_local.patches.rotate_secret): the steps
in order, stopped at the first failure with the labels left as they were; refused while a
rotation is unfinished; asynchronous; retried by the service itself with the same token."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from rotator.aws_local.patches.rotate_secret import RotateSecretRunsTheSteps
from tests.functional.conftest import UNREACHABLE, create_secret, versions

# The router refuses this secret at once (its AWSCURRENT does not match the schema): a rotation
# that fails fast, every time, without a state machine execution.
MALFORMED = {"engine": "postgres", "host": "127.0.0.1", "username": "app"}


def _rotate_secret(rt: Any, arn: str) -> dict[str, Any]:
    return dict(
        rt.client("secretsmanager").rotate_secret(
            SecretId=arn, RotationLambdaARN=rt.router_function_arn
        )
    )


def _pending(rt: Any, arn: str) -> list[str]:
    return [v for v, stages in versions(rt, arn).items() if "AWSPENDING" in stages]


@pytest.fixture
def retrying(runtime: Any) -> Iterator[Any]:
    """The runtime with Secrets Manager's automatic retries on: two, 0.2 s apart."""
    runtime.automatic_retries, runtime.retry_interval = 2, 0.2
    yield runtime


def test_a_failing_step_stops_the_rotation_and_awscurrent_stays(runtime: Any) -> None:
    arn = create_secret(runtime, "fidelity/unreachable", UNREACHABLE)
    (original,) = versions(runtime, arn)

    outcome = runtime.rotate(arn)

    assert not outcome.succeeded and outcome.failed_step == "createSecret"
    assert [inv.event["Step"] for inv in outcome.steps] == ["createSecret"]
    labels = versions(runtime, arn)
    assert labels[original] == ["AWSCURRENT"]
    assert labels[outcome.token] == ["AWSPENDING"]


def test_rotate_secret_is_refused_while_awspending_sits_on_another_version(
    runtime: Any,
) -> None:
    arn = create_secret(runtime, "fidelity/malformed", MALFORMED)
    first = runtime.rotate(arn)
    before = versions(runtime, arn)

    with pytest.raises(ClientError) as refused:
        _rotate_secret(runtime, arn)

    error = refused.value.response["Error"]
    assert error["Code"] == "InvalidRequestException"
    assert "previous rotation isn't complete" in error["Message"]
    assert versions(runtime, arn) == before and _pending(runtime, arn) == [first.token]
    assert len(runtime.rotations) == 1


def test_after_awspending_is_cleared_rotate_secret_starts_a_new_token(runtime: Any) -> None:
    arn = create_secret(runtime, "fidelity/malformed", MALFORMED)
    first = runtime.rotate(arn)
    runtime.client("secretsmanager").update_secret_version_stage(
        SecretId=arn, VersionStage="AWSPENDING", RemoveFromVersionId=first.token
    )

    second = runtime.rotate(arn)

    assert second.token != first.token and not second.reattempt
    assert _pending(runtime, arn) == [second.token]


def test_secrets_manager_retries_a_failed_rotation_with_the_same_token(retrying: Any) -> None:
    arn = create_secret(retrying, "fidelity/malformed", MALFORMED)

    last = retrying.rotate(arn)

    attempts = [o for o in retrying.rotations if o.secret_arn == arn]
    assert [o.attempt for o in attempts] == [1, 2, 3]
    assert {o.token for o in attempts} == {last.token} and not last.succeeded
    assert all(o.failed_step == "createSecret" for o in attempts)


def test_a_retry_by_hand_continues_the_unfinished_token(runtime: Any) -> None:
    arn = create_secret(runtime, "fidelity/malformed", MALFORMED)
    first = runtime.rotate(arn)

    again = runtime.retry_rotation(arn)

    assert again.reattempt and again.attempt == 2 and again.token == first.token


def test_cancel_rotate_secret_ends_the_retries_and_turns_rotation_off(retrying: Any) -> None:
    retrying.retry_interval = 2
    sm = retrying.client("secretsmanager")
    arn = create_secret(retrying, "fidelity/malformed", MALFORMED)
    started = _rotate_secret(retrying, arn)  # returns once the first attempt has ended

    sm.cancel_rotate_secret(SecretId=arn)
    time.sleep(2.5)

    assert [o.attempt for o in retrying.rotations] == [1]
    assert sm.describe_secret(SecretId=arn)["RotationEnabled"] is False
    # the label stays: it must be cleared before rotation can start again
    assert _pending(retrying, arn) == [started["VersionId"]]


def test_clearing_awspending_ends_the_retries(retrying: Any) -> None:
    retrying.retry_interval = 2
    sm = retrying.client("secretsmanager")
    arn = create_secret(retrying, "fidelity/malformed", MALFORMED)
    started = _rotate_secret(retrying, arn)

    sm.update_secret_version_stage(
        SecretId=arn, VersionStage="AWSPENDING", RemoveFromVersionId=started["VersionId"]
    )
    time.sleep(2.5)

    assert [o.attempt for o in retrying.rotations] == [1]


def test_rotate_secret_returns_at_once_and_rotates_in_the_background(runtime: Any) -> None:
    runtime.rotate_in_background = True
    arn = create_secret(runtime, "fidelity/malformed", MALFORMED)
    gate = threading.Event()

    def hold(spec: Any, _event: Any) -> None:
        if spec.logical_id == "RouterFunction":
            gate.wait(10)

    runtime.host.before_invoke.append(hold)
    try:
        started = _rotate_secret(runtime, arn)
        # the router has not answered createSecret yet: the rotation is under way
        assert runtime.rotations == [] and _pending(runtime, arn) == [started["VersionId"]]
    finally:
        gate.set()
    deadline = time.monotonic() + 10
    while not runtime.rotations and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [o.token for o in runtime.rotations] == [started["VersionId"]]


def test_through_the_served_endpoint_rotate_secret_answers_before_the_rotation_ends(
    runtime: Any,
) -> None:
    import boto3

    arn = create_secret(runtime, "fidelity/malformed", MALFORMED)
    gate = threading.Event()

    def hold(spec: Any, _event: Any) -> None:
        if spec.logical_id == "RouterFunction":
            gate.wait(10)

    runtime.host.before_invoke.append(hold)
    with runtime.serve() as endpoint:
        key = runtime.operator_key
        sm = boto3.client(
            "secretsmanager",
            endpoint_url=endpoint,
            region_name=runtime.region,
            aws_access_key_id=key.access_key_id,
            aws_secret_access_key=key.secret_access_key,
        )
        try:
            started = sm.rotate_secret(SecretId=arn, RotationLambdaARN=runtime.router_function_arn)
            assert runtime.rotations == []  # answered while createSecret is still held
        finally:
            gate.set()
        deadline = time.monotonic() + 10
        while not runtime.rotations and time.monotonic() < deadline:
            time.sleep(0.05)
    assert [o.token for o in runtime.rotations] == [started["VersionId"]]


def test_after_a_successful_rotation_awspending_is_cleared_by_the_service(runtime: Any) -> None:
    from tests.functional.conftest import iam_secret

    arn, _value = iam_secret(runtime, "fidelity-keys")
    outcome = runtime.rotate(arn)
    assert outcome.succeeded
    # the router moved AWSCURRENT only; Secrets Manager drops AWSPENDING itself
    assert versions(runtime, arn)[outcome.token] == ["AWSCURRENT"]


def test_moto_alone_rotates_again_over_an_unfinished_rotation(runtime: Any) -> None:
    arn = create_secret(runtime, "fidelity/malformed", MALFORMED)
    first = runtime.rotate(arn)
    with runtime.cloud.suspended(RotateSecretRunsTheSteps):
        again = _rotate_secret(runtime, arn)
    assert again["VersionId"] != first.token
