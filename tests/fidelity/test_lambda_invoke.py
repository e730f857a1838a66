"""Lambda Invoke runs the deployed function's handler (rotator.aws_local.patches.lambda_invoke):
a synchronous invocation answers with the function's result or, when it fails, with
X-Amz-Function-Error and Lambda's error payload."""

from __future__ import annotations

import json
from typing import Any


def test_invoke_runs_the_handler_and_reports_its_error_as_lambda_does(runtime: Any) -> None:
    response = runtime.client("lambda").invoke(
        FunctionName=runtime.router_function_arn,
        Payload=json.dumps({"Step": "createSecret"}).encode(),
    )
    payload = json.loads(response["Payload"].read())
    assert response["FunctionError"] == "Unhandled"
    assert payload["errorType"] == "InvalidEventError"
    # the router's alias "live" (what Secrets Manager invokes) runs the router
    assert [inv.function for inv in runtime.host.invocations] == [
        runtime.spec.functions["RouterFunction"].name
    ]


def test_the_handler_runs_with_its_deployed_environment_and_timeout(runtime: Any) -> None:
    spec = runtime.spec.functions["RouterFunction"]
    config = runtime.client("lambda").get_function_configuration(FunctionName=spec.name)
    assert spec.timeout == config["Timeout"]
    assert spec.role_arn == config["Role"]
    deployed = config["Environment"]["Variables"]
    assert {k: v for k, v in spec.environment.items() if k in deployed} == deployed


def test_sns_delivers_to_a_lambda_subscription_by_running_the_handler(runtime: Any) -> None:
    # SafetyNetTopic -> AlertSafetyNetFunction is one of the subscriptions moto's CloudFormation
    # skips (rotator.aws_local.uncreated creates it); an alarm notification arrives this way.
    from rotator.checks import eventually

    topic = next(arn for logical, arn in runtime.spec.topics.items() if logical == "SafetyNetTopic")
    alerts_function = runtime.spec.functions["AlertSafetyNetFunction"].name
    runtime.client("sns").publish(TopicArn=topic, Message=json.dumps({"AlarmName": "probe"}))

    assert eventually(
        lambda: any(inv.function == alerts_function for inv in runtime.host.invocations), 10
    )
