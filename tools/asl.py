"""Generate ``statemachine/*.asl.json`` from the error taxonomy (``make asl``).

The Retry and Catch lists come from ``rotation_core.exceptions``: the classes in
``TRANSIENT_ERRORS`` are retried with exponential backoff, ``MaxDelaySeconds`` and full jitter;
every class of the taxonomy is caught by name (then ``States.ALL``) on the way to the alert.
Lambda's own errors are retried as the Step Functions documentation recommends
(``Lambda.ServiceException``, ``Lambda.AWSLambdaException``, ``Lambda.SdkClientException``,
``Lambda.TooManyRequestsException``, ``Lambda.ClientExecutionTimeoutException``); a function that
times out or crashes surfaces as ``Lambda.Unknown`` ("Unhandled errors in Lambda are reported
as Lambda.Unknown ... These include out-of-memory errors and function timeouts"; Lambda names a
timeout in the Init phase ``Sandbox.Timedout``) and is retried like a transient error (every
step is idempotent).
https://docs.aws.amazon.com/step-functions/latest/dg/bp-lambda-serviceexception.html
https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html
https://docs.aws.amazon.com/lambda/latest/dg/troubleshooting-invocation.html

Beyond retries and catches: a single-user change the router stopped waiting for is rolled back
(``after_the_router_stopped_waiting``), createSecret refuses a deployment whose retries can
outlast the router's wait (``timing_budget``), and Secrets Manager's automatic retries of a
failed rotation do not alert again (``first_failure_only``).

Numbers that come from template parameters stay ``${Name}`` placeholders (CloudFormation's
``DefinitionSubstitutions`` fills them); ``tools/deploy_check.py`` validates the definitions
after substitution with the template's defaults. Pass states that evaluate paths or intrinsic
functions cannot have a Catch, so each sits in a one-branch Parallel state whose Catch leads to
the alert: no state can fail without one.

    python -m tools.asl            # write the files
    python -m tools.asl --check    # exit 1 when the committed files differ
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "functions" / "shared"))

from rotation_core import exceptions  # noqa: E402
from rotation_core.recovery import (  # noqa: E402
    ALERT_SCHEMA_VERSION,
    CLEAR_AND_ROTATE,
    RECOVERY,
    URGENT,
)
from rotation_core.router import RouterConfig  # noqa: E402

OUTPUT = ROOT / "statemachine"

LAMBDA_SERVICE_ERRORS = [
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
    "Lambda.ClientExecutionTimeoutException",
]
#: a function that ran out of time (or crashed in a way Lambda cannot name)
FUNCTION_TIMEOUTS = ["Sandbox.Timedout", "Lambda.Unknown"]


class Placeholder:
    """A number CloudFormation substitutes (``${Name}`` without quotes in the JSON)."""

    def __init__(self, name: str) -> None:
        self.name = name


def sub(name: str) -> Placeholder:
    return Placeholder(name)


def transient() -> list[str]:
    return [cls.__name__ for cls in exceptions.TRANSIENT_ERRORS]


def every_error() -> list[str]:
    """Every class of the taxonomy: permanent first, then transient (retries exhausted)."""
    return [cls.__name__ for cls in (*exceptions.PERMANENT_ERRORS, *exceptions.TRANSIENT_ERRORS)]


def retry(errors: list[str], max_attempts: Any = None) -> dict[str, Any]:
    return {
        "ErrorEquals": errors,
        "IntervalSeconds": sub("RetryIntervalSeconds"),
        "BackoffRate": 2,
        "MaxAttempts": max_attempts if max_attempts is not None else sub("RetryMaxAttempts"),
        "MaxDelaySeconds": sub("RetryMaxDelaySeconds"),
        "JitterStrategy": "FULL",
    }


def catch_all(next_state: str, result_path: str | None = "$.failure") -> list[dict[str, Any]]:
    """Every taxonomy class by name (the taxonomy stays visible in the ASL), then the rest."""
    return [
        {"ErrorEquals": every_error(), "ResultPath": result_path, "Next": next_state},
        {"ErrorEquals": ["States.ALL"], "ResultPath": result_path, "Next": next_state},
    ]


def retried_by_workers() -> list[str]:
    """The error names a worker task's ``Retry`` retries (the rest fail at once)."""
    return transient() + LAMBDA_SERVICE_ERRORS + FUNCTION_TIMEOUTS


def failure_description(name: str, retries_allowed: Any) -> dict[str, Any]:
    """The alert for a failed step; ``retries_allowed`` is how many retries the error had."""
    return alert_description(
        name,
        f"Write the failure alert ({'retried' if retries_allowed else 'not retried'})",
        {
            **common_fields(),
            "step.$": "$.Step",
            "rolled_back": "nothing needed: the failing step changed nothing clients use",
            "retries_allowed": retries_allowed,
            "next_steps.$": advice(
                "Fix what the error names (the cause of the failed state, in the execution, tells more). "
                + RECOVERY
            ),
        },
        "Identifiers and the error class only, never a value. The cause stays in the execution history.",
        then=FIRST_FAILURE,
    )


