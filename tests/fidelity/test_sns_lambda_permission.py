"""SNS invokes a subscribed function only when the function's resource policy lets
sns.amazonaws.com invoke it for that topic (rotator.aws_local.patches.sns_lambda_permission)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from rotator.aws_local.patches.sns_lambda_permission import SnsInvokesLambdaOnlyWithPermission
from rotator.checks import eventually


@pytest.fixture
def other_topic(runtime: Any) -> Iterator[str]:
    """A topic the alerts function is subscribed to, but that its resource policy does not name
    (the template lets only SafetyNetTopic invoke it)."""
    sns = runtime.client("sns")
    topic = sns.create_topic(Name=f"fidelity-{uuid.uuid4().hex[:8]}")["TopicArn"]
    function = runtime.spec.functions["AlertSafetyNetFunction"].arn
    subscription = sns.subscribe(TopicArn=topic, Protocol="lambda", Endpoint=function)
    try:
        yield topic
    finally:
        sns.unsubscribe(SubscriptionArn=subscription["SubscriptionArn"])
        sns.delete_topic(TopicArn=topic)


def _alerts_invocations(rt: Any) -> int:
    name = rt.spec.functions["AlertSafetyNetFunction"].name
    return sum(inv.function == name for inv in rt.host.invocations)


def _publish(rt: Any, topic: str) -> None:
    rt.client("sns").publish(TopicArn=topic, Message=json.dumps({"AlarmName": "probe"}))


def test_the_topic_the_policy_names_invokes_the_function(runtime: Any) -> None:
    _publish(runtime, runtime.spec.topics["SafetyNetTopic"])
    assert eventually(lambda: _alerts_invocations(runtime) == 1, 10)
    (invoke,) = [r for r in runtime.iam_calls() if r.caller.kind == "service"]
    assert invoke.caller.name == "sns.amazonaws.com" and invoke.decision.allowed


def test_another_topic_is_refused_and_the_function_does_not_run(
    runtime: Any, other_topic: str
) -> None:
    _publish(runtime, other_topic)
    time.sleep(1)  # SNS would have delivered by now (the allowed case takes milliseconds)
    assert _alerts_invocations(runtime) == 0
    (refused,) = runtime.iam_report().denied
    assert refused.caller.name == "sns.amazonaws.com"
    assert refused.request is not None and refused.request.context["aws:SourceArn"] == other_topic


def test_moto_alone_delivers_from_any_topic(runtime: Any, other_topic: str) -> None:
    with runtime.cloud.suspended(SnsInvokesLambdaOnlyWithPermission):
        _publish(runtime, other_topic)
        assert eventually(lambda: _alerts_invocations(runtime) == 1, 10)
