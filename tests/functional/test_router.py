"""The router on moto: preflight, one execution per step, the writes, nothing else."""

from __future__ import annotations

import json
from typing import Any

import pytest

from rotator.checks import eventually
from tests.conftest import assert_no_value_in, load_event
from tests.functional.conftest import UNREACHABLE, create_secret, event, iam_secret, versions


def _staged(
    rt: Any, name: str = "app/db", value: dict[str, Any] | None = None, **tags: str
) -> tuple[str, str]:
    arn = create_secret(rt, name, value or UNREACHABLE, tags or None)
    return arn, rt.stage_rotation(arn)


def _staged_iam(rt: Any) -> tuple[str, str, dict[str, Any]]:
    """A staged rotation whose steps all succeed on moto alone (IAM access keys)."""
    arn, value = iam_secret(rt)
    return arn, rt.stage_rotation(arn), value


def _steps_before_finish(rt: Any, arn: str, token: str) -> None:
    """createSecret, setSecret and testSecret, as Secrets Manager runs them before finishSecret
    (the router refuses to finish a token whose test never passed)."""
    for step in ("createSecret", "setSecret", "testSecret"):
        result = rt.invoke_router(event(step, arn, token))
        assert not result.failed, result.error


def _error(invocation: Any) -> tuple[str, str]:
    assert invocation.failed, invocation.payload
    return invocation.error["errorType"], invocation.error["errorMessage"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"Step": "dropSecret"}, "Step"),
        ({"ClientRequestToken": "short"}, "ClientRequestToken"),
        ({"SecretId": ""}, "SecretId"),
        ({"RotationToken": ["not", "a", "string"]}, "RotationToken"),
    ],
)
def test_a_bad_event_names_the_field_and_starts_nothing(
    runtime: Any, change: dict[str, Any], field: str
) -> None:
    arn, token = _staged(runtime)
    before = versions(runtime, arn)
    bad = {**load_event("createSecret", SecretId=arn, ClientRequestToken=token), **change}
    kind, message = _error(runtime.invoke_router(bad))
    assert kind == "InvalidEventError" and f"'{field}'" in message
    assert runtime.executions() == [] and versions(runtime, arn) == before


def test_an_event_missing_the_token_names_it(runtime: Any) -> None:
    arn, _token = _staged(runtime)
    bad = load_event("setSecret", SecretId=arn)
    del bad["ClientRequestToken"]
    assert _error(runtime.invoke_router(bad)) == (
        "InvalidEventError",
        "rotation event field 'ClientRequestToken' is required",
    )


def test_a_secret_without_rotation_enabled_is_refused(runtime: Any) -> None:
    arn = create_secret(runtime, "app/db", UNREACHABLE)
    # Rotation configured with this router, then turned off: the router may still read the
    # secret (its policies name secrets whose rotation function it is), and refuses it.
    sm = runtime.client("secretsmanager")
    sm.rotate_secret(
        SecretId=arn, RotationLambdaARN=runtime.router_function_arn, RotateImmediately=False
    )
    sm.cancel_rotate_secret(SecretId=arn)
    token = "5f0e8b1e-3c2a-4d6f-9b7e-2a1c0d9e8f7a"
    assert (
        _error(runtime.invoke_router(event("createSecret", arn, token)))[0]
        == "RotationNotEnabledError"
    )
    assert runtime.executions() == []


def test_a_token_that_is_not_staged_is_refused(runtime: Any) -> None:
    arn, _token = _staged(runtime)
    kind, message = _error(runtime.invoke_router(event("createSecret", arn, "0" * 36)))
    assert kind == "RotationStateError" and "no stage for rotation" in message
    assert runtime.executions() == []


def test_a_token_already_current_needs_nothing(runtime: Any) -> None:
    arn = create_secret(runtime, "app/db", UNREACHABLE)
    runtime.stage_rotation(arn)
    current = next(v for v, s in versions(runtime, arn).items() if "AWSCURRENT" in s)
    result = runtime.invoke_router(event("finishSecret", arn, current))
    assert result.payload["Outcome"] == "already-current" and runtime.executions() == []


def test_a_token_staged_only_as_previous_is_refused(runtime: Any) -> None:
    arn, token = _staged(runtime)
    sm = runtime.client("secretsmanager")
    sm.update_secret_version_stage(
        SecretId=arn, VersionStage="AWSPENDING", RemoveFromVersionId=token
    )
    sm.update_secret_version_stage(SecretId=arn, VersionStage="AWSPREVIOUS", MoveToVersionId=token)
    kind, message = _error(runtime.invoke_router(event("setSecret", arn, token)))
    assert kind == "RotationStateError" and "AWSPENDING" in message