def worker_task(
    comment: str, function: str, *, next_state: str | None, result_path: str, selector: str
) -> dict[str, Any]:
    """A worker invocation: transient errors and timeouts retried, everything caught."""
    state: dict[str, Any] = {
        "Type": "Task",
        "Comment": comment,
        "Resource": "arn:${Partition}:states:::lambda:invoke",
        "Parameters": {"FunctionName.$": function, "Payload.$": "$"},
        "ResultPath": result_path,
        "ResultSelector": {f"{selector}.$": f"$.Payload.{selector}"},
        "Retry": [retry(retried_by_workers())],
    }
    if next_state is None:
        state["OutputPath"] = result_path
        state["End"] = True
    else:
        state["Next"] = next_state
    return state


def guarded(
    name: str,
    states: dict[str, Any],
    *,
    start: str,
    next_state: str,
    on_error: str,
    comment: str,
    error_path: str = "$.internalFailure",
) -> dict[str, Any]:
    """Pass states that evaluate paths or intrinsics, in a one-branch Parallel with a Catch.

    The branch's output replaces the state's input (``OutputPath: $[0]``); an error goes to
    ``error_path`` on the way to ``on_error``.
    """
    return {
        name: {
            "Type": "Parallel",
            "Comment": comment,
            "Branches": [{"StartAt": start, "States": states}],
            "OutputPath": "$[0]",
            "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": error_path, "Next": on_error}],
            "Next": next_state,
        }
    }


def alert_description(
    name: str, write: str, fields: dict[str, Any], comment: str, *, then: str = "Publish alert"
) -> dict[str, Any]:
    """A guarded Pass state writing the alert body to ``$.alert``, then ``then``."""
    return guarded(
        name,
        {write: {"Type": "Pass", "Parameters": fields, "ResultPath": "$.alert", "End": True}},
        start=write,
        next_state=then,
        on_error="Describe the failure plainly",
        comment=comment,
    )


#: Secrets Manager retries a failed rotation with the same token; the router names every further
#: execution of a step after the first ``<step>-<token>-<digest>-<attempt>`` (rotation_core.router)
FIRST_FAILURE = "First failure of this rotation?"


def later_attempt_patterns() -> list[str]:
    """``StringMatches`` patterns (only ``*`` is a wildcard) for the names of a step's second and
    later executions: they end in ``-2`` ... ``-<max_attempts>``; a first one ends in a
    24-character digest."""
    return [f"*-{attempt}" for attempt in range(2, RouterConfig.max_attempts + 1)]


def first_failure_only(fail_state: str) -> dict[str, Any]:
    """Announce a rotation's first failure only: Secrets Manager's automatic retries of the same
    token do not alert again (the alert already says the service retries)."""
    return {
        FIRST_FAILURE: {
            "Type": "Choice",
            "Comment": "A later execution of a step (name ending in -2, -3...) runs only after an earlier one of this token ended: the earlier failure was announced, by its execution or by the safety net. The execution still fails with the worker's error class.",
            "Choices": [
                {
                    "Or": [
                        {"Variable": "$.alert.execution_arn", "StringMatches": pattern}
                        for pattern in later_attempt_patterns()
                    ],
                    "Next": fail_state,
                }
            ],
            "Default": "Publish alert",
        }
    }


def alert_states(subject: str, fail_state: str) -> dict[str, Any]:
    """Publish the alert (or, if it cannot be described or sent, a plain one), then fail."""
    return {
        "Describe the failure plainly": {
            "Type": "Pass",
            "Comment": "Reached only when the alert could not be described; names nothing but the execution.",
            "Parameters": {
                "schema_version": ALERT_SCHEMA_VERSION,
                "error": "AlertDescriptionFailed",
                "execution_arn.$": "$$.Execution.Id",
                "next_steps": "Open the execution: its history shows the failed state and why.",
            },
            "ResultPath": "$.alert",
            "Next": "Publish a plain alert",
        },
        "Publish alert": {
            "Type": "Task",
            "Resource": "arn:${Partition}:states:::sns:publish",
            "Parameters": {
                "TopicArn": "${AlertTopicArn}",
                "Subject.$": subject,
                "Message.$": "States.JsonToString($.alert)",
            },
            "ResultPath": None,
            "Retry": [retry(["States.ALL"], max_attempts=3)],
            "Catch": [
                {"ErrorEquals": ["States.ALL"], "ResultPath": None, "Next": "Publish a plain alert"}
            ],
            "Next": fail_state,
        },
        "Publish a plain alert": {
            "Type": "Task",
            "Resource": "arn:${Partition}:states:::sns:publish",
            "Parameters": {
                "TopicArn": "${AlertTopicArn}",
                "Subject": "Secret rotation failed (see the execution)",
                "Message.$": "$$.Execution.Id",
            },
            "ResultPath": None,
            "Retry": [retry(["States.ALL"], max_attempts=3)],
            "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": None, "Next": fail_state}],
            "Next": fail_state,
        },
    }


def common_fields() -> dict[str, Any]:
    return {
        "schema_version": ALERT_SCHEMA_VERSION,
        "secret_name.$": "$.SecretName",
        "secret_arn.$": "$.SecretArn",
        "strategy.$": "$.Strategy",
        "engine.$": "$.Engine",
        "token.$": "$.Token",
        "error.$": "$.failure.Error",
        "execution_arn.$": "$$.Execution.Id",
        "console_url.$": "States.Format('${ExecutionConsoleUrl}{}', $$.Execution.Id)",
    }


