"""Each way out of a stuck rotation that the alerts and the README advise, as it works on AWS.

AWS: RotateSecret refuses while AWSPENDING sits on a version other than AWSCURRENT ("any later
invocation of RotateSecret assumes that a previous rotation request is still in progress and
returns an error"); Secrets Manager retries a failed rotation itself; CancelRotateSecret turns
automatic rotation off and leaves AWSPENDING ("You might need to remove the staging label
AWSPENDING from the partially created version"), and RotateSecret turns it on again.
https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_RotateSecret.html
https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_CancelRotateSecret.html
https://docs.aws.amazon.com/secretsmanager/latest/userguide/rotating-secrets.html
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from rotator.dbservers import DatabaseServer
from tests.conftest import assert_nothing_leaked
from tests.integration.conftest import create_app_user, secret_value

pytestmark = pytest.mark.integration


class FailingTest:
    """The test refuses the new password until ``fixed`` (what an operator repairs)."""

    def __init__(self) -> None:
        self.fixed = False

    def __call__(self, spec: Any, _event: Any) -> None:
        from rotation_core.exceptions import ProbeFailedError

        if spec.logical_id == "SingleUserTestSecretFunction" and not self.fixed:
            raise ProbeFailedError("injected: read probe failed")


@pytest.fixture
def runtime_with_retries(
    test_ca_stack_settings: dict[str, dict[str, str]],
) -> Iterator[Any]:
    """Secrets Manager retries 3 times, 2 s apart."""
    from rotator.local import LocalRuntime

    with LocalRuntime(automatic_retries=3, retry_interval=2.0, **test_ca_stack_settings) as rt:
        yield rt
        assert_nothing_leaked(rt)


def _rotate_secret(rt: Any, arn: str) -> dict[str, Any]:
    return dict(
        rt.client("secretsmanager").rotate_secret(
            SecretId=arn, RotationLambdaARN=rt.router_function_arn
        )
    )


def _stages(rt: Any, arn: str) -> dict[str, list[str]]:
    return dict(rt.client("secretsmanager").describe_secret(SecretId=arn)["VersionIdsToStages"])


def _first_failure(rt: Any, arn: str, failing: FailingTest) -> Any:
    rt.host.before_invoke.append(failing)
    first = rt.rotate(arn)
    assert first.failed_step == "testSecret"
    (alert,) = rt.alerts(wait_seconds=1)
    assert alert.message["token"] == first.token
    return first, alert.message


def test_the_alert_names_the_commands_for_this_secret_and_token(
    runtime: Any, postgres_server: DatabaseServer
) -> None:
    arn, _username, _old = create_app_user(runtime, postgres_server)
    first, alert = _first_failure(runtime, arn, FailingTest())
    advice = alert["next_steps"]
    assert "Secrets Manager retries this rotation by itself" in advice
    assert (
        f"aws secretsmanager update-secret-version-stage --secret-id {arn} --version-stage "
        f"AWSPENDING --remove-from-version-id {first.token}"
    ) in advice
    assert f"aws secretsmanager rotate-secret --secret-id {arn}" in advice
    assert f"aws secretsmanager cancel-rotate-secret --secret-id {arn}" in advice
    assert "turns it back on" in advice


def test_secrets_manager_retry_finishes_the_rotation_once_the_cause_is_fixed(
    runtime_with_retries: Any, postgres_server: DatabaseServer
) -> None:
    rt = runtime_with_retries
    arn, username, old = create_app_user(rt, postgres_server)
    failing = FailingTest()
    rt.host.before_invoke.append(failing)
    started = _rotate_secret(rt, arn)  # returns once the first attempt has failed
    assert rt.rotations[-1].failed_step == "testSecret"

    failing.fixed = True  # the operator repairs the database; the service retries by itself
    deadline = time.monotonic() + 60
    while not (rt.rotations[-1].succeeded or time.monotonic() > deadline):
        time.sleep(0.2)

    last = rt.rotations[-1]
    assert last.succeeded and last.reattempt and last.token == started["VersionId"]
    new = secret_value(rt, arn)["password"]
    assert new != old and postgres_server.can_login(username, new)
    assert [a.message["error"] for a in rt.alerts()] == ["ProbeFailedError"]


def test_clearing_awspending_then_rotating_again_starts_a_new_token(
    runtime: Any, postgres_server: DatabaseServer
) -> None:
    sm = runtime.client("secretsmanager")
    arn, username, old = create_app_user(runtime, postgres_server)
    failing = FailingTest()
    first, _alert = _first_failure(runtime, arn, failing)
    with pytest.raises(ClientError, match="previous rotation isn't complete"):
        _rotate_secret(runtime, arn)
    failing.fixed = True

    sm.update_secret_version_stage(
        SecretId=arn, VersionStage="AWSPENDING", RemoveFromVersionId=first.token
    )
    second = runtime.rotate(arn)

    assert second.succeeded and second.token != first.token
    new = secret_value(runtime, arn)["password"]
    assert postgres_server.can_login(username, new) and not postgres_server.can_login(username, old)
    assert not any("AWSPENDING" in stages for stages in _stages(runtime, arn).values())


def test_cancel_rotate_secret_stops_the_retries_and_rotate_secret_turns_rotation_back_on(
    runtime_with_retries: Any, postgres_server: DatabaseServer
) -> None:
    rt = runtime_with_retries
    sm = rt.client("secretsmanager")
    arn, username, old = create_app_user(rt, postgres_server)
    failing = FailingTest()
    rt.host.before_invoke.append(failing)
    started = _rotate_secret(rt, arn)

    sm.cancel_rotate_secret(SecretId=arn)  # the cause is not fixed yet: no more outages
    time.sleep(3)
    assert [o.attempt for o in rt.rotations] == [1]
    assert sm.describe_secret(SecretId=arn)["RotationEnabled"] is False
    assert postgres_server.can_login(username, old)

    failing.fixed = True
    with pytest.raises(ClientError, match="previous rotation isn't complete"):
        _rotate_secret(rt, arn)  # cancelling left AWSPENDING on the unfinished version
    sm.update_secret_version_stage(
        SecretId=arn, VersionStage="AWSPENDING", RemoveFromVersionId=started["VersionId"]
    )
    again = rt.rotate(arn)

    assert again.succeeded and again.token != started["VersionId"]
    assert sm.describe_secret(SecretId=arn)["RotationEnabled"] is True
    assert postgres_server.can_login(username, secret_value(rt, arn)["password"])
