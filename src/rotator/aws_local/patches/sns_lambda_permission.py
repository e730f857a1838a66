"""SNS delivers to a Lambda subscriber only when the function's resource policy lets it.

AWS: SNS invokes a subscribed function asynchronously as the service principal
``sns.amazonaws.com``, with the topic as ``aws:SourceArn``; Lambda refuses the invocation unless
the function's resource-based policy allows that principal (the template's
``SafetyNetTopicInvokePermission``), and SNS then fails the delivery (it retries, then records a
delivery failure) instead of running the function.
https://docs.aws.amazon.com/lambda/latest/dg/with-sns.html
https://docs.aws.amazon.com/lambda/latest/dg/access-control-resource-based.html

moto's SNS hands every message to a ``lambda`` subscription without asking Lambda's policy. The
patch wraps only the lambda-protocol delivery of a subscription: for a function of a local
stack whose runtime checks IAM (:mod:`rotator.iam_checker`), the function's resource policy as
deployed decides, and a refused delivery is dropped (recorded in the runtime's IAM report).
Other protocols, and functions of no local stack, keep moto's behaviour.
"""

from __future__ import annotations

from typing import Any

from rotator.aws_local.patches import MotoPatch


class SnsInvokesLambdaOnlyWithPermission(MotoPatch):
    aws_doc = "https://docs.aws.amazon.com/lambda/latest/dg/with-sns.html"

    def replacements(self) -> list[tuple[type, str, Any]]:
        from moto.sns.models import Subscription

        from rotator.iam_checker import ServiceInvokeDeniedError

        cloud = self.cloud
        original = Subscription.publish

        def publish(subscription: Any, *args: Any, **kwargs: Any) -> None:
            if subscription.protocol == "lambda":
                runtime = cloud.find_runtime(str(subscription.endpoint))
                checker = runtime.iam if runtime is not None else None
                if checker is not None:
                    try:
                        checker.authorize_service_invoke(
                            "sns.amazonaws.com",
                            str(subscription.endpoint),
                            source_arn=str(subscription.topic.arn),
                            source_account=str(subscription.account_id),
                        )
                    except ServiceInvokeDeniedError:
                        return
            original(subscription, *args, **kwargs)

        return [(Subscription, "publish", publish)]