def workers(
    kind: str, prefix: str, *, rollback: bool, wait: Any, rolls_back: str
) -> dict[str, Any]:
    return {
        "Type": "Pass",
        "Comment": f"The {kind} workers; everything after this state is shared.",
        "Result": {
            "Create": f"${{{prefix}CreateSecretFunctionArn}}",
            "Set": f"${{{prefix}SetSecretFunctionArn}}",
            "Test": f"${{{prefix}TestSecretFunctionArn}}",
            "Rollback": f"${{{prefix}RollbackFunctionArn}}" if rollback else "none",
            "PropagationWaitSeconds": wait,
            "RollsBack": rolls_back,
        },
        "ResultPath": "$.Workers",
        "Next": "Route by step",
    }


CLEAR_AND_ROTATE_ARGS = ("$.SecretArn", "$.Token", "$.SecretArn")


def advice(text: str, *paths: str) -> str:
    """``States.Format`` of ``text``: each ``{}`` filled from ``paths`` in order; without paths,
    the recovery commands' secret and token (``RECOVERY`` or ``URGENT``)."""
    if not paths:
        count = text.count("{}")
        fill = {
            4: (*CLEAR_AND_ROTATE_ARGS, "$.SecretArn"),
            5: ("$.SecretArn", "$.Token", *CLEAR_AND_ROTATE_ARGS),
        }
        paths = fill[count]
    assert text.count("{}") == len(paths), text
    assert not set("'\\") & set(text), "reserved characters in an intrinsic string"
    return "States.Format('" + text + "', " + ", ".join(paths) + ")"


def _seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def choice(variable: str, value: str, next_state: str) -> dict[str, Any]:
    return {"Variable": variable, "StringEquals": value, "Next": next_state}


LOCKED_OUT = "Could clients be locked out?"


def after_the_router_stopped_waiting() -> dict[str, Any]:
    """After setSecret or testSecret succeeded: a single-user change the router no longer waits
    for is rolled back. The router stops waiting at ``RouterDeadline`` (RotationInProgressError);
    Secrets Manager then counts the attempt as failed and calls no further step until its retry,
    so clients on AWSCURRENT would stay locked out that long."""
    return {
        LOCKED_OUT: {
            "Type": "Choice",
            "Comment": "Only single-user changes lock clients out; an input without RouterDeadline comes from an older router.",
            "Choices": [
                {
                    "And": [
                        {"Variable": "$.Strategy", "StringEquals": "single-user"},
                        {"Variable": "$.RouterDeadline", "IsPresent": True},
                    ],
                    "Next": "Read the clock",
                }
            ],
            "Default": "Step done",
        },
        **guarded(
            "Read the clock",
            {
                "Note the time": {
                    "Type": "Pass",
                    "Parameters": {"Now.$": "$$.State.EnteredTime"},
                    "ResultPath": "$.Clock",
                    "End": True,
                }
            },
            start="Note the time",
            next_state="Has the router stopped waiting?",
            on_error="Roll back the abandoned change",
            error_path="$.failure",
            comment="The time now, from the context object (a timestamp with fractional seconds). If it cannot be read, the change is rolled back: nobody can tell whether the router still waits.",
        ),
        "Has the router stopped waiting?": {
            "Type": "Choice",
            "Choices": [
                {
                    "Variable": "$.Clock.Now",
                    "TimestampGreaterThanPath": "$.RouterDeadline",
                    "Next": "The router stopped waiting",
                }
            ],
            "Default": "Step done",
        },
        "The router stopped waiting": {
            "Type": "Pass",
            "Comment": "Fails (after the rollback and one alert) with an error name of its own: no worker raises it.",
            "Result": {
                "Error": ROUTER_STOPPED_WAITING,
                "Cause": '{"errorMessage": "the router stopped waiting before this step ended; the change was rolled back"}',
            },
            "ResultPath": "$.failure",
            "Next": "Roll back the abandoned change",
        },
        "Roll back the abandoned change": {
            **worker_task(
                "Single-user: put the password of AWSCURRENT back; clients log in again.",
                "$.Workers.Rollback",
                next_state="Describe the abandoned change",
                result_path="$.rollback",
                selector="Outcome",
            ),
            "Catch": catch_all(
                "Describe the failed rollback of the abandoned change", "$.rollbackFailure"
            ),
        },
        "Step done": {"Type": "Succeed"},
    }


#: the error an execution fails with after rolling back a change the router stopped waiting for
ROUTER_STOPPED_WAITING = "RouterStoppedWaitingError"

#: what the timing check counts with, in ``$.Budget``
_BUDGET = ("Attempt", "Cap", "Worker", "Grace", "Test", "Worst", "RouterWait")


def _budget(**changes: str) -> dict[str, Any]:
    """Parameters rewriting ``$.Budget``: every field kept but those given (intrinsics)."""
    fields: dict[str, Any] = {}
    for name in _BUDGET:
        fields[f"{name}.$"] = changes.pop(name, f"$.Budget.{name}")
    assert not changes, changes
    return fields


