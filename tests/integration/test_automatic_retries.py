"""Secrets Manager retries a failed rotation itself: a single-user rotation whose test keeps
failing alerts once for its token, and costs clients one bounded outage per attempt.

AWS: "If any rotation step fails, Secrets Manager retries the entire rotation process multiple
times" (https://docs.aws.amazon.com/secretsmanager/latest/userguide/rotating-secrets.html);
how often is not documented, so the local runtime's ``automatic_retries`` chooses.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from rotator.dbservers import DatabaseServer
from tests.conftest import assert_nothing_leaked
from tests.integration.conftest import create_app_user, secret_value
from tests.integration.outages import OutageCanary

pytestmark = pytest.mark.integration

RETRIES = 2


def _test_always_fails(spec: Any, _event: Any) -> None:
    """The new password is refused by the test every time (a permanent error, as a failed
    probe raises): setSecret has changed the password by then; the rollback puts it back."""
    from rotation_core.exceptions import ProbeFailedError

    if spec.logical_id == "SingleUserTestSecretFunction":
        raise ProbeFailedError("injected: read probe failed")


@pytest.fixture
def retrying(test_ca_stack_settings: dict[str, dict[str, str]]) -> Iterator[Any]:
    from rotator.local import LocalRuntime

    with LocalRuntime(
        automatic_retries=RETRIES, retry_interval=1.0, **test_ca_stack_settings
    ) as rt:
        yield rt
        assert_nothing_leaked(rt)


def test_a_rotation_that_keeps_failing_alerts_once_and_bounds_client_outages(
    retrying: Any, postgres_server: DatabaseServer, record_property: Any
) -> None:
    arn, username, old = create_app_user(retrying, postgres_server)
    retrying.host.before_invoke.append(_test_always_fails)

    with OutageCanary(retrying, arn, postgres_server) as canary:
        last = retrying.rotate(arn)  # returns once the retries have run out
        time.sleep(0.5)

    attempts = [o for o in retrying.rotations if o.secret_arn == arn]
    assert [o.attempt for o in attempts] == list(range(1, RETRIES + 2))
    assert {o.token for o in attempts} == {last.token}
    assert all(o.failed_step == "testSecret" for o in attempts)
    # one alert for the token, however many attempts; the state machine still fails each time
    alerts = retrying.alerts(wait_seconds=1)
    assert [a.message["error"] for a in alerts] == ["ProbeFailedError"]
    assert alerts[0].message["token"] == last.token
    failed_tests = [
        e
        for e in retrying.executions()
        if e["name"].startswith("testSecret") and e["status"] == "FAILED"
    ]
    assert len(failed_tests) == RETRIES + 1
    # every attempt set the password and rolled it back: one outage each, never more
    assert 1 <= len(canary.outages) <= RETRIES + 1, canary.report()
    assert all(o.ended is not None for o in canary.outages), canary.report()
    assert secret_value(retrying, arn)["password"] == old
    assert postgres_server.can_login(username, old)
    record_property("client_outages", canary.report())
    print(f"\nautomatic retries ({RETRIES}): {canary.report()}")