@pytest.mark.parametrize(
    ("value", "field"),
    [
        ({**UNREACHABLE, "engine": "oracle"}, "engine"),
        ({k: v for k, v in UNREACHABLE.items() if k != "host"}, "host"),
        ({**UNREACHABLE, "port": "not-a-port"}, "port"),
        ({**UNREACHABLE, "username": 7}, "username"),
    ],
)
def test_a_bad_secret_names_the_field_and_writes_nothing(
    runtime: Any, value: dict[str, Any], field: str
) -> None:
    arn, token = _staged(runtime, value=value)
    before = versions(runtime, arn)
    kind, message = _error(runtime.invoke_router(event("createSecret", arn, token)))
    assert kind == "InvalidSecretError" and f"'{field}'" in message
    assert UNREACHABLE["password"] not in message
    assert runtime.executions() == [] and versions(runtime, arn) == before


def test_a_secret_that_is_not_json_is_refused_without_echoing_it(runtime: Any) -> None:
    sm = runtime.client("secretsmanager")
    arn = sm.create_secret(Name="app/plain", SecretString="just-a-password-string")["ARN"]
    token = runtime.stage_rotation(arn)
    kind, message = _error(runtime.invoke_router(event("createSecret", arn, token)))
    assert kind == "InvalidSecretError" and "just-a-password-string" not in message


def test_an_unknown_strategy_tag_is_refused_by_name(runtime: Any) -> None:
    arn, token = _staged(runtime, RotationStrategy="rainbow")
    kind, message = _error(runtime.invoke_router(event("createSecret", arn, token)))
    assert kind == "InvalidSecretError" and "RotationStrategy" in message


def test_create_secret_stores_one_pending_version_sealed_in_transit(runtime: Any) -> None:
    arn, token, current = _staged_iam(runtime)
    result = runtime.invoke_router(event("createSecret", arn, token))
    assert not result.failed, result.error
    sm = runtime.client("secretsmanager")
    pending = json.loads(
        sm.get_secret_value(SecretId=arn, VersionId=token, VersionStage="AWSPENDING")[
            "SecretString"
        ]
    )
    assert (
        pending["username"] == current["username"]
        and pending["access_key_id"] != current["access_key_id"]
    )
    assert versions(runtime, arn)[token] == ["AWSPENDING"]
    # the state machine only ever saw ciphertext
    secrets = {"pending": pending["secret_access_key"], "current": current["secret_access_key"]}
    assert_no_value_in(runtime.all_histories_text(), secrets)
    assert_no_value_in(runtime.log_text(), secrets)


def test_create_secret_twice_makes_one_version_and_one_execution(runtime: Any) -> None:
    arn, token, current = _staged_iam(runtime)
    first = runtime.invoke_router(event("createSecret", arn, token))
    sm = runtime.client("secretsmanager")
    stored = sm.get_secret_value(SecretId=arn, VersionId=token)["SecretString"]
    second = runtime.invoke_router(event("createSecret", arn, token))
    assert first.payload["Outcome"] == "done" and second.payload["Outcome"] == "already-created"
    assert sm.get_secret_value(SecretId=arn, VersionId=token)["SecretString"] == stored
    assert len(runtime.executions()) == 1 and len(versions(runtime, arn)) == 2
    keys = runtime.client("iam").list_access_keys(UserName=current["username"])["AccessKeyMetadata"]
    assert len(keys) == 2, "one new key, not two"


def test_a_failed_step_names_the_error_class_and_execution_and_retries_as_a_new_attempt(
    runtime: Any,
) -> None:
    arn, token = _staged(runtime)  # the database cannot be reached
    kind, message = _error(runtime.invoke_router(event("createSecret", arn, token)))
    assert kind == "StepFailedError" and "DatabaseUnavailableError" in message
    assert ":execution:" in message and f"createSecret-{token}" in message
    again = runtime.invoke_router(event("createSecret", arn, token))
    assert again.failed
    names = sorted(e["name"] for e in runtime.executions() if e["name"].startswith("createSecret"))
    assert len(names) == 2 and names[1] == names[0] + "-2"


