"""The checker and its hook into the local runtime: every AWS call a function makes is authorized.

How the local runtime wires it in (:mod:`rotator.local`): once per deployed stack, with the
policies as CloudFormation created them in moto and the stack's part of moto as its scope::

    iam = IamChecker(MotoPolicies(ACCOUNT, region), account=ACCOUNT, region=region, scope=scope)

then while a runtime uses the stack (``_attach`` ... ``stop``), with a recorder of its own::

    iam.recorder = recorder; hook.enter_context(install(iam))  # ... hook.close()

(:class:`~rotator.iam_checker.sources.TemplatePolicies` reads the same policies from
``template.yaml`` instead, for tests without a deployed stack.)

Where the runtime hands an event to a function on a service's behalf, before ``host.invoke``
(Secrets Manager checks this when a secret's rotation is configured, and passes the secret as
``aws:SourceArn``: https://docs.aws.amazon.com/secretsmanager/latest/userguide/troubleshoot_rotation.html)::

    iam.authorize_service_invoke(
        "secretsmanager.amazonaws.com", router_arn, source_arn=secret_arn, source_account=ACCOUNT
    )  # raises ServiceInvokeDeniedError; likewise events.amazonaws.com (rule) and sns (topic)

``install`` wraps botocore's ``BaseClient._make_api_call`` for as long as it is installed, so it
sees every client (the handlers cache theirs process-wide, across runtimes). A call is attributed
to its caller by where it runs:

- in a thread named ``lambda:<function name>`` (the runtime's in-process dispatch): that
  function, under the role the policy store gives it;
- inside moto's Step Functions interpreter (a Task state calling Lambda or SNS): that state
  machine, under its role;
- anywhere else (tests, the runtime itself and its test hooks, users of ``rotator local
  serve``): not checked.

A refused call raises what botocore raises for AWS's answer: the service's error code
(``AccessDeniedException``; ``AccessDenied`` for IAM and STS; ``AuthorizationError`` for SNS)
with AWS's message ``User: <session ARN> is not authorized to perform: <action> on resource:
<arn> because no identity-based policy allows the <action> action``.
https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_access-denied.html
"""

from __future__ import annotations

import sys
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from types import CodeType, FrameType
from typing import Any

from rotator.iam_checker.policy import (
    Decision,
    Denial,
    PolicyError,
    Principal,
    Request,
    evaluate,
)
from rotator.iam_checker.record import Caller, CallRecord, Recorder, Report
from rotator.iam_checker.requests import (
    Authorization,
    AwsState,
    UnmappedCallError,
    authorizations,
    lambda_function_arn,
    principal_context,
)
from rotator.iam_checker.sources import PolicyStore, Scope

#: error code and HTTP status AWS returns for a refused call, per botocore service name
ERROR_CODES: dict[str, tuple[str, int]] = {
    "iam": ("AccessDenied", 403),
    "sts": ("AccessDenied", 403),
    "sns": ("AuthorizationError", 403),
    "lambda": ("AccessDeniedException", 403),
}
DEFAULT_ERROR = ("AccessDeniedException", 400)


class ServiceInvokeDeniedError(Exception):
    """A service principal may not invoke the function (its resource policy does not allow it)."""

    def __init__(self, record: CallRecord) -> None:
        super().__init__(record.message)
        self.record = record