def timing_budget() -> dict[str, Any]:
    """Before createSecret: refuse a deployment whose retry parameters let a step run longer
    than the router waits (``RouterTimeoutSeconds`` minus the router's safety margin).

    CloudFormation cannot check this (its Rules compare values, they cannot add them), so the
    state machine derives each step's worst case from its own substituted parameters:
    - a worker task: ``(RetryMaxAttempts + 1) * WorkerTimeoutSeconds`` plus the retry waits,
      ``sum(min(RetryIntervalSeconds * 2**(i-1), RetryMaxDelaySeconds) for i = 1..RetryMaxAttempts)``
      (full jitter: each wait at most its cap);
    - testSecret: the propagation wait, ``max(GraceBudgetSeconds, TestAttemptTimeoutSeconds)``,
      and a rollback (a worker task) where the strategy has one.
    SNS publish retries after a failure are not counted (a router that stops waiting then
    leaves the announcement to the execution). Nothing has changed when this refuses.
    """
    wait = _seconds(RouterConfig.safety_margin_seconds)
    states: dict[str, Any] = {
        "Start counting": {
            "Type": "Pass",
            "Parameters": {
                "Attempt": 1,
                "Cap": sub("RetryIntervalSeconds"),
                "Worker": sub("WorkerTimeoutSeconds"),
                "Grace": sub("GraceBudgetSeconds"),
                "Test": sub("TestAttemptTimeoutSeconds"),
                "Worst": 0,
                "RouterWait.$": f"States.MathAdd({_text(sub('RouterTimeoutSeconds'))}, -{wait})",
            },
            "ResultPath": "$.Budget",
            "Next": "Another worker retry?",
        },
        "Another worker retry?": {
            "Type": "Choice",
            "Choices": [
                {
                    "Variable": "$.Budget.Attempt",
                    "NumericLessThanEquals": sub("RetryMaxAttempts"),
                    "Next": "Wait capped?",
                }
            ],
            "Default": "Grace budget or one test attempt?",
        },
        "Wait capped?": {
            "Type": "Choice",
            "Choices": [
                {
                    "Variable": "$.Budget.Cap",
                    "NumericGreaterThan": sub("RetryMaxDelaySeconds"),
                    "Next": "Count a capped wait and an attempt",
                }
            ],
            "Default": "Count a wait and an attempt",
        },
        "Count a wait and an attempt": {
            "Type": "Pass",
            "Parameters": _budget(
                Attempt="States.MathAdd($.Budget.Attempt, 1)",
                Cap="States.MathAdd($.Budget.Cap, $.Budget.Cap)",
                Worker=f"States.MathAdd(States.MathAdd($.Budget.Worker, $.Budget.Cap), {_text(sub('WorkerTimeoutSeconds'))})",
            ),
            "ResultPath": "$.Budget",
            "Next": "Another worker retry?",
        },
        "Count a capped wait and an attempt": {
            "Type": "Pass",
            "Parameters": _budget(
                Attempt="States.MathAdd($.Budget.Attempt, 1)",
                Worker=f"States.MathAdd(States.MathAdd($.Budget.Worker, {_text(sub('RetryMaxDelaySeconds'))}), {_text(sub('WorkerTimeoutSeconds'))})",
            ),
            "ResultPath": "$.Budget",
            "Next": "Another worker retry?",
        },
        "Grace budget or one test attempt?": {
            "Type": "Choice",
            "Comment": "The test loop runs while what it charged stays within GraceBudgetSeconds; its first attempt always runs.",
            "Choices": [
                {
                    "Variable": "$.Budget.Test",
                    "NumericGreaterThanPath": "$.Budget.Grace",
                    "Next": "Count the test",
                }
            ],
            "Default": "Count the grace budget",
        },
        "Count the test": {
            "Type": "Pass",
            "Parameters": _budget(
                Test="States.MathAdd($.Budget.Test, $.Workers.PropagationWaitSeconds)"
            ),
            "ResultPath": "$.Budget",
            "Next": "A rollback after a failed test?",
        },
        "Count the grace budget": {
            "Type": "Pass",
            "Parameters": _budget(
                Test="States.MathAdd($.Budget.Grace, $.Workers.PropagationWaitSeconds)"
            ),
            "ResultPath": "$.Budget",
            "Next": "A rollback after a failed test?",
        },
        "A rollback after a failed test?": {
            "Type": "Choice",
            "Choices": [choice("$.Workers.Rollback", "none", "Longest: testSecret or a worker?")],
            "Default": "Count the rollback",
        },
        "Count the rollback": {
            "Type": "Pass",
            "Parameters": _budget(Test="States.MathAdd($.Budget.Test, $.Budget.Worker)"),
            "ResultPath": "$.Budget",
            "Next": "Longest: testSecret or a worker?",
        },
        "Longest: testSecret or a worker?": {
            "Type": "Choice",
            "Choices": [
                {
                    "Variable": "$.Budget.Test",
                    "NumericGreaterThanPath": "$.Budget.Worker",
                    "Next": "testSecret is the longest",
                }
            ],
            "Default": "A worker task is the longest",
        },
        "testSecret is the longest": {
            "Type": "Pass",
            "Parameters": _budget(Worst="$.Budget.Test"),
            "ResultPath": "$.Budget",
            "End": True,
        },
        "A worker task is the longest": {
            "Type": "Pass",
            "Parameters": _budget(Worst="$.Budget.Worker"),
            "ResultPath": "$.Budget",
            "End": True,
        },
    }
    return {
        **guarded(
            "Check the timing budget",
            states,
            start="Start counting",
            next_state="Within the router's wait?",
            on_error="Describe the failure",
            error_path="$.failure",
            comment="Each step's worst case from this deployment's parameters, against how long the router waits for a step.",
        ),
        "Within the router's wait?": {
            "Type": "Choice",
            "Choices": [
                {
                    "Variable": "$.Budget.Worst",
                    "NumericLessThanEqualsPath": "$.Budget.RouterWait",
                    "Next": "Create pending secret",
                }
            ],
            "Default": "The timing does not fit",
        },
        "The timing does not fit": {
            "Type": "Pass",
            "Result": {
                "Error": "InvalidConfigurationError",
                "Cause": '{"errorMessage": "a step can run longer than the router waits: RouterTimeoutSeconds is too small for the retry parameters"}',
            },
            "ResultPath": "$.failure",
            "Next": "Describe the refused configuration",
        },
    }


