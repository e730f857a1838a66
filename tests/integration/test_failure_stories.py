"""End-to-end failure stories, told as an operator would see them."""

from __future__ import annotations

import json
from typing import Any

import pytest

from rotator.dbservers import DatabaseServer
from rotator.local import FAST_PARAMETERS
from tests.integration.conftest import new_password, secret_value, unique_name
from tests.support.proxy import FlakyProxy

pytestmark = pytest.mark.integration


def _user_behind_a_proxy(rt: Any, server: DatabaseServer) -> tuple[FlakyProxy, str, str, str]:
    """A login on ``server`` whose secret reaches it through a proxy the test can take down;
    returns (proxy, secret ARN, username, password)."""
    proxy = FlakyProxy(server.host, server.port)
    username, password = unique_name(), new_password()
    server.create_login(username, password)
    secret = {
        "engine": "mariadb" if server.engine == "mariadb" else "postgres",
        "host": "127.0.0.1",
        "port": proxy.port,
        "username": username,
        "password": password,
        "dbname": "app",
    }
    arn = rt.client("secretsmanager").create_secret(
        Name=f"story/{username}", SecretString=json.dumps(secret)
    )["ARN"]
    return proxy, arn, username, password


def test_the_database_stops_answering_mid_rotation_clients_keep_a_working_current(
    runtime: Any, db_server: DatabaseServer
) -> None:
    """setSecret changes the password, then the database stops answering the test: the grace
    budget runs out, the password is rolled back, one alert says so, and the next attempt
    (database healthy again) succeeds."""
    proxy, arn, username, old = _user_behind_a_proxy(runtime, db_server)

    def outage(spec: Any, _event: Any) -> None:
        if spec.logical_id == "SingleUserTestSecretFunction":
            proxy.down_for(3600)  # down from the first test attempt...
        elif spec.logical_id == "SingleUserRollbackFunction":
            proxy.down_for(0)  # ...and back by the time the state machine rolls back

    runtime.host.before_invoke.append(outage)
    try:
        first = runtime.rotate(arn)
    finally:
        runtime.host.before_invoke.remove(outage)

    assert first.failed_step == "testSecret"
    assert db_server.can_login(username, secret_value(runtime, arn)["password"]), (
        "AWSCURRENT must log in"
    )
    assert secret_value(runtime, arn)["password"] == old
    alerts = runtime.alerts()
    assert len(alerts) == 1
    alert = alerts[0].message
    assert alert["error"] == "DatabaseUnavailableError" and alert["step"] == "testSecret"
    assert "set back to AWSCURRENT" in alert["rolled_back"] and alert["test_attempts"] >= 2
    assert alert["console_url"].endswith(alert["execution_arn"])
    # the retries after setSecret stayed inside the grace budget (12 s locally)
    history = runtime.history(alert["execution_arn"])
    entered = {
        h["stateEnteredEventDetails"]["name"]: h["timestamp"]
        for h in reversed(history)
        if "stateEnteredEventDetails" in h
    }
    last = {
        h["stateEnteredEventDetails"]["name"]: h["timestamp"]
        for h in history
        if "stateEnteredEventDetails" in h
    }
    spent = (last["Roll back?"] - entered["Test pending secret"]).total_seconds()
    assert spent <= 12, f"test retries took {spent:.1f}s, over the 12 s grace budget"

    second = runtime.retry_rotation(arn)

    assert second.succeeded and second.reattempt
    new = secret_value(runtime, arn)["password"]
    assert db_server.can_login(username, new) and not db_server.can_login(username, old)
    assert runtime.alerts() == []
    proxy.close()


def test_a_database_down_from_the_start_is_retried_and_the_alert_says_how_often(
    runtime: Any, db_server: DatabaseServer
) -> None:
    """A transient error (the database does not answer at createSecret) is retried
    RetryMaxAttempts times before the alert; the alert says so (a permanent error's says 0,
    see test_a_wrong_current_password_fails_once_and_changes_nothing)."""
    proxy, arn, username, old = _user_behind_a_proxy(runtime, db_server)
    proxy.down_for(3600)
    try:
        outcome = runtime.rotate(arn)
    finally:
        proxy.close()

    assert outcome.failed_step == "createSecret"
    alerts = runtime.alerts()
    assert len(alerts) == 1
    alert = alerts[0].message
    assert alert["error"] == "DatabaseUnavailableError"
    assert alert["retries_allowed"] == int(FAST_PARAMETERS["RetryMaxAttempts"])
    create = "Create pending secret"
    tries = [
        h
        for h in runtime.history(alert["execution_arn"])
        if h["type"] == "TaskStateEntered" and h["stateEnteredEventDetails"]["name"] == create
    ]
    assert len(tries) == 1  # one state entry; its Retry made the attempts
    assert db_server.can_login(username, old)
