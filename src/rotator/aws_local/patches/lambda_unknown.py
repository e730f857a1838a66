"""Step Functions names a Lambda function error that carries no error type ``Lambda.Unknown``.

AWS: "Unhandled errors in Lambda are reported as ``Lambda.Unknown`` in the error output. These
include out-of-memory errors and function timeouts. You can match on ``Lambda.Unknown``,
``States.ALL``, or ``States.TaskFailed`` to handle these errors." A function that runs out of
time answers ``Invoke`` with ``X-Amz-Function-Error: Unhandled`` and a payload holding only an
``errorMessage`` ("<time> <request id> Task timed out after 30.03 seconds"); the ``lambda:invoke``
task then fails with ``Lambda.Unknown`` and the cause "The cause could not be determined because
Lambda did not return an error type. Returned payload: ...".
https://docs.aws.amazon.com/step-functions/latest/dg/bp-lambda-serviceexception.html
https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html
https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html

moto 5.2 names such a failure ``Exception`` (it logs that it found no ``errorType``), which
no ``Retry`` or ``Catch`` written for AWS matches by name: a timed-out worker would skip its
retries and reach only a ``States.ALL`` catcher. The patch names it as AWS does, for the
``lambda:invoke`` integration only; errors that carry an ``errorType`` keep moto's handling.
"""

from __future__ import annotations

import json
from typing import Any

from rotator.aws_local.patches import MotoPatch

UNKNOWN = "Lambda.Unknown"
CAUSE = "The cause could not be determined because Lambda did not return an error type. Returned payload: {}"


def carries_an_error_type(payload: str) -> bool:
    try:
        parsed = json.loads(payload)
    except ValueError:
        return False
    return isinstance(parsed, dict) and isinstance(parsed.get("errorType"), str)


class UntypedLambdaErrorsAreLambdaUnknown(MotoPatch):
    aws_doc = "https://docs.aws.amazon.com/step-functions/latest/dg/bp-lambda-serviceexception.html"

    def replacements(self) -> list[tuple[type, str, Any]]:
        from moto.stepfunctions.parser.api import HistoryEventType, TaskFailedEventDetails
        from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import (
            CustomErrorName,
        )
        from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
            FailureEvent,
        )
        from moto.stepfunctions.parser.asl.component.state.exec.state_task import (
            lambda_eval_utils,
        )
        from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_lambda import (
            StateTaskServiceLambda,
        )
        from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

        original = StateTaskServiceLambda._from_error

        def _from_error(task: Any, env: Any, ex: Exception) -> Any:
            if isinstance(
                ex, lambda_eval_utils.LambdaFunctionErrorException
            ) and not carries_an_error_type(ex.payload):
                return FailureEvent(
                    env=env,
                    error_name=CustomErrorName(UNKNOWN),
                    event_type=HistoryEventType.TaskFailed,
                    event_details=EventDetails(  # type: ignore[typeddict-item]  # moto builds it so too
                        taskFailedEventDetails=TaskFailedEventDetails(
                            error=UNKNOWN,
                            cause=CAUSE.format(ex.payload),
                            resource=task._get_sfn_resource(),
                            resourceType=task._get_sfn_resource_type(),
                        )
                    ),
                )
            return original(task, env, ex)

        return [(StateTaskServiceLambda, "_from_error", _from_error)]
