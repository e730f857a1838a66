"""The router stops waiting for a step before its own timeout (RotationInProgressError);
Secrets Manager then counts the attempt as failed and calls no further step until it retries.
A single-user change that outlives that wait is rolled back by the state machine, which alerts
once; the safety net, hearing RotationFailed while the execution still runs, stays quiet."""

from __future__ import annotations

import time
from typing import Any

import pytest

from rotator.dbservers import DatabaseServer
from tests.integration.conftest import create_app_user, secret_value
from tests.integration.outages import OutageCanary

pytestmark = pytest.mark.integration

#: the router's Lambda timeout here: it stops waiting 5 s (its safety margin) before it
ROUTER_TIMEOUT = 8
#: how long the setSecret worker is held before it changes the password: past the deadline
SET_DELAY = 5


def _slow_set(spec: Any, _event: Any) -> None:
    if spec.logical_id == "SingleUserSetSecretFunction":
        time.sleep(SET_DELAY)


def _wait_for_executions(rt: Any, timeout: float = 60) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while any(e["status"] == "RUNNING" for e in rt.executions()):
        assert time.monotonic() < deadline, "an execution did not end"
        time.sleep(0.2)
    return rt.executions()


def test_a_single_user_change_after_the_router_stopped_waiting_is_rolled_back_and_alerted_once(
    runtime: Any, postgres_server: DatabaseServer
) -> None:
    arn, username, old = create_app_user(runtime, postgres_server)
    runtime.host.timeouts[runtime.spec.functions["RouterFunction"].name] = ROUTER_TIMEOUT
    runtime.host.before_invoke.append(_slow_set)

    with OutageCanary(runtime, arn, postgres_server) as canary:
        outcome = runtime.rotate(arn)
        executions = _wait_for_executions(runtime)
        time.sleep(0.5)

    # the router gave up at setSecret; its execution went on, changed the password, undid it
    assert outcome.failed_step == "setSecret"
    assert outcome.error["errorType"] == "RotationInProgressError"
    (set_run,) = [e for e in executions if e["name"].startswith("setSecret")]
    described = runtime.client("stepfunctions").describe_execution(
        executionArn=set_run["executionArn"]
    )
    assert described["status"] == "FAILED" and described["error"] == "RouterStoppedWaitingError"
    entered = [
        h["stateEnteredEventDetails"]["name"]
        for h in runtime.history(set_run["executionArn"])
        if "stateEnteredEventDetails" in h
    ]
    assert entered.index("Roll back the abandoned change") > entered.index("Set pending secret")
    # clients on AWSCURRENT log in again; the new password is gone from the database
    pending = secret_value(runtime, arn, VersionId=outcome.token)["password"]
    assert postgres_server.can_login(username, old)
    assert not postgres_server.can_login(username, pending)
    assert secret_value(runtime, arn)["password"] == old
    # the outage lasted from the change to the rollback, not until Secrets Manager's retry
    assert len(canary.outages) == 1 and canary.outages[0].ended is not None, canary.report()
    assert canary.outages[0].seconds < 10, canary.report()
    # one alert, from the execution; the safety net heard RotationFailed while it ran
    alerts = runtime.alerts(wait_seconds=1)
    assert [(a.message["error"], a.message["step"]) for a in alerts] == [
        ("RouterStoppedWaitingError", "setSecret")
    ]
    assert "set back to AWSCURRENT" in alerts[0].message["rolled_back"]
    assert "its execution is still running" in runtime.log_text()