def rotation() -> dict[str, Any]:
    grace_failure_catch = [
        {
            "ErrorEquals": [*transient(), "States.Timeout", *FUNCTION_TIMEOUTS],
            "ResultPath": "$.failure",
            "Next": "Plan the next test",
        },
        {
            "ErrorEquals": [cls.__name__ for cls in exceptions.PERMANENT_ERRORS],
            "ResultPath": "$.failure",
            "Next": "Roll back?",
        },
        {"ErrorEquals": ["States.ALL"], "ResultPath": "$.failure", "Next": "Roll back?"},
    ]
    states: dict[str, Any] = {
        "Choose the strategy's workers": {
            "Type": "Choice",
            "Comment": "Each strategy (and multi-credential backend) has its own small worker Lambdas.",
            "Choices": [
                choice("$.Strategy", "single-user", "Single-user workers"),
                choice("$.Strategy", "alternating-users", "Alternating-users workers"),
                {
                    "And": [
                        {"Variable": "$.Strategy", "StringEquals": "multi-credential"},
                        {"Variable": "$.Engine", "StringEquals": "iam"},
                    ],
                    "Next": "Multi-credential workers (IAM access keys)",
                },
                {
                    "And": [
                        {"Variable": "$.Strategy", "StringEquals": "multi-credential"},
                        {"Variable": "$.Engine", "StringEquals": "redis"},
                    ],
                    "Next": "Multi-credential workers (Redis ACL)",
                },
            ],
            "Default": "Unsupported strategy or step",
        },
        "Single-user workers": workers(
            "single-user",
            "SingleUser",
            rollback=True,
            wait=0,
            rolls_back="the password, set back to AWSCURRENT's so its clients log in again",
        ),
        "Alternating-users workers": workers(
            "alternating-users",
            "AlternatingUsers",
            rollback=False,
            wait=0,
            rolls_back="nothing needed: clients stay on AWSCURRENT's user, which this rotation never touches",
        ),
        "Multi-credential workers (IAM access keys)": workers(
            "IAM access key",
            "IamKeys",
            rollback=True,
            wait=sub("IamPropagationWaitSeconds"),
            rolls_back="the access key this rotation created (deactivated; a retry of this rotation reactivates it, the next rotation deletes it); AWSCURRENT's key untouched",
        ),
        "Multi-credential workers (Redis ACL)": workers(
            "Redis ACL",
            "RedisAcl",
            rollback=True,
            wait=0,
            rolls_back="the password this rotation added (removed); AWSCURRENT's password untouched",
        ),
        "Route by step": {
            "Type": "Choice",
            "Choices": [
                choice("$.Step", "createSecret", "Check the timing budget"),
                choice("$.Step", "setSecret", "Set pending secret"),
                choice("$.Step", "testSecret", "Wait for propagation"),
                choice("$.Step", "finishSecret", "Ready for the router to move AWSCURRENT"),
            ],
            "Default": "Unsupported strategy or step",
        },
        "Create pending secret": {
            **worker_task(
                "Generate the new credential; it comes back sealed with KMS for the router, never in the clear.",
                "$.Workers.Create",
                next_state=None,
                result_path="$.result",
                selector="Sealed",
            ),
            "Catch": catch_all("Describe the failure"),
        },
        "Set pending secret": {
            **worker_task(
                "Make the backend accept the pending credential (idempotent: already set means done).",
                "$.Workers.Set",
                next_state=LOCKED_OUT,
                result_path="$.result",
                selector="Outcome",
            ),
            # when the worker changed the password (null if it did not): the router's
            # finishSecret measures the single-user outage window from it (telemetry.py)
            "ResultSelector": {
                "Outcome.$": "$.Payload.Outcome",
                "ChangedAt.$": "$.Payload.ChangedAt",
            },
            "Catch": catch_all("Describe the failure"),
        },
        "Wait for propagation": {
            "Type": "Wait",
            "Comment": "Backends that propagate credentials slowly (IAM) wait here; databases wait 0 s.",
            "SecondsPath": "$.Workers.PropagationWaitSeconds",
            "Next": "Start the grace budget",
        },
        "Start the grace budget": {
            "Type": "Pass",
            "Comment": "Clients tolerate failed logins for GraceBudgetSeconds. Spent is the worst case so far: every test attempt counts its full timeout, every wait its full cap.",
            "Result": {
                "Attempts": 1,
                "Spent": sub("TestAttemptTimeoutSeconds"),
                "Cap": sub("GraceFirstRetrySeconds"),
            },
            "ResultPath": "$.Grace",
            "Next": "Test pending secret",
        },
        "Test pending secret": {
            "Type": "Task",
            "Comment": "Log in with AWSPENDING the way clients will (read probe, write probe if asked). Transient failures and timeouts are retried by the grace loop, inside the budget.",
            "Resource": "arn:${Partition}:states:::lambda:invoke",
            "Parameters": {"FunctionName.$": "$.Workers.Test", "Payload.$": "$"},
            "TimeoutSeconds": sub("TestAttemptTimeoutSeconds"),
            "ResultPath": "$.result",
            "ResultSelector": {"Outcome.$": "$.Payload.Outcome"},
            "Retry": [retry(LAMBDA_SERVICE_ERRORS)],
            "Catch": grace_failure_catch,
            "Next": LOCKED_OUT,
        },
        **after_the_router_stopped_waiting(),
        **timing_budget(),
        **guarded(
            "Plan the next test",
            {
                "Charge the wait": {
                    "Type": "Pass",
                    "Comment": "The wait is drawn from 1..Cap: States.MathRandom excludes its end, so the end is Cap + 1 (never an empty range). Charge the whole cap.",
                    "Parameters": {
                        "Attempts.$": "$.Grace.Attempts",
                        "Cap.$": "$.Grace.Cap",
                        "End.$": "States.MathAdd($.Grace.Cap, 1)",
                        "Spent.$": "States.MathAdd($.Grace.Spent, $.Grace.Cap)",
                    },
                    "ResultPath": "$.Grace",
                    "Next": "Draw the wait and charge the next attempt",
                },
                "Draw the wait and charge the next attempt": {
                    "Type": "Pass",
                    "Comment": "Full jitter; the next cap doubles; the next attempt counts its full timeout.",
                    "Parameters": {
                        "Attempts.$": "States.MathAdd($.Grace.Attempts, 1)",
                        "Cap.$": "States.MathAdd($.Grace.Cap, $.Grace.Cap)",
                        "Wait.$": "States.MathRandom(1, $.Grace.End)",
                        "Spent.$": f"States.MathAdd($.Grace.Spent, {_text(sub('TestAttemptTimeoutSeconds'))})",
                    },
                    "ResultPath": "$.Grace",
                    "Next": "Cap above the max delay?",
                },
                "Cap above the max delay?": {
                    "Type": "Choice",
                    "Choices": [
                        {
                            "Variable": "$.Grace.Cap",
                            "NumericGreaterThan": sub("GraceMaxDelaySeconds"),
                            "Next": "Hold the cap at the max delay",
                        }
                    ],
                    "Default": "Next test planned",
                },
                "Hold the cap at the max delay": {
                    "Type": "Pass",
                    "Parameters": {
                        "Attempts.$": "$.Grace.Attempts",
                        "Cap": sub("GraceMaxDelaySeconds"),
                        "Wait.$": "$.Grace.Wait",
                        "Spent.$": "$.Grace.Spent",
                    },
                    "ResultPath": "$.Grace",
                    "End": True,
                },
                "Next test planned": {"Type": "Succeed"},
            },
            start="Charge the wait",
            next_state="Within the grace budget?",
            on_error="Roll back?",
            comment="The grace loop's arithmetic; if it ever fails, the test gives up (and rolls back).",
        ),
        "Within the grace budget?": {
            "Type": "Choice",
            "Choices": [
                {
                    "Variable": "$.Grace.Spent",
                    "NumericLessThanEquals": sub("GraceBudgetSeconds"),
                    "Next": "Wait before testing again",
                }
            ],
            "Default": "Roll back?",
        },
        "Wait before testing again": {
            "Type": "Wait",
            "SecondsPath": "$.Grace.Wait",
            "Next": "Test pending secret",
        },
        "Roll back?": {
            "Type": "Choice",
            "Choices": [
                choice("$.Workers.Rollback", "none", "Describe the failed test"),
            ],
            "Default": "Roll back",
        },
        "Roll back": {
            **worker_task(
                "Undo what clients would otherwise suffer from: single-user puts AWSCURRENT's password back; multi-credential takes back the credential it created.",
                "$.Workers.Rollback",
                next_state="Describe the failed test",
                result_path="$.rollback",
                selector="Outcome",
            ),
            "Catch": catch_all("Describe the failed rollback", "$.rollbackFailure"),
        },
        "Ready for the router to move AWSCURRENT": {
            "Type": "Pass",
            "Comment": "Nothing changes in the backend at finishSecret; the router moves the labels (and starts the retirement of a superseded credential).",
            "Result": {"Outcome": "ready"},
            "End": True,
        },
        "Unsupported strategy or step": {
            "Type": "Pass",
            "Result": {
                "Error": "UnsupportedStrategyError",
                "Cause": '{"errorMessage": "no workers for this strategy, engine and step"}',
            },
            "ResultPath": "$.failure",
            "Next": "Describe the failure",
        },
        "Describe the failure": {
            "Type": "Choice",
            "Comment": "Only errors a worker's Retry names were retried (RetryMaxAttempts times); a permanent error, or one raised outside a worker, failed at once.",
            "Choices": [
                {
                    "Variable": "$.failure.Error",
                    "IsPresent": False,
                    "Next": "Describe the unretried failure",
                },
                {
                    "Or": [
                        {"Variable": "$.failure.Error", "StringEquals": name}
                        for name in retried_by_workers()
                    ],
                    "Next": "Describe the failure after retries",
                },
            ],
            "Default": "Describe the unretried failure",
        },
        **failure_description("Describe the failure after retries", sub("RetryMaxAttempts")),
        **failure_description("Describe the unretried failure", 0),
        **alert_description(
            "Describe the failed test",
            "Write the failed-test alert",
            {
                **common_fields(),
                "step.$": "$.Step",
                "rolled_back.$": "$.Workers.RollsBack",
                "test_attempts.$": "$.Grace.Attempts",
                "next_steps.$": advice(
                    "The new credential did not work within the grace budget; read the error "
                    "and cause of the test in the execution and fix the backend. For a single-user "
                    "secret each retry sets the password again, and clients on AWSCURRENT fail "
                    "to log in for up to the grace budget and the rollback every time, until "
                    "the cause is fixed or the rotation is cancelled. " + RECOVERY
                ),
            },
            "The test gave up (and the rollback, where there is one, succeeded).",
            then=FIRST_FAILURE,
        ),
        **alert_description(
            "Describe the failed rollback",
            "Write the failed-rollback alert",
            {
                **common_fields(),
                "step.$": "$.Step",
                "rolled_back": "NOTHING: the rollback failed too; clients on AWSCURRENT may be locked out",
                "rollback_error.$": "$.rollbackFailure.Error",
                "test_attempts.$": "$.Grace.Attempts",
                "next_steps.$": advice(URGENT),
            },
            "The test gave up and the rollback failed too.",
            then=FIRST_FAILURE,
        ),
        **alert_description(
            "Describe the abandoned change",
            "Write the abandoned-change alert",
            {
                **common_fields(),
                "step.$": "$.Step",
                "rolled_back.$": "$.Workers.RollsBack",
                "next_steps.$": advice(
                    "The router stopped waiting (RouterTimeoutSeconds) before this step ended, "
                    "so Secrets Manager counted the attempt as failed and would not finish it; "
                    "the change was rolled back and clients on AWSCURRENT log in. If this "
                    "recurs, the backend is slower than the router waits: raise "
                    "RouterTimeoutSeconds (the README gives the worst case of each step). "
                    + RECOVERY
                ),
            },
            "A single-user change that outlived the router's wait, rolled back.",
            then=FIRST_FAILURE,
        ),
        **alert_description(
            "Describe the failed rollback of the abandoned change",
            "Write the abandoned-change failed-rollback alert",
            {
                **common_fields(),
                "step.$": "$.Step",
                "rolled_back": "NOTHING: the rollback failed; clients on AWSCURRENT may be locked out",
                "rollback_error.$": "$.rollbackFailure.Error",
                "next_steps.$": advice(URGENT),
            },
            "A single-user change outlived the router's wait and could not be rolled back.",
            then=FIRST_FAILURE,
        ),
        **alert_description(
            "Describe the refused configuration",
            "Write the refused-configuration alert",
            {
                **common_fields(),
                "step.$": "$.Step",
                "rolled_back": "nothing needed: no worker ran",
                "worst_case_seconds.$": "$.Budget.Worst",
                "router_wait_seconds.$": "$.Budget.RouterWait",
                "next_steps.$": advice(
                    "This deployment lets a rotation step run {} s, longer than the router "
                    "waits (RouterTimeoutSeconds - "
                    + _seconds(RouterConfig.safety_margin_seconds)
                    + " = {} s). Redeploy with a larger RouterTimeoutSeconds (at most 900), or "
                    "smaller RetryMaxAttempts, RetryMaxDelaySeconds, WorkerTimeoutSeconds, "
                    "GraceBudgetSeconds or IamPropagationWaitSeconds (the README gives the "
                    "worst case of each step). Then clear AWSPENDING and rotate again: "
                    + CLEAR_AND_ROTATE,
                    "$.Budget.Worst",
                    "$.Budget.RouterWait",
                    *CLEAR_AND_ROTATE_ARGS,
                ),
            },
            "The retry parameters do not fit in the router's wait; nothing ran.",
            then=FIRST_FAILURE,
        ),
        **first_failure_only("Rotation step failed"),
        **alert_states(
            "States.Format('Secret rotation failed: {} at {}', $.DisplayName, $.Step)",
            "Rotation step failed",
        ),
        "Rotation step failed": {
            "Type": "Fail",
            "Comment": "Fails with the worker's error class.",
            "ErrorPath": "$.failure.Error",
            "CausePath": "$.failure.Cause",
        },
    }
    return {
        "Comment": "One execution per Secrets Manager rotation step. The router starts it with identifiers only (SecretArn, Token, Step, Strategy, Engine, PasswordPolicy) and performs the Secrets Manager write itself when it succeeds. Transient errors are retried with exponential backoff and full jitter; testSecret retries inside the client grace budget; a test that gives up is rolled back where clients would be locked out, and so is a single-user change made after the router stopped waiting (RouterDeadline); createSecret first refuses a deployment whose retries can outlast the router's wait; every failure fails with the worker's error class, and the first failure of a rotation (token) publishes one alert. Generated by tools/asl.py from rotation_core/exceptions.py: edit that, then run make asl.",
        "StartAt": "Choose the strategy's workers",
        "States": states,
    }