class IamChecker:
    """Authorizes recorded calls against a stack's policies and keeps the record."""

    def __init__(
        self,
        store: PolicyStore,
        *,
        account: str,
        region: str,
        partition: str = "aws",
        recorder: Recorder | None = None,
        scope: Scope | None = None,
    ) -> None:
        self.store = store
        self.account = account
        self.region = region
        self.partition = partition
        self.aws = AwsState(account, region, partition)
        self.recorder = recorder or Recorder()
        #: the functions and state machines this checker answers for (None: every caller). With
        #: several checkers installed (several local stacks in use at once), each call goes to
        #: the checker whose scope covers its caller.
        self.scope = scope

    # who is calling --------------------------------------------------------------------------

    def current_caller(self) -> Caller | None:
        """The function or state machine this thread runs for, or None (unchecked caller)."""
        identity = _identify_caller()
        return None if identity is None else self.caller(identity)

    def caller(self, identity: CallerIdentity) -> Caller:
        """The caller, with the role this checker's policy store gives it."""
        if identity.kind == "function":
            role = self.store.role_of_function(identity.name)
        else:
            role = self.store.role_of_state_machine(identity.machine_arn, identity.role_arn)
        return Caller(identity.name, identity.kind, role or "")

    def covers(self, identity: CallerIdentity) -> bool:
        """Whether this checker answers for the caller (its stack's function or state machine)."""
        if self.scope is None:
            return True
        if identity.kind == "function":
            return identity.name in self.scope.functions
        return identity.machine_arn in self.scope.state_machines

    def _principal(self, caller: Caller) -> Principal:
        return Principal(
            arn=caller.role_arn,
            account=self.account,
            session=caller.name if caller.kind == "function" else "states-execution",
        )

    # checks ----------------------------------------------------------------------------------

    def check_call(
        self, caller: Caller, service: str, operation: str, params: Mapping[str, Any]
    ) -> CallRecord | None:
        """Authorize one API call by ``caller``; records it and returns the refusal, if any."""
        api = f"{service}:{operation}"
        if not caller.role_arn:
            return self._refuse(
                caller,
                api,
                f"because the IAM checker knows no role for {caller.kind} {caller.name}",
            )
        try:
            needed = authorizations(self.aws, service, operation, params)
        except UnmappedCallError as exc:
            return self._refuse(caller, api, f"because {exc} (fail closed)")
        principal = self._principal(caller)
        function_arn = (
            self.aws.arn("lambda", f"function:{caller.name}") if caller.kind == "function" else None
        )
        base, known = principal_context(
            principal,
            self.region,
            role_tags=self.store.role_tags(caller.role_arn),
            function_arn=function_arn,
        )
        refusal = None
        for authorization in needed:
            request = Request(
                principal=principal,
                action=authorization.action,
                resource=authorization.resource,
                context={**base, **authorization.context},
                known=known + authorization.known,
            )
            decision = self._decide(request, authorization)
            record = CallRecord(caller, api, request, decision, authorization.note)
            self.recorder.add(record)
            if not decision.allowed and refusal is None:
                refusal = record
        return refusal

    def authorize_service_invoke(
        self,
        service_principal: str,
        function: str,
        *,
        source_arn: str | None = None,
        source_account: str | None = None,
    ) -> Decision:
        """Check that ``service_principal`` may invoke ``function`` (name or ARN) as AWS would.

        Raises :class:`ServiceInvokeDeniedError` when the function's resource policy does not
        allow it; a service principal has no identity policy.
        https://docs.aws.amazon.com/lambda/latest/dg/access-control-resource-based.html
        """
        caller = Caller(service_principal, "service")
        principal = Principal(arn=service_principal, account=self.account, is_service=True)
        # the policy of the ARN invoked: an alias's or version's own, else the function's
        # https://docs.aws.amazon.com/lambda/latest/dg/using-aliases.html
        arn = lambda_function_arn(self.aws, function)
        context, known = principal_context(
            principal, self.region, source_arn=source_arn, source_account=source_account
        )
        request = Request(principal, "lambda:InvokeFunction", arn, context, known)
        decision = self._decide(
            request, Authorization(request.action, arn, resource_policy=("lambda", arn))
        )
        record = CallRecord(caller, "lambda:Invoke", request, decision)
        self.recorder.add(record)
        if not decision.allowed:
            raise ServiceInvokeDeniedError(record)
        return decision

    def _decide(self, request: Request, authorization: Authorization) -> Decision:
        try:
            identity = (
                []
                if request.principal.is_service
                else self.store.identity_policies(request.principal.arn)
            )
            resource_policy = None
            key_policy = False
            if authorization.resource_policy is not None:
                kind, arn = authorization.resource_policy
                if kind == "kms":
                    resource_policy, key_policy = self.store.key_policy(arn), True
                else:
                    resource_policy = self.store.function_policy(arn)
        except PolicyError as exc:
            return Decision(False, f"because a policy cannot be read: {exc}", Denial.UNKNOWN)
        return evaluate(request, identity, resource_policy, key_policy=key_policy)

    def _refuse(self, caller: Caller, api: str, reason: str) -> CallRecord:
        record = CallRecord(caller, api, None, Decision(False, reason, Denial.UNKNOWN))
        self.recorder.add(record)
        return record

    def report(self, scope: Scope | None = None, *, recorder: Recorder | None = None) -> Report:
        """Calls allowed and denied per caller, and the statements no call used.

        With ``scope`` (one stack of a moto shared by several), only that stack's policies and
        the calls of its functions and state machines (and services invoking its functions).
        ``recorder``: the calls to count (default: this checker's current recorder).
        """
        recorder = recorder or self.recorder

        def include(record: CallRecord) -> bool:
            if scope is None:
                return True
            if record.caller.kind == "service":
                return record.request is not None and scope.covers_function_arn(
                    record.request.resource
                )
            return scope.covers_caller(record.caller.name, record.caller.kind)

        try:
            universe = self.store.all_policies(scope)
        except PolicyError as exc:
            report = recorder.report([], include=include)
            report.problems.append(f"policies cannot be read: {exc}")
            return report
        return recorder.report(universe, include=include)


