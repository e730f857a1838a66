"""Multi-credential rotation of IAM access keys, entirely on moto."""

from __future__ import annotations

import json
from typing import Any

import pytest

from rotator.checks import access_key_works, eventually
from rotator.local import LocalRuntime
from tests.conftest import assert_no_value_in
from tests.functional.conftest import iam_secret


def _iam_secret(rt: Any, user: str = "svc-orders") -> tuple[str, dict[str, Any]]:
    return iam_secret(rt, user)


def _value(rt: Any, arn: str, **kwargs: Any) -> dict[str, Any]:
    return dict(
        json.loads(
            rt.client("secretsmanager").get_secret_value(SecretId=arn, **kwargs)["SecretString"]
        )
    )


def _keys(rt: Any, user: str) -> dict[str, str]:
    keys = rt.client("iam").list_access_keys(UserName=user)["AccessKeyMetadata"]
    return {k["AccessKeyId"]: k["Status"] for k in keys}


def _works(rt: Any, creds: dict[str, Any]) -> bool:
    return access_key_works(creds, rt.region)


def test_a_rotation_makes_a_new_key_current_and_keeps_the_old_one_working(runtime: Any) -> None:
    arn, old = _iam_secret(runtime)

    outcome = runtime.rotate(arn)

    assert outcome.succeeded, outcome.error
    new = _value(runtime, arn)
    assert new["access_key_id"] != old["access_key_id"]
    assert _works(runtime, new)
    assert _works(runtime, old), (
        "clients holding the previous key must keep working until retirement"
    )
    assert _keys(runtime, old["username"]) == {
        old["access_key_id"]: "Active",
        new["access_key_id"]: "Active",
    }
    assert_no_value_in(
        runtime.all_histories_text() + runtime.log_text(),
        {"old": old["secret_access_key"], "new": new["secret_access_key"]},
    )


def test_the_superseded_key_is_deactivated_verified_and_deleted_after_the_grace_period(
    runtime: Any,
) -> None:
    arn, old = _iam_secret(runtime)
    assert runtime.rotate(arn).succeeded
    retirements = runtime.client("stepfunctions").list_executions(
        stateMachineArn=runtime.retirement_state_machine_arn
    )["executions"]
    assert len(retirements) == 1 and retirements[0]["status"] == "RUNNING"

    assert eventually(
        lambda: _keys(runtime, old["username"]).get(old["access_key_id"]) == "Inactive"
    )
    assert not _works(runtime, old)
    assert eventually(lambda: old["access_key_id"] not in _keys(runtime, old["username"]))
    assert eventually(
        lambda: (
            runtime.client("stepfunctions").describe_execution(
                executionArn=retirements[0]["executionArn"]
            )["status"]
            == "SUCCEEDED"
        )
    )
    assert _works(runtime, _value(runtime, arn))


def test_two_rotations_in_a_row_never_exceed_two_keys(runtime: Any) -> None:
    arn, old = _iam_secret(runtime)
    counts = []
    runtime.host.after_invoke.append(
        lambda _inv: counts.append(len(_keys(runtime, old["username"])))
    )
    first = runtime.rotate(arn)
    second = runtime.rotate(arn)
    assert first.succeeded and second.succeeded
    assert max(counts) <= 2
    current = _value(runtime, arn)
    previous = _value(runtime, arn, VersionStage="AWSPREVIOUS")
    assert set(_keys(runtime, old["username"])) == {
        current["access_key_id"],
        previous["access_key_id"],
    }
    assert _works(runtime, current) and _works(runtime, previous)


def test_the_test_retries_through_iam_propagation_inside_the_grace_budget() -> None:
    with LocalRuntime(iam_propagation_checks=2) as rt:
        arn, _old = _iam_secret(rt)
        outcome = rt.rotate(arn)
        assert outcome.succeeded, outcome.error
        test_run = next(e for e in rt.executions() if e["name"].startswith("testSecret"))
        states = [
            h["stateEnteredEventDetails"]["name"]
            for h in rt.history(test_run["executionArn"])
            if "stateEnteredEventDetails" in h
        ]
        assert states.count("Test pending secret") >= 2 and "Wait before testing again" in states