def retirement_task(comment: str, action: str, next_state: str, result_path: str) -> dict[str, Any]:
    return {
        "Type": "Task",
        "Comment": comment,
        "Resource": "arn:${Partition}:states:::lambda:invoke",
        "Parameters": {
            "FunctionName.$": "$.Worker.Retire",
            "Payload": {
                "Action": action,
                "Step.$": "$.Step",
                "SecretArn.$": "$.SecretArn",
                "SecretName.$": "$.SecretName",
                "Token.$": "$.Token",
                "Strategy.$": "$.Strategy",
                "Engine.$": "$.Engine",
                "RetiringVersionId.$": "$.RetiringVersionId",
            },
        },
        "ResultPath": result_path,
        "ResultSelector": {"Outcome.$": "$.Payload.Outcome"},
        "Retry": [retry(retried_by_workers())],
        "Catch": catch_all("Describe the failure"),
        "Next": next_state,
    }


def retirement() -> dict[str, Any]:
    states: dict[str, Any] = {
        "Choose the retirement worker": {
            "Type": "Choice",
            "Choices": [
                choice("$.Engine", "iam", "IAM access key retirement"),
                choice("$.Engine", "redis", "Redis password retirement"),
            ],
            "Default": "Unsupported engine",
        },
        "IAM access key retirement": {
            "Type": "Pass",
            "Result": {"Retire": "${IamKeysRetireFunctionArn}"},
            "ResultPath": "$.Worker",
            "Next": "Wait before retiring",
        },
        "Redis password retirement": {
            "Type": "Pass",
            "Result": {"Retire": "${RedisAclRetireFunctionArn}"},
            "ResultPath": "$.Worker",
            "Next": "Wait before retiring",
        },
        "Wait before retiring": {
            "Type": "Wait",
            "Comment": "Clients holding the superseded credential keep working until then.",
            "Seconds": sub("RetireAfterSeconds"),
            "Next": "Deactivate the superseded credential",
        },
        "Deactivate the superseded credential": retirement_task(
            "Deactivate the old access key (or remove the old Redis password).",
            "deactivate",
            "Check it no longer works",
            "$.deactivate",
        ),
        "Check it no longer works": retirement_task(
            "Prove the superseded credential is refused now.",
            "verify",
            "Wait before deleting",
            "$.verify",
        ),
        "Wait before deleting": {
            "Type": "Wait",
            "Seconds": sub("DeleteAfterSeconds"),
            "Next": "Delete the superseded credential",
        },
        "Delete the superseded credential": retirement_task(
            "Delete the deactivated access key.", "delete", "Retired", "$.delete"
        ),
        "Retired": {"Type": "Succeed"},
        "Unsupported engine": {
            "Type": "Pass",
            "Result": {
                "Error": "UnsupportedEngineError",
                "Cause": '{"errorMessage": "no retirement worker for this engine"}',
            },
            "ResultPath": "$.failure",
            "Next": "Describe the failure",
        },
        **alert_description(
            "Describe the failure",
            "Write the failure alert",
            {
                **common_fields(),
                "step": "retirement",
                "retiring_version.$": "$.RetiringVersionId",
                "rolled_back": "nothing: the superseded credential may still be active",
                "next_steps": "Open the execution; deactivate or delete the superseded credential by hand once no client uses it.",
            },
            "Identifiers and the error class only, never a value.",
        ),
        **alert_states(
            "States.Format('Credential retirement failed: {}', $.DisplayName)",
            "Retirement failed",
        ),
        "Retirement failed": {
            "Type": "Fail",
            "ErrorPath": "$.failure.Error",
            "CausePath": "$.failure.Cause",
        },
    }
    return {
        "Comment": "Retires the credential a multi-credential rotation superseded, after the grace period. Started by the router after finishSecret and not awaited: a Wait state costs nothing. Generated by tools/asl.py: run make asl.",
        "StartAt": "Choose the retirement worker",
        "States": states,
    }


