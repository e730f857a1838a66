"""Hand-made: what moto's CloudFormation cannot create, created through the service APIs.

moto 5.2's CloudFormation skips ``AWS::SNS::Subscription`` and ``AWS::CloudWatch::Alarm``
(it warns and creates nothing). After the stack is ``CREATE_COMPLETE`` the local runtime creates
them itself with ``Subscribe`` and ``PutMetricAlarm``, their properties resolved by moto's own
CloudFormation resolver against the stack, conditions included. moto never evaluates the alarm
(no Step Functions metrics) and never delivers to an email endpoint; the resources exist so the
stack is whole. Any other type moto skips is an error: nothing may silently go missing.

Also hand-made, with no template resource behind it:

- an SQS queue subscribed to each topic, so tests, the demo and ``serve`` can read alerts;
- EventBridge delivery of Secrets Manager's service events to the rules' Lambda targets
  (:func:`emit_service_event`), since no AWS service emits events into moto.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from rotator.aws_local.stack import Deployed, DeployError

if TYPE_CHECKING:
    from rotator.aws_local.lambda_host import FunctionHost, Invocation
    from rotator.iam_checker import IamChecker

#: resource types moto's CloudFormation skips and the local runtime creates
CREATED_BY_HAND = ("AWS::SNS::Subscription", "AWS::CloudWatch::Alarm")


def _resolved_properties(deployed: Deployed, logical_id: str, region: str) -> dict[str, Any] | None:
    """The resource's properties with intrinsic functions resolved, or None when its
    Condition is false."""
    from moto.cloudformation.models import cloudformation_backends
    from moto.cloudformation.parsing import clean_json

    from rotator.aws_local.contracts import ACCOUNT

    stack = cloudformation_backends[ACCOUNT][region].stacks[deployed.stack_id]
    resource = deployed.template["Resources"][logical_id]
    condition = resource.get("Condition")
    if condition and not stack.resource_map.lazy_condition_map[condition]:
        return None
    properties: dict[str, Any] = clean_json(resource.get("Properties", {}), stack.resource_map)
    return properties


def create_skipped_resources(deployed: Deployed, clients: Any, region: str) -> list[str]:
    """Create what moto's CloudFormation skipped; returns the logical ids created."""
    from rotator.aws_local.stack import unsupported_types

    skipped = set(unsupported_types(deployed.template))
    unknown = skipped - set(CREATED_BY_HAND)
    if unknown:
        raise DeployError(
            f"moto's CloudFormation cannot create {', '.join(sorted(unknown))} and the local "
            "runtime has no hand-made replacement (add one to rotator.aws_local.uncreated)"
        )
    created = []
    for logical_id, resource in deployed.template["Resources"].items():
        kind = resource["Type"]
        if kind not in skipped:
            continue
        props = _resolved_properties(deployed, logical_id, region)
        if props is None:
            continue
        if kind == "AWS::SNS::Subscription":
            clients("sns").subscribe(
                TopicArn=props["TopicArn"], Protocol=props["Protocol"], Endpoint=props["Endpoint"]
            )
        elif kind == "AWS::CloudWatch::Alarm":
            props.setdefault("AlarmName", f"{deployed.stack_name}-{logical_id}")
            clients("cloudwatch").put_metric_alarm(**props)
        created.append(logical_id)
    return created


def subscribe_inbox(clients: Any, topic_arn: str, queue_name: str) -> str:
    """An SQS queue receiving everything published to ``topic_arn``; returns its URL."""
    sns, sqs = clients("sns"), clients("sqs")
    queue_url: str = sqs.create_queue(QueueName=queue_name)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
    return queue_url


def emit_service_event(
    host: FunctionHost,
    region: str,
    detail_type: str,
    detail: dict[str, Any],
    *,
    iam: IamChecker | None = None,
) -> list[Invocation]:
    """Deliver an event as an AWS service would (here: Secrets Manager's CloudTrail events) to
    the matching EventBridge rules' Lambda targets in ``host``; returns their invocations.

    Rules and targets are the ones CloudFormation created in moto; moto's own pattern matcher
    decides which rules match. With ``iam``, a target is invoked only when its resource policy
    lets ``events.amazonaws.com`` invoke it for that rule (``aws:SourceArn``); EventBridge drops
    a delivery it may not make (it counts it in the rule's ``FailedInvocations``).
    https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-use-resource-based.html
    """
    from moto.events.models import events_backends

    from rotator.aws_local.contracts import ACCOUNT
    from rotator.iam_checker import ServiceInvokeDeniedError

    event: Any = {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": "aws.secretsmanager",
        "account": ACCOUNT,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [],
        "detail": json.loads(json.dumps(detail)),
    }
    invocations = []
    bus = events_backends[ACCOUNT][region].event_buses["default"]
    for rule in list(bus.rules.values()):
        if rule.state != "ENABLED" or not rule.event_pattern.matches_event(event):
            continue
        for target in rule.targets:
            spec = host.find(target["Arn"])
            if spec is None:
                continue
            if iam is not None:
                try:
                    iam.authorize_service_invoke(
                        "events.amazonaws.com",
                        spec.arn,
                        source_arn=rule.arn,
                        source_account=ACCOUNT,
                    )
                except ServiceInvokeDeniedError:
                    continue
            invocations.append(host.invoke(spec, event))
    return invocations
