"""A worker that runs out of time: Lambda answers without an error type, and Step Functions
names the failure Lambda.Unknown (rotator.aws_local.lambda_host,
rotator.aws_local.patches.lambda_unknown)."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from rotator.aws_local.patches.lambda_unknown import UntypedLambdaErrorsAreLambdaUnknown

WORKER = "IamKeysCreateSecretFunction"
TIMEOUT = 1


@pytest.fixture
def slow_worker(runtime: Any) -> Iterator[Any]:
    """The IAM-key createSecret worker times out (1 s) on every invocation, before it runs."""
    spec = runtime.spec.functions[WORKER]
    runtime.host.timeouts[spec.name] = TIMEOUT

    def hang(called: Any, _event: Any) -> None:
        if called.logical_id == WORKER:
            time.sleep(TIMEOUT + 0.5)
            raise RuntimeError("killed after its timeout")

    runtime.host.before_invoke.append(hang)
    yield spec
    runtime.host.before_invoke.remove(hang)
    time.sleep(0.6)  # the last killed invocation's thread ends before the stack is handed on


def _create_step(rt: Any) -> str:
    """Start the rotation state machine's createSecret for an IAM key secret; its ARN."""
    name = f"fidelity-{uuid.uuid4().hex[:8]}"
    arn = f"arn:aws:secretsmanager:{rt.region}:123456789012:secret:{name}-AbCdEf"
    step = {
        "InputVersion": 2,
        "Step": "createSecret",
        "SecretArn": arn,
        "SecretName": name,
        "DisplayName": name,
        "Token": str(uuid.uuid4()),
        "Strategy": "multi-credential",
        "Engine": "iam",
        "PasswordPolicy": {"Length": 32, "ExcludeCharacters": ""},
        "WriteProbe": False,
    }
    sfn = rt.client("stepfunctions")
    execution = sfn.start_execution(
        stateMachineArn=rt.state_machine_arn, name=uuid.uuid4().hex, input=json.dumps(step)
    )["executionArn"]
    deadline = time.monotonic() + 60
    while sfn.describe_execution(executionArn=execution)["status"] == "RUNNING":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    return str(execution)


def _task_failures(rt: Any, execution: str) -> list[dict[str, Any]]:
    return [
        h["taskFailedEventDetails"]
        for h in rt.history(execution)
        if h["type"] == "TaskFailed" and h["taskFailedEventDetails"].get("resourceType") == "lambda"
    ]


def test_lambda_answers_a_timed_out_invocation_without_an_error_type(
    runtime: Any, slow_worker: Any
) -> None:
    response = runtime.client("lambda").invoke(FunctionName=slow_worker.name, Payload=b"{}")
    payload = json.loads(response["Payload"].read())
    assert response["FunctionError"] == "Unhandled"
    assert "errorType" not in payload
    # "<time> <request id> Task timed out after 1.00 seconds", as Lambda writes it
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\dT[\d:.]+Z [0-9a-f-]{36} Task timed out after 1\.\d\d seconds",
        payload["errorMessage"],
    ), payload["errorMessage"]


def test_step_functions_names_the_timeout_lambda_unknown_and_retries_it(
    runtime: Any, slow_worker: Any
) -> None:
    execution = _create_step(runtime)

    failures = _task_failures(runtime, execution)
    assert {f["error"] for f in failures} == {"Lambda.Unknown"}
    assert all(
        f["cause"].startswith("The cause could not be determined because Lambda did not return")
        and "Task timed out after" in f["cause"]
        for f in failures
    )
    # matched by name: the Retry for function timeouts ran (1 attempt + RetryMaxAttempts)
    assert len(failures) == 1 + int(runtime._overrides["RetryMaxAttempts"])
    described = runtime.client("stepfunctions").describe_execution(executionArn=execution)
    assert described["status"] == "FAILED" and described["error"] == "Lambda.Unknown"
    (alert,) = runtime.alerts(wait_seconds=2)
    assert alert.message["error"] == "Lambda.Unknown"


def test_moto_alone_names_it_exception_and_no_retry_matches(runtime: Any, slow_worker: Any) -> None:
    with runtime.cloud.suspended(UntypedLambdaErrorsAreLambdaUnknown):
        execution = _create_step(runtime)
    failures = _task_failures(runtime, execution)
    assert [f["error"] for f in failures] == ["Exception"]
    runtime.alerts(wait_seconds=2)
