"""The local runtime: the template's stack, deployed as ``sam deploy`` would, on moto.

``template.yaml`` is packaged into moto's S3, translated by aws-sam-translator and created by
CloudFormation on moto (:mod:`rotator.aws_local.stack`); a template that cannot deploy on AWS
fails here too. moto runs the real ASL (its Step Functions executor is on); Lambda invocations
reach the real handlers in this process, each with the environment, timeout and role
CloudFormation gave its function. Everything hand-made lives in :mod:`rotator.aws_local`: the
in-process Lambda host, what moto's CloudFormation cannot create, and one patch per AWS
behaviour moto lacks.

IAM is enforced as on AWS (:mod:`rotator.iam_checker`, on unless ``check_iam=False``): every AWS
call of a function or state machine is authorized against its role's policies as CloudFormation
created them (and the KMS key policy, with the encryption context), and Secrets Manager,
EventBridge and SNS invoke a function only as its resource policy allows. A refused call raises
AWS's error; :meth:`LocalRuntime.iam_report` shows what was allowed, refused and never used.

Two ways to use it: in-process (``with LocalRuntime() as rt: ...``; tests and the demo) and as
a loopback endpoint for any AWS client (:meth:`LocalRuntime.serve`). Stacks are kept for the
life of the process's moto: a second runtime with the same template and parameters reuses an
idle stack, after what the previous user created (secrets, IAM users, executions, alerts) was
cleaned away.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, cast

import boto3

from rotator.aws_local import stack as stack_module
from rotator.aws_local.cloud import ACCOUNT, LocalCloud
from rotator.aws_local.lambda_host import FunctionHost, FunctionSpec
from rotator.aws_local.patches.rotate_secret import (
    RotationOutcome,
    choose_token,
    retry_now,
    rotation_of,
    stop_rotations,
)
from rotator.aws_local.patches.sts_key_state import key_age_seconds
from rotator.aws_local.stack import DEFAULT_TEMPLATE, NAME_PREFIX, Deployed
from rotator.aws_local.uncreated import (
    create_skipped_resources,
    emit_service_event,
    subscribe_inbox,
)
from rotator.iam_checker import (
    CallRecord,
    IamChecker,
    MotoPolicies,
    Recorder,
    Report,
    Scope,
    ServiceInvokeDeniedError,
    install,
    unchecked_below,
)
from rotator.serve_guard import OperatorKey

__all__ = ["ACCOUNT", "FAST_PARAMETERS", "Alert", "LocalRuntime", "RotationOutcome"]

#: the fields of a secret that hold a value (what the leak scans look for)
SECRET_FIELDS = ("password", "secret_access_key")

#: Small intervals so local retries take seconds, not minutes (ASL requires whole seconds >= 1).
FAST_PARAMETERS = {
    "RetryIntervalSeconds": "1",
    "RetryMaxAttempts": "2",
    "RetryMaxDelaySeconds": "2",
    "RouterTimeoutSeconds": "120",
    "GraceBudgetSeconds": "12",
    "TestAttemptTimeoutSeconds": "2",
    "GraceFirstRetrySeconds": "1",
    "GraceMaxDelaySeconds": "2",
    "IamPropagationWaitSeconds": "1",
    "RetireAfterSeconds": "3",
    "DeleteAfterSeconds": "3",
}
FAST_ROUTER_ENV = {"POLL_INITIAL_SECONDS": "0.05", "POLL_MAX_SECONDS": "0.25"}
ROUTER = "RouterFunction"

# A state machine's Task invokes a function through the host, in the interpreter's thread; what
# the host itself does there (test hooks) is not the state machine's call.
unchecked_below(FunctionHost.invoke)


@dataclass(frozen=True)
class Alert:
    subject: str
    message: dict[str, Any]
    raw: str


@dataclass
class StateMachineSpec:
    logical_id: str
    name: str
    arn: str


@dataclass
class StackSpec:
    """What the deployed stack holds, by logical id (physical names and ARNs from moto)."""

    name: str
    functions: dict[str, FunctionSpec] = field(default_factory=dict)
    state_machines: dict[str, StateMachineSpec] = field(default_factory=dict)
    topics: dict[str, str] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)


@dataclass
class StackHandle:
    """A deployed stack and the in-process host of its functions."""

    deployed: Deployed
    spec: StackSpec
    host: FunctionHost
    alert_queue_url: str
    #: authorizes every AWS call of the stack's functions and state machines (issue 8 §6)
    iam: IamChecker | None = None
    #: the stack was updated to another template (it no longer matches its pool key)
    updated: bool = False

    def close(self) -> None:
        self.host.close()


def _wait_for_invocations(handle: StackHandle, timeout: float) -> None:
    """Wait (at most ``timeout`` seconds) until none of the stack's functions is running."""
    names = {f"lambda:{fn.name}" for fn in handle.spec.functions.values()}
    deadline = time.monotonic() + timeout
    for thread in list(threading.enumerate()):
        if thread.name in names and thread is not threading.current_thread():
            thread.join(max(0.0, deadline - time.monotonic()))