def test_a_key_that_never_works_is_deactivated_and_a_retry_of_the_rotation_reactivates_it() -> None:
    with LocalRuntime(iam_propagation_seconds=3600) as rt:
        arn, old = _iam_secret(rt)
        outcome = rt.rotate(arn)
        assert outcome.failed_step == "testSecret"
        assert "CredentialNotYetValidError" in outcome.error["errorMessage"]
        pending = _value(rt, arn, VersionId=outcome.token)
        assert _keys(rt, old["username"]) == {
            old["access_key_id"]: "Active",
            pending["access_key_id"]: "Inactive",
        }
        assert _value(rt, arn)["access_key_id"] == old["access_key_id"]
        alerts = rt.alerts()
        assert len(alerts) == 1
        assert alerts[0].message["error"] == "CredentialNotYetValidError"
        assert (
            "deactivated" in alerts[0].message["rolled_back"]
            and alerts[0].message["test_attempts"] >= 2
        )

        rt.iam_propagation_seconds = 0  # IAM caught up: Secrets Manager retries the same token
        retry = rt.retry_rotation(arn)

        assert retry.succeeded and retry.reattempt and retry.token == outcome.token
        assert _value(rt, arn)["access_key_id"] == pending["access_key_id"]
        assert _keys(rt, old["username"]) == {
            old["access_key_id"]: "Active",
            pending["access_key_id"]: "Active",
        }


def test_a_stale_third_key_is_deleted_but_never_the_current_one(runtime: Any) -> None:
    arn, old = _iam_secret(runtime)
    stray = runtime.client("iam").create_access_key(UserName=old["username"])["AccessKey"][
        "AccessKeyId"
    ]
    assert runtime.rotate(arn).succeeded
    keys = _keys(runtime, old["username"])
    assert old["access_key_id"] in keys and stray not in keys and len(keys) == 2


def test_a_secret_whose_key_is_not_the_users_is_refused(runtime: Any) -> None:
    arn, old = _iam_secret(runtime)
    runtime.client("iam").delete_access_key(
        UserName=old["username"], AccessKeyId=old["access_key_id"]
    )
    outcome = runtime.rotate(arn)
    assert (
        outcome.failed_step == "createSecret"
        and "RotationStateError" in outcome.error["errorMessage"]
    )
    assert _keys(runtime, old["username"]) == {}


@pytest.mark.parametrize("engine", ["postgres", "mariadb"])
def test_multi_credential_on_a_database_is_unsupported_before_anything_changes(
    runtime: Any, engine: str
) -> None:
    secret = {
        "engine": engine,
        "host": "127.0.0.1",
        "port": 9,
        "username": "app",
        "password": "pw-unused-123",
    }
    arn = runtime.client("secretsmanager").create_secret(
        Name=f"db/{engine}",
        SecretString=json.dumps(secret),
        Tags=[{"Key": "RotationStrategy", "Value": "multi-credential"}],
    )["ARN"]
    outcome = runtime.rotate(arn)
    assert outcome.failed_step == "createSecret"
    assert (
        outcome.error["errorType"] == "UnsupportedStrategyError"
        and "alternating-users" in outcome.error["errorMessage"]
    )
    assert runtime.executions() == []


def test_someone_elses_key_id_with_a_made_up_secret_gets_no_new_key(runtime: Any) -> None:
    _victim_arn, victim = _iam_secret(runtime, "victim")
    forged = {**victim, "secret_access_key": "x" * 40}  # key ids are not secret; this is
    arn = runtime.client("secretsmanager").create_secret(
        Name="iam/forged", SecretString=json.dumps(forged)
    )["ARN"]

    outcome = runtime.rotate(arn)

    assert (
        outcome.failed_step == "createSecret"
        and "NoWorkingCredentialError" in outcome.error["errorMessage"]
    )
    assert _keys(runtime, "victim") == {victim["access_key_id"]: "Active"}
    assert _works(runtime, victim)