def test_a_retried_finish_after_a_router_crash_reuses_the_succeeded_execution(
    runtime: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rotation_core.adapters.secretsmanager import SecretsManagerWriter as SecretWriter

    arn, token, _value = _staged_iam(runtime)
    _steps_before_finish(runtime, arn, token)
    real_finish, crashes = SecretWriter.finish, []

    def crash_once(self: Any, secret_arn: str, version: str) -> None:
        if not crashes:
            crashes.append(1)
            raise RuntimeError("router died after its execution succeeded")
        real_finish(self, secret_arn, version)

    monkeypatch.setattr(SecretWriter, "finish", crash_once)
    assert runtime.invoke_router(event("finishSecret", arn, token)).failed
    assert "AWSCURRENT" not in versions(runtime, arn)[token]

    again = runtime.invoke_router(event("finishSecret", arn, token))

    assert not again.failed, again.error
    # the router moves AWSCURRENT only; Secrets Manager itself clears AWSPENDING afterwards
    assert set(versions(runtime, arn)[token]) == {"AWSCURRENT", "AWSPENDING"}

    # the router records finishSecret with an execution it does not await (it has no work)
    def finishes() -> list[dict[str, Any]]:
        return [e for e in runtime.executions() if e["name"].startswith("finishSecret")]

    assert eventually(lambda: [e["status"] for e in finishes()] == ["SUCCEEDED"], 10)


def test_the_rotation_token_reaches_put_secret_value_and_nothing_else(runtime: Any) -> None:
    from rotation_core import handlers

    arn, token, _value = _staged_iam(runtime)
    seen: list[dict[str, Any]] = []
    client = handlers._client("secretsmanager", runtime.region)
    client.meta.events.register(
        "provide-client-params.secrets-manager.PutSecretValue",
        lambda params, **_: seen.append(dict(params)),
    )
    rotation_token = "rotation-token-" + "z" * 40
    result = runtime.invoke_router(event("createSecret", arn, token, RotationToken=rotation_token))
    assert not result.failed, result.error
    assert [p.get("RotationToken") for p in seen] == [rotation_token]
    assert_no_value_in(
        runtime.all_histories_text() + runtime.log_text(), {"rotation token": rotation_token}
    )


def test_nothing_leaks_at_debug_log_level() -> None:
    from rotator.local import LocalRuntime
    from tests.conftest import assert_nothing_leaked

    with LocalRuntime(parameter_overrides={"LogLevel": "DEBUG"}) as rt:
        arn, token, _value = _staged_iam(rt)
        assert not rt.invoke_router(event("createSecret", arn, token)).failed
        import logging

        assert logging.getLogger("secret-rotation").getEffectiveLevel() == logging.DEBUG
        assert_nothing_leaked(rt)


def test_a_retried_invocation_attaches_to_the_finished_execution(runtime: Any) -> None:
    arn, token, _value = _staged_iam(runtime)
    _steps_before_finish(runtime, arn, token)
    first = runtime.invoke_router(event("finishSecret", arn, token))
    assert not first.failed, first.error
    assert "AWSCURRENT" in versions(runtime, arn)[token]
    # Secrets Manager retrying finishSecret: the version is current now, so nothing runs again
    again = runtime.invoke_router(event("finishSecret", arn, token))
    assert again.payload["Outcome"] == "already-current"
    assert len([e for e in runtime.executions() if e["name"].startswith("finishSecret")]) == 1


def test_a_second_router_for_a_running_execution_waits_for_it_instead_of_starting_another(
    runtime: Any,
) -> None:
    import threading

    arn, token, _value = _staged_iam(runtime)
    runtime.invoke_router(event("createSecret", arn, token))
    gate = threading.Event()

    def hold_worker(spec: Any, _event: Any) -> None:
        if spec.logical_id == "SingleUserTestSecretFunction":
            gate.wait(10)

    runtime.host.before_invoke.append(hold_worker)
    results: list[Any] = []
    callers = [
        threading.Thread(
            target=lambda: results.append(runtime.invoke_router(event("testSecret", arn, token)))
        )
        for _ in range(2)
    ]
    for caller in callers:
        caller.start()
    import time

    deadline = time.monotonic() + 10
    while len(runtime.executions()) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    gate.set()
    for caller in callers:
        caller.join(30)
    test_runs = [e for e in runtime.executions() if e["name"].startswith("testSecret")]
    assert len(test_runs) == 1
    assert len(results) == 2 and all(not r.failed for r in results)
    assert results[0].payload["ExecutionArn"] == results[1].payload["ExecutionArn"]


def test_a_second_rotate_secret_while_one_runs_is_refused_cleanly(runtime: Any) -> None:
    import threading

    from botocore.exceptions import ClientError

    arn = create_secret(runtime, "app/db", UNREACHABLE)
    gate, entered = threading.Event(), threading.Event()

    def hold(spec: Any, evt: Any) -> None:
        if spec.logical_id == "RouterFunction" and evt.get("Step") == "createSecret":
            entered.set()
            gate.wait(10)

    runtime.host.before_invoke.append(hold)
    first = threading.Thread(target=lambda: runtime.rotate(arn))
    first.start()
    assert entered.wait(10)
    try:
        with pytest.raises(ClientError, match="previous rotation"):
            runtime.client("secretsmanager").rotate_secret(
                SecretId=arn, RotationLambdaARN=runtime.router_function_arn
            )
    finally:
        gate.set()
        first.join(60)
    assert len(runtime.rotations) == 1