def _record_versions(host: FunctionHost, spec: StackSpec, clients: Any) -> None:
    """Each published version not seen before runs the source tree ``spec`` was deployed
    from; versions published earlier keep theirs."""
    lambda_client = clients("lambda")
    for fn in spec.functions.values():
        pages = lambda_client.get_paginator("list_versions_by_function")
        for page in pages.paginate(FunctionName=fn.name):
            for version in page["Versions"]:
                if version["Version"] != "$LATEST":
                    host.version_dirs.setdefault(f"{fn.arn}:{version['Version']}", fn.code_dir)


def _alias_resolver(region: str) -> Any:
    """(function name, alias) -> the version the alias points to now, from moto's Lambda."""

    def alias_version(function_name: str, alias: str) -> str | None:
        from moto.awslambda.models import lambda_backends

        try:
            found = lambda_backends[ACCOUNT][region].get_alias(alias, function_name)
        except Exception:
            return None
        return str(found.function_version)

    return alias_version


def _spec_of(deployed: Deployed, clients: Any, region: str) -> StackSpec:
    spec = StackSpec(name=deployed.stack_name, outputs=dict(deployed.outputs))
    lambda_client = clients("lambda")
    for logical_id, name in deployed.of_type("AWS::Lambda::Function").items():
        config = lambda_client.get_function_configuration(FunctionName=name)
        code = deployed.template["Resources"][logical_id]["Properties"]["Code"]
        source = deployed.packaged.source_of(code["S3Bucket"], code["S3Key"])
        if source is None:
            raise stack_module.DeployError(f"{logical_id}: its code was not packaged from here")
        spec.functions[logical_id] = FunctionSpec(
            logical_id=logical_id,
            name=config["FunctionName"],
            arn=config["FunctionArn"],
            code_dir=source,
            handler=config["Handler"],
            timeout=int(config["Timeout"]),
            memory=int(config["MemorySize"]),
            environment=dict(config.get("Environment", {}).get("Variables", {})),
            role_arn=config["Role"],
            description=config.get("Description", ""),
        )
    for logical_id, arn in deployed.of_type("AWS::StepFunctions::StateMachine").items():
        spec.state_machines[logical_id] = StateMachineSpec(
            logical_id=logical_id, name=arn.rsplit(":", 1)[-1], arn=arn
        )
    spec.topics = deployed.of_type("AWS::SNS::Topic")
    return spec