_MARK = "@@placeholder@@"


def _text(value: Placeholder) -> str:
    return "${" + value.name + "}"


def render(definition: dict[str, Any]) -> str:
    """JSON with placeholders unquoted where a number belongs."""

    def encode(value: Any) -> Any:
        if isinstance(value, Placeholder):
            return f"{_MARK}{value.name}{_MARK}"
        raise TypeError(type(value).__name__)

    text = json.dumps(definition, indent=2, ensure_ascii=False, default=encode)
    for part in text.split(f'"{_MARK}')[1:]:
        name = part.split(f'{_MARK}"', 1)[0]
        text = text.replace(f'"{_MARK}{name}{_MARK}"', "${" + name + "}")
    return text + "\n"


MACHINES = {"rotation.asl.json": rotation, "retirement.asl.json": retirement}


def generated() -> dict[str, str]:
    return {name: render(build()) for name, build in MACHINES.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="fail when the files differ")
    args = parser.parse_args(argv)
    stale = []
    for name, text in generated().items():
        path = OUTPUT / name
        current = path.read_text("utf-8") if path.exists() else ""
        if current == text:
            continue
        if args.check:
            stale.append(name)
        else:
            path.write_text(text, "utf-8")
            print(f"wrote {path.relative_to(ROOT)}")
    if stale:
        print(
            f"statemachine/{', '.join(stale)} differ from what tools/asl.py generates: run make asl",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