@dataclass(frozen=True)
class CallerIdentity:
    """Who makes a call, as told by where it runs (before any policy store is asked)."""

    name: str
    kind: str  # "function" or "state machine"
    machine_arn: str = ""
    #: the role the state machine's execution runs as (moto's own record of it)
    role_arn: str = ""


def _identify_caller() -> CallerIdentity | None:
    """The function or state machine the current thread runs for, or None (unchecked)."""
    name = threading.current_thread().name
    if name.startswith("lambda:"):
        return CallerIdentity(name.split(":", 1)[1], "function")
    environment = _state_machine_environment(sys._getframe(1))
    if environment is not None:
        data = environment.states.context_object.context_object_data
        machine_arn = str(data["StateMachine"]["Id"])
        return CallerIdentity(
            machine_arn.rsplit(":", 1)[-1],
            "state machine",
            machine_arn,
            str(environment.aws_execution_details.role_arn),
        )
    return None


#: code objects below which a call is the local runtime's own, never a state machine's
_UNCHECKED_BELOW: set[CodeType] = set()


def unchecked_below(function: Callable[..., Any]) -> None:
    """Calls made (in the same thread) while ``function`` runs are not a state machine's.

    The local runtime's Lambda host runs a state machine's Task invocation inside the
    interpreter's thread and calls its test hooks (``after_invoke``) there: those calls are the
    runtime's, not the state machine's. The function's own code runs in a ``lambda:`` thread and
    is checked as the function.
    """
    _UNCHECKED_BELOW.add(function.__code__)


def _state_machine_environment(frame: FrameType | None) -> Any | None:
    """moto's Step Functions ``Environment`` of the execution this stack runs in, if any.

    moto's interpreter runs each execution in its own threads and passes the execution's
    ``Environment`` (state machine ARN, role ARN) down as the ``env`` argument of every state's
    evaluation; a Task state's boto3 call runs below such a frame.
    """
    from moto.stepfunctions.parser.asl.eval.environment import Environment

    while frame is not None:
        if frame.f_code in _UNCHECKED_BELOW:
            return None
        candidate = frame.f_locals.get("env")
        if isinstance(candidate, Environment):
            return candidate
        frame = frame.f_back
    return None


# --- the botocore hook -----------------------------------------------------------------------

_active: list[IamChecker] = []
_lock = threading.Lock()
_original: Any = None


def _aws_error(client: Any, service: str, operation: str, record: CallRecord) -> Exception:
    """The exception botocore raises for AWS's access-denied answer to this call."""
    code, status = ERROR_CODES.get(service, DEFAULT_ERROR)
    message = record.message
    if service == "sns" and record.request is not None:  # SNS spells its actions "SNS:Publish"
        action = record.request.action
        message = message.replace(action, "SNS:" + action.split(":", 1)[1])
    parsed = {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {
            "HTTPStatusCode": status,
            "RequestId": str(uuid.uuid4()),
            "HTTPHeaders": {},
            "RetryAttempts": 0,
        },
    }
    error_class = client.exceptions.from_code(code)
    exception: Exception = error_class(parsed, operation)
    return exception


def _checker_for(identity: CallerIdentity) -> IamChecker | None:
    """The innermost installed checker that answers for the caller, or None.

    A checker without a scope answers for every caller (and refuses one it knows no role for:
    fail closed). Scoped checkers answer for their own stack's functions and state machines
    only: a caller none of them covers belongs to a stack whose runtime does not check IAM.
    """
    for checker in reversed(list(_active)):
        if checker.covers(identity):
            return checker
    return None


def _checked_make_api_call(client: Any, operation_name: str, api_params: Any) -> Any:
    if _active:
        identity = _identify_caller()
        checker = _checker_for(identity) if identity is not None else None
        if identity is not None and checker is not None:
            caller = checker.caller(identity)
            service = client.meta.service_model.service_name
            refusal = checker.check_call(caller, service, operation_name, api_params or {})
            if refusal is not None:
                raise _aws_error(client, service, operation_name, refusal)
    return _original(client, operation_name, api_params)


@contextmanager
def install(checker: IamChecker) -> Iterator[IamChecker]:
    """Check every AWS call made by the stack's functions and state machines while active.

    Several checkers may be installed at once (one per local stack in use): a call goes to the
    innermost one whose ``scope`` covers its caller (none: not checked). Leaving the context
    restores botocore when the last checker is removed.
    """
    global _original
    from botocore.client import BaseClient

    with _lock:
        if not _active:
            _original = getattr(BaseClient, "_make_api_call")  # noqa: B009 - not in the stubs
            setattr(BaseClient, "_make_api_call", _checked_make_api_call)  # noqa: B010
        _active.append(checker)
    try:
        yield checker
    finally:
        with _lock:
            _active.remove(checker)
            if not _active:
                setattr(BaseClient, "_make_api_call", _original)  # noqa: B010
                _original = None