class LocalRuntime:
    """The stack of ``template.yaml`` on moto; a context manager."""

    #: what every runtime of this process starts from, under its own arguments:
    #: ``{"parameter_overrides": {...}, "function_environment": {...}}`` (a test session points
    #: every function at the CA its servers use this way)
    defaults: ClassVar[dict[str, dict[str, str]]] = {}

    def __init__(
        self,
        *,
        template_path: Path = DEFAULT_TEMPLATE,
        stack_name: str = "rotator",
        region: str = "us-east-1",
        parameter_overrides: dict[str, Any] | None = None,
        fast: bool = True,
        iam_propagation_seconds: float = 0.0,
        iam_propagation_checks: int = 0,
        worker_timeout: int | None = None,
        function_environment: dict[str, str] | None = None,
        check_iam: bool = True,
        automatic_retries: int = 0,
        retry_interval: float = 1.0,
    ) -> None:
        self.template_path = template_path
        self._requested_name = stack_name
        self.stack_name = stack_name
        self.region = region
        overrides = dict(FAST_PARAMETERS) if fast else {}
        overrides.update(LocalRuntime.defaults.get("parameter_overrides", {}))
        overrides.update({k: str(v) for k, v in (parameter_overrides or {}).items()})
        self._overrides = overrides
        self._fast = fast
        #: STS refuses a new access key this long after CreateAccessKey, as IAM does for a few
        #: seconds in AWS; lets tests see the state machine retry through propagation.
        self.iam_propagation_seconds = iam_propagation_seconds
        #: the same, counted in STS calls per key (deterministic, for tests)
        self.iam_propagation_checks = iam_propagation_checks
        self._sts_checks: dict[str, int] = {}
        #: overrides every function's Timeout but the router's (fault tests time workers out)
        self._worker_timeout = worker_timeout
        #: laid over every function's environment (e.g. CA_BUNDLE_DIR pointing at a test CA)
        self.function_environment = {
            **LocalRuntime.defaults.get("function_environment", {}),
            **(function_environment or {}),
        }
        #: every AWS call of the stack's functions and state machines is authorized against the
        #: policies as deployed (refused calls fail as on AWS); see :meth:`iam_report`
        self.check_iam = check_iam
        self.iam: IamChecker | None = None
        self._iam_recorder = Recorder()
        self._iam_hook = contextlib.ExitStack()
        self.cloud: LocalCloud | None = None
        self._handle: StackHandle | None = None
        self.spec: StackSpec | None = None
        self.host: FunctionHost | None = None
        self.deployed: Deployed | None = None
        self.alert_queue_url = ""
        #: while serving: the endpoint and the key pair its requests must be signed with
        self.endpoint_url: str | None = None
        self.operator_key: OperatorKey | None = None
        self.rotations: list[RotationOutcome] = []
        #: Secrets Manager retries a failed rotation itself, with the same token; how often and
        #: how far apart AWS does not document, so the local numbers are ours (none by default)
        self.automatic_retries = automatic_retries
        self.retry_interval = retry_interval
        #: RotateSecret returns at once, as on AWS (None: while serving an endpoint; else it
        #: returns when the rotation's first attempt has ended)
        self.rotate_in_background: bool | None = None
        self._clients: dict[str, Any] = {}
        #: every alert ever drained by :meth:`alerts`
        self.seen_alerts: list[Alert] = []
        self._baseline: dict[str, set[str]] = {}

    # --- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> LocalRuntime:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _pool_key(self) -> tuple[Any, ...]:
        return (
            str(self.template_path.resolve()),
            self._requested_name,
            self.region,
            self._fast,
            tuple(sorted(self._overrides.items())),
        )

    def start(self) -> LocalRuntime:
        self.cloud = LocalCloud.acquire()
        self.cloud.enter()
        try:
            idle = self.cloud.pool.get(self._pool_key(), [])
            # the pool holds only what this class put there (stop() returns its handle)
            self._handle = cast(StackHandle, idle.pop()) if idle else self._deploy()
            self._attach()
        except BaseException:
            self.stop()
            raise
        return self

    def _deploy(self) -> StackHandle:
        assert self.cloud is not None
        name, n = self._requested_name, 1
        while name in self.cloud.stack_names:
            n += 1
            name = f"{self._requested_name}{n}"
        self.cloud.stack_names.add(name)
        parameters = {NAME_PREFIX: name, **self._overrides}
        deployed = stack_module.deploy(
            self.client,
            stack_name=name,
            template_path=self.template_path,
            parameters=parameters,
            bucket=f"{name.lower()}-artifacts-{ACCOUNT}",
        )
        create_skipped_resources(deployed, self.client, self.region)
        spec = _spec_of(deployed, self.client, self.region)
        if self._fast:
            spec.functions[ROUTER].environment.update(FAST_ROUTER_ENV)
        host = FunctionHost(spec.functions, self.region)
        host.alias_version = _alias_resolver(self.region)
        _record_versions(host, spec, self.client)
        host.close()  # attached while a runtime uses the stack
        topic = spec.topics["AlertTopic"]
        queue_url = subscribe_inbox(self.client, topic, f"{name}-AlertTopic-inbox")
        keys = deployed.of_type("AWS::KMS::Key").values()
        scope = Scope(
            functions=frozenset(fn.name for fn in spec.functions.values()),
            state_machines=frozenset(m.arn for m in spec.state_machines.values()),
            keys=frozenset(f"arn:aws:kms:{self.region}:{ACCOUNT}:key/{key}" for key in keys),
        )
        # The policies as CloudFormation created them in moto (read at each call).
        iam = IamChecker(
            MotoPolicies(ACCOUNT, self.region), account=ACCOUNT, region=self.region, scope=scope
        )
        return StackHandle(
            deployed=deployed, spec=spec, host=host, alert_queue_url=queue_url, iam=iam
        )

    def _attach(self) -> None:
        assert self.cloud is not None and self._handle is not None
        handle = self._handle
        self.deployed, self.spec, self.host = handle.deployed, handle.spec, handle.host
        self.stack_name = handle.deployed.stack_name
        self.alert_queue_url = handle.alert_queue_url
        host = handle.host
        host.invocations.clear()
        host.before_invoke.clear()
        host.after_invoke.clear()
        host.sink.lines.clear()
        host.extra_environment = dict(self.function_environment)
        host.timeouts = {}
        if self._worker_timeout is not None:
            host.timeouts = {
                fn.name: self._worker_timeout
                for lid, fn in self.spec.functions.items()
                if lid != ROUTER
            }
        host.open()
        if self.check_iam and handle.iam is not None:
            self.iam = handle.iam
            self.iam.recorder = self._iam_recorder
            self._iam_hook.enter_context(install(self.iam))
        self._drain(handle.alert_queue_url)
        self._baseline = self._resource_names()
        self.cloud.runtimes.append(self)

    def stop(self) -> None:
        stop_rotations(self, timeout=10.0)  # no more automatic retries; a running attempt ends
        cloud, handle = self.cloud, self._handle
        self.cloud = self._handle = None
        if cloud is None:
            return
        try:
            if handle is not None:
                # Un-awaited executions (retirements) must not outlive their user; their
                # invocations still in flight finish first (while this runtime still answers
                # for the stack's functions), then what the user created goes.
                with contextlib.suppress(Exception):
                    self._stop_running_executions(handle)
                _wait_for_invocations(handle, timeout=5)
                self._iam_hook.close()
                clean = False
                with contextlib.suppress(Exception):
                    self._clean_up(handle)
                    clean = True
                with contextlib.suppress(ValueError):
                    cloud.runtimes.remove(self)
                handle.host.close()
                for key_id, owner in list(cloud.key_creators.items()):
                    if owner is self:
                        del cloud.key_creators[key_id]
                if clean and not handle.updated:
                    cloud.pool.setdefault(self._pool_key(), []).append(handle)
                else:
                    handle.close()
        finally:
            cloud.leave()
            cloud.release()

    def update_stack(self, template_path: Path) -> None:
        """Update this runtime's stack to ``template_path`` and its code, as ``sam deploy`` of
        a new release does: new function and state machine versions, aliases moved to them.
        Executions and invocations in flight go on with the versions they started on (each
        version runs the handler of the tree it was published from; see
        :meth:`FunctionHost.find` for the layer)."""
        assert self._handle is not None and self.host is not None
        handle = self._handle
        parameters = {NAME_PREFIX: self.stack_name, **self._overrides}
        deployed = stack_module.update(
            self.client, handle.deployed, template_path=template_path, parameters=parameters
        )
        spec = _spec_of(deployed, self.client, self.region)
        if self._fast:
            spec.functions[ROUTER].environment.update(FAST_ROUTER_ENV)
        handle.host.redeployed(spec.functions)
        _record_versions(handle.host, spec, self.client)
        handle.deployed, handle.spec, handle.updated = deployed, spec, True
        self.deployed, self.spec = deployed, spec

    def _stop_running_executions(self, handle: StackHandle) -> None:
        from moto.stepfunctions.responses import get_backend

        backend = get_backend(ACCOUNT, self.region)
        sfn = self.client("stepfunctions")
        for machine in handle.spec.state_machines.values():
            for execution in list(backend.describe_state_machine(machine.arn).executions):
                if execution.status != "RUNNING":
                    continue
                # moto's executor parses the definition before it can be stopped (StopExecution
                # raises meanwhile); give a just-started execution that moment.
                worker = getattr(execution, "exec_worker", None)
                deadline = time.monotonic() + 10
                while worker is not None and worker.env is None and time.monotonic() < deadline:
                    time.sleep(0.02)
                sfn.stop_execution(
                    executionArn=execution.execution_arn, error="LocalRuntimeStopped"
                )

    def _resource_names(self) -> dict[str, set[str]]:
        """What exists now that a user of the stack may create (cleaned up on stop)."""
        sm, iam = self.client("secretsmanager"), self.client("iam")
        secrets = {
            s["ARN"]
            for page in sm.get_paginator("list_secrets").paginate(IncludePlannedDeletion=True)
            for s in page["SecretList"]
        }
        users = {
            u["UserName"]
            for page in iam.get_paginator("list_users").paginate()
            for u in page["Users"]
        }
        executions = {e["executionArn"] for e in self._all_executions()}
        return {"secrets": secrets, "users": users, "executions": executions}

    def _clean_up(self, handle: StackHandle) -> None:
        """Delete what this runtime's user created, so the next one starts from the stack."""
        now = self._resource_names()
        sm, iam = self.client("secretsmanager"), self.client("iam")
        for arn in now["secrets"] - self._baseline.get("secrets", set()):
            sm.delete_secret(SecretId=arn, ForceDeleteWithoutRecovery=True)
        for user in now["users"] - self._baseline.get("users", set()):
            for key in iam.list_access_keys(UserName=user)["AccessKeyMetadata"]:
                iam.delete_access_key(UserName=user, AccessKeyId=key["AccessKeyId"])
            iam.delete_user(UserName=user)
        # Executions cannot be deleted through the API: forget the stopped ones, so the next
        # user of the stack lists only its own (also through plain ListExecutions).
        from moto.stepfunctions.responses import get_backend

        backend = get_backend(ACCOUNT, self.region)
        for machine in handle.spec.state_machines.values():
            backend.describe_state_machine(machine.arn).executions.clear()
        self._drain(handle.alert_queue_url)

    def _drain(self, queue_url: str) -> None:
        """Discard what is on the queue (PurgeQueue allows one call a minute)."""
        sqs = self.client("sqs")
        while messages := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get(
            "Messages", []
        ):
            for message in messages:
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])

    def key_still_propagating(self, key: Any) -> bool:
        """Whether STS should still refuse ``key`` (created by this stack's functions)."""
        checks = self._sts_checks[key.access_key_id] = (
            self._sts_checks.get(key.access_key_id, 0) + 1
        )
        return (
            key_age_seconds(key) < self.iam_propagation_seconds
            or checks <= self.iam_propagation_checks
        )

    def emit_service_event(self, detail_type: str, detail: dict[str, Any]) -> list[Any]:
        """Deliver a Secrets Manager service event to the matching rules' Lambda targets."""
        assert self.host is not None
        return emit_service_event(self.host, self.region, detail_type, detail, iam=self.iam)

    def secrets_manager_may_invoke(self, function_arn: str, secret_arn: str) -> None:
        """Refuse, as Secrets Manager does, to rotate with a function whose resource policy does
        not let ``secretsmanager.amazonaws.com`` invoke it (with the secret as ``aws:SourceArn``
        and this account as ``aws:SourceAccount``). No-op when IAM checks are off.

        https://docs.aws.amazon.com/secretsmanager/latest/userguide/troubleshoot_rotation.html
        """
        if self.iam is None:
            return
        from moto.core.exceptions import JsonRESTError

        try:
            self.iam.authorize_service_invoke(
                "secretsmanager.amazonaws.com",
                function_arn,
                source_arn=secret_arn,
                source_account=ACCOUNT,
            )
        except ServiceInvokeDeniedError:
            raise JsonRESTError(
                "AccessDeniedException",
                "Secrets Manager cannot invoke the specified Lambda function. Ensure that the "
                "function policy grants access to the principal secretsmanager.amazonaws.com.",
            ) from None

    def iam_calls(self) -> list[CallRecord]:
        """Every call the IAM checker authorized (or refused) while this runtime used the stack."""
        return self._iam_recorder.records

    def iam_report(self) -> Report:
        """What the IAM checker saw while this runtime used the stack: calls allowed and denied
        per function and state machine (and services invoking functions), and the stack's
        statements no call used (besides the allow-list of calls AWS makes itself)."""
        if self.iam is None:
            raise RuntimeError("IAM checks are off for this runtime (check_iam=False)")
        return self.iam.report(self.iam.scope, recorder=self._iam_recorder)

    # --- what users of the runtime need ------------------------------------------------------

    def client(self, service: str) -> Any:
        """A boto3 client for this runtime's region (cached: creating one costs ~50 ms)."""
        if service not in self._clients:
            self._clients[service] = boto3.client(service, region_name=self.region)  # type: ignore[call-overload]
        return self._clients[service]

    def _router_spec(self) -> Any:
        assert self.spec is not None
        return self.spec.functions[ROUTER]

    @property
    def router_function_arn(self) -> str:
        """What a user sets as the secret's rotation function: the stack's output
        ``RouterFunctionArn``, the router's alias ``live`` (Secrets Manager runs its version)."""
        assert self.spec is not None
        return self.spec.outputs.get("RouterFunctionArn") or str(self._router_spec().arn)

    @property
    def state_machine_arns(self) -> dict[str, str]:
        assert self.spec is not None
        return {m.logical_id: m.arn for m in self.spec.state_machines.values()}

    @property
    def state_machine_arn(self) -> str:
        return self.state_machine_arns["RotationStateMachine"]

    @property
    def retirement_state_machine_arn(self) -> str:
        return self.state_machine_arns["RetirementStateMachine"]

    def invoke_router(self, event: dict[str, Any]) -> Any:
        """Invoke the router as Secrets Manager would (through :attr:`router_function_arn`,
        the alias: the version it points to now), returning the Lambda invocation."""
        assert self.host is not None
        return self.host.invoke(
            self.host.find(self.router_function_arn) or self._router_spec(), event
        )

    def rotate(self, secret_id: str, timeout: float = 600, **kwargs: Any) -> RotationOutcome:
        """RotateSecret with the router, then wait until that rotation has ended (its automatic
        retries included): how its last attempt ended. RotateSecret refuses, as on AWS, while
        an earlier rotation is unfinished (see :meth:`retry_rotation`)."""
        started = self.client("secretsmanager").rotate_secret(
            SecretId=secret_id, RotationLambdaARN=self.router_function_arn, **kwargs
        )
        rotation = rotation_of(self, started["ARN"], started.get("VersionId", ""))
        if rotation is None:
            raise RuntimeError("RotateSecret did not run a rotation")
        return rotation.wait(timeout)

    def retry_rotation(self, secret_id: str, timeout: float = 600) -> RotationOutcome:
        """What Secrets Manager's automatic retry of an unfinished rotation does (the same
        token, all four steps), now rather than after ``retry_interval``; waits for its end."""
        arn = self.client("secretsmanager").describe_secret(SecretId=secret_id)["ARN"]
        return retry_now(self, arn).wait(timeout)

    def stage_rotation(self, secret_id: str, token: str | None = None) -> str:
        """Enable rotation with the router and stage a new version as AWS does before calling it.

        Returns the token; the four steps can then be driven one by one with
        :meth:`invoke_router` (what Secrets Manager would do next).
        """
        from moto.secretsmanager.models import secretsmanager_backends

        backend = secretsmanager_backends[ACCOUNT][self.region]
        secret: Any = backend.describe_secret(secret_id)
        secret.rotation_lambda_arn = self.router_function_arn
        secret.rotation_enabled = True
        secret.rotation_requested = True
        staged, _reattempt = choose_token(secret, token, reattempt_stale=False)
        return staged

    def alerts(self, wait_seconds: int = 0) -> list[Alert]:
        """Drain the alert queue (SNS messages delivered to SQS)."""
        sqs = self.client("sqs")
        alerts: list[Alert] = []
        while True:
            response = sqs.receive_message(
                QueueUrl=self.alert_queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait_seconds
            )
            messages = response.get("Messages", [])
            if not messages:
                return alerts
            for message in messages:
                envelope = json.loads(message["Body"])
                raw = envelope.get("Message", "")
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = {"text": raw}
                alert = Alert(subject=envelope.get("Subject", ""), message=body, raw=raw)
                alerts.append(alert)
                self.seen_alerts.append(alert)
                sqs.delete_message(
                    QueueUrl=self.alert_queue_url, ReceiptHandle=message["ReceiptHandle"]
                )
            wait_seconds = 0

    def _all_executions(self) -> list[dict[str, Any]]:
        sfn = self.client("stepfunctions")
        found: list[dict[str, Any]] = []
        for arn in self.state_machine_arns.values():
            paginator = sfn.get_paginator("list_executions")
            for page in paginator.paginate(stateMachineArn=arn):
                found.extend(page["executions"])
        return found

    def executions(self) -> list[dict[str, Any]]:
        """The executions started since this runtime took the stack."""
        earlier = self._baseline.get("executions", set())
        return [e for e in self._all_executions() if e["executionArn"] not in earlier]

    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        sfn = self.client("stepfunctions")
        events: list[dict[str, Any]] = []
        for page in sfn.get_paginator("get_execution_history").paginate(executionArn=execution_arn):
            events.extend(page["events"])
        return events

    def all_histories_text(self) -> str:
        """Every execution's input, output and history, as text (for leak scans)."""
        sfn = self.client("stepfunctions")
        parts = []
        for execution in self.executions():
            arn = execution["executionArn"]
            parts.append(json.dumps(sfn.describe_execution(executionArn=arn), default=str))
            parts.append(json.dumps(self.history(arn), default=str))
        return "\n".join(parts)

    def secret_values(self) -> dict[str, str]:
        """Every password and secret key of every version of every secret, by
        ``name@version.field`` (what the leak scans look for everywhere else)."""
        sm = self.client("secretsmanager")
        found: dict[str, str] = {}
        for page in sm.get_paginator("list_secrets").paginate(IncludePlannedDeletion=True):
            for secret in page["SecretList"]:
                for version in secret.get("SecretVersionsToStages", {}):
                    try:
                        raw = sm.get_secret_value(SecretId=secret["ARN"], VersionId=version)
                        data = json.loads(raw["SecretString"])
                    except Exception:  # noqa: S112 - a staged placeholder version has no value
                        continue
                    for key in SECRET_FIELDS:
                        if isinstance(data, dict) and isinstance(data.get(key), str):
                            found[f"{secret['Name']}@{version}.{key}"] = data[key]
        return found

    def log_text(self) -> str:
        assert self.host is not None
        return "\n".join(self.host.sink.lines)

    def describe(self) -> dict[str, Any]:
        """What ``serve`` prints when ready: the endpoint and the key pair while serving, and
        the alert queue's URL as clients of that endpoint see it (ListQueues' form)."""
        described: dict[str, Any] = {
            "router_function_arn": self.router_function_arn,
            "state_machine_arns": self.state_machine_arns,
            "alert_queue_url": self.alert_queue_url,
            "region": self.region,
            "account": ACCOUNT,
        }
        if self.endpoint_url is not None and self.operator_key is not None:
            queue = self.alert_queue_url.rstrip("/").rsplit("/", 1)[-1]
            described.update(
                endpoint_url=self.endpoint_url,
                alert_queue_url=f"{self.endpoint_url}/{ACCOUNT}/{queue}",
                aws_access_key_id=self.operator_key.access_key_id,
                aws_secret_access_key=self.operator_key.secret_access_key,
            )
        return described

    @contextmanager
    def serve(
        self, port: int = 0, host: str = "127.0.0.1", operator: OperatorKey | None = None
    ) -> Iterator[str]:
        """Serve the AWS APIs on a loopback port, to signed requests only; yields the endpoint.

        Requests must be signed with ``self.operator_key`` (minted here unless given) or an IAM
        user key the stack holds (see :mod:`rotator.serve_guard`).
        """
        from rotator.serve_guard import serve_guarded

        self.operator_key = operator or OperatorKey.mint()
        with contextmanager(serve_guarded)(host, port, self.operator_key) as endpoint:
            self.endpoint_url = endpoint
            try:
                yield endpoint
            finally:
                self.endpoint_url = None
