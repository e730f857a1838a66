"""The local runtime: the template's stack on moto, with the real handlers run in-process.

It builds what ``template.yaml`` describes (functions, state machine, alert topic with an SQS
queue subscribed so alerts can be read, KMS key) in moto with its Step Functions executor on,
dispatches Lambda invocations to the real handlers in this process, and makes RotateSecret
behave like AWS rather than like moto (see :mod:`rotator.rotation`).

Two ways to use it: in-process (``with LocalRuntime() as rt: ...``; tests and the demo) and as
a loopback endpoint for any AWS client (:meth:`LocalRuntime.serve`).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import threading
import uuid
import warnings
import zipfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from unittest import mock

import boto3

from rotator.functions import FunctionHost
from rotator.rotation import RotationOutcome, aws_like_rotate_secret, choose_token
from rotator.template import DEFAULT_TEMPLATE, StackSpec, build_stack_spec, load_template

ACCOUNT = "123456789012"

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


@dataclass(frozen=True)
class Alert:
    subject: str
    message: dict[str, Any]
    raw: str


class LocalRuntime:
    """The stack of ``template.yaml`` on moto; a context manager."""

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
    ) -> None:
        self.template_path = template_path
        self.stack_name = stack_name
        self.region = region
        overrides = dict(FAST_PARAMETERS) if fast else {}
        overrides.update(parameter_overrides or {})
        self._overrides = overrides
        self._fast = fast
        #: STS refuses a new access key this long after CreateAccessKey, as IAM does for a few
        #: seconds in AWS; lets tests see the state machine retry through propagation.
        self.iam_propagation_seconds = iam_propagation_seconds
        #: the same, counted in STS calls per key (deterministic, for tests)
        self.iam_propagation_checks = iam_propagation_checks
        self._sts_checks: dict[str, int] = {}
        self._rotated_keys: set[str] = set()
        #: overrides every function's Timeout but the router's (fault tests time workers out)
        self._worker_timeout = worker_timeout
        self._stack = ExitStack()
        self.spec: StackSpec | None = None
        self.host: FunctionHost | None = None
        self.alert_queue_url = ""
        self.rotations: list[RotationOutcome] = []
        self._clients: dict[str, Any] = {}
        #: every alert ever drained by :meth:`alerts`
        self.seen_alerts: list[Alert] = []

    # --- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> LocalRuntime:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> LocalRuntime:
        from moto import mock_aws

        # moto logs every failed state at ERROR with its whole parse tree; the execution
        # history already says what failed.
        if not os.environ.get("ROTATOR_DEBUG"):
            logging.getLogger("moto.stepfunctions").setLevel(logging.CRITICAL)
        # The STS patch refuses keys with InvalidClientTokenId, a common AWS error that moto's
        # STS model does not list; moto warns about it on every refusal.
        warnings.filterwarnings(
            "ignore",
            message=r"Exception\(STSClientError\) with code (InvalidClientTokenId|SignatureDoesNotMatch)",
        )

        try:
            self._stack.enter_context(
                mock_aws(config={"stepfunctions": {"execute_state_machine": True}})
            )
            self._build()
            self._patch_moto()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        # Un-awaited executions (retirements) must not outlive the runtime: their threads
        # would call into the next runtime's backends.
        if self.spec is not None:
            with contextlib.suppress(Exception):
                self._stop_running_executions()
        if self.host is not None:
            self.host.close()
        self._stack.close()

    def _stop_running_executions(self) -> None:
        sfn = self.client("stepfunctions")
        for arn in self.state_machine_arns.values():
            running = sfn.list_executions(stateMachineArn=arn, statusFilter="RUNNING")
            for execution in running["executions"]:
                sfn.stop_execution(
                    executionArn=execution["executionArn"], error="LocalRuntimeStopped"
                )

    def _build(self) -> None:
        kms = self.client("kms")
        key = kms.create_key(Description=f"{self.stack_name} SealingKey")["KeyMetadata"]
        self.spec = build_stack_spec(
            load_template(self.template_path),
            stack_name=self.stack_name,
            region=self.region,
            account=ACCOUNT,
            parameter_overrides=self._overrides,
            kms_key=(key["KeyId"], key["Arn"]),
            root=self.template_path.parent,
        )
        if self._fast:
            router = self._router_spec()
            router.environment.update(FAST_ROUTER_ENV)
        if self._worker_timeout is not None:
            for fn in self.spec.functions.values():
                if fn.logical_id != "RouterFunction":
                    fn.timeout = self._worker_timeout
        self.host = FunctionHost(self.spec.functions, self.region)

        role_arn = self.client("iam").create_role(
            RoleName=f"{self.stack_name}-local-execution-role",
            AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
        )["Role"]["Arn"]
        lambda_client = self.client("lambda")
        for fn in self.spec.functions.values():
            lambda_client.create_function(
                FunctionName=fn.name,
                Runtime="python3.11",
                Role=role_arn,
                Handler=fn.handler,
                Code={"ZipFile": _placeholder_zip()},
                Description=fn.description[:256],
                Timeout=fn.timeout,
                MemorySize=fn.memory,
                Environment={"Variables": fn.environment},
            )
        logs = self.client("logs")
        for group in self.spec.log_groups.values():
            logs.create_log_group(logGroupName=group)
        sns, sqs = self.client("sns"), self.client("sqs")
        for logical_id, arn in self.spec.topics.items():
            topic = sns.create_topic(Name=arn.rsplit(":", 1)[-1])["TopicArn"]
            queue_url = sqs.create_queue(QueueName=f"{self.stack_name}-{logical_id}-inbox")[
                "QueueUrl"
            ]
            queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
                "Attributes"
            ]["QueueArn"]
            sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
            if logical_id == "AlertTopic":
                self.alert_queue_url = queue_url
        sfn = self.client("stepfunctions")
        for machine in self.spec.state_machines.values():
            sfn.create_state_machine(
                name=machine.name, definition=machine.definition, roleArn=role_arn, type="STANDARD"
            )
        events = self.client("events")
        for rule in self.spec.rules.values():
            events.put_rule(Name=rule.name, EventPattern=json.dumps(rule.event_pattern))
            events.put_targets(
                Rule=rule.name,
                Targets=[{"Id": f"t{i}", "Arn": arn} for i, arn in enumerate(rule.target_arns)],
            )

    def emit_service_event(self, detail_type: str, detail: dict[str, Any]) -> list[Any]:
        """Deliver an event as an AWS service would (here: Secrets Manager's CloudTrail events)
        to the matching EventBridge rules' Lambda targets; returns their invocations.

        moto's EventBridge cannot invoke Lambda targets itself, so the runtime matches the
        rules (with moto's own pattern matcher) and invokes the targets in-process.
        """
        from moto.events.models import events_backends

        assert self.host is not None
        event: Any = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": detail_type,
            "source": "aws.secretsmanager",
            "account": ACCOUNT,
            "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": self.region,
            "resources": [],
            "detail": detail,
        }
        invocations = []
        bus = events_backends[ACCOUNT][self.region].event_buses["default"]
        for rule in list(bus.rules.values()):
            if rule.state != "ENABLED" or not rule.event_pattern.matches_event(event):
                continue
            for target in rule.targets:
                spec = self.host.find(target["Arn"])
                if spec is not None:
                    invocations.append(self.host.invoke(spec, event))
        return invocations

    def _patch_moto(self) -> None:
        from moto.awslambda.models import LambdaBackend
        from moto.secretsmanager.models import SecretsManagerBackend

        runtime = self
        original_invoke = LambdaBackend.invoke

        def invoke(
            backend: Any,
            function_name: str,
            qualifier: str | None,
            body: Any,
            headers: Any,
            response_headers: Any,
        ) -> bytes | str | None:
            assert runtime.host is not None
            spec = runtime.host.find(function_name)
            if spec is None:
                return original_invoke(
                    backend, function_name, qualifier, body, headers, response_headers
                )
            event = json.loads(body) if body else {}
            if headers.get("x-amz-invocation-type") == "Event":
                threading.Thread(
                    target=runtime.host.invoke, args=(spec, event), daemon=True
                ).start()
                response_headers["status_code"] = 202
                return b""
            result = runtime.host.invoke(spec, event)
            if result.error is not None:
                response_headers["x-amz-function-error"] = "Unhandled"
                payload = json.dumps(result.error).encode()
            else:
                payload = json.dumps(result.payload).encode()
            response_headers["Content-Length"] = str(len(payload))
            return payload

        def rotate_secret(backend: Any, *args: Any, **kwargs: Any) -> str:
            return aws_like_rotate_secret(runtime, backend, *args, **kwargs)

        original_update_stage = SecretsManagerBackend.update_secret_version_stage

        def update_secret_version_stage(
            backend: Any,
            secret_id: str,
            version_stage: str,
            remove_from_version_id: str,
            move_to_version_id: str,
        ) -> tuple[str, str]:
            # moto moves the AWSCURRENT label but keeps serving the old version to a
            # GetSecretValue that names no stage; AWS serves whatever holds AWSCURRENT.
            result = original_update_stage(
                backend, secret_id, version_stage, remove_from_version_id, move_to_version_id
            )
            if version_stage == "AWSCURRENT" and move_to_version_id:
                backend.secrets[secret_id].set_default_version_id(move_to_version_id)
            return result

        self._stack.enter_context(mock.patch.object(LambdaBackend, "invoke", invoke))
        self._patch_sts()
        self._stack.enter_context(
            mock.patch.object(SecretsManagerBackend, "rotate_secret", rotate_secret)
        )
        self._stack.enter_context(
            mock.patch.object(
                SecretsManagerBackend, "update_secret_version_stage", update_secret_version_stage
            )
        )

    def _patch_sts(self) -> None:
        """moto's STS accepts any key; AWS refuses unknown, inactive and not-yet-propagated ones."""
        from moto.iam.models import iam_backends
        from moto.sts.exceptions import STSClientError
        from moto.sts.models import STSBackend

        runtime = self
        original = STSBackend.get_caller_identity

        def find_key(access_key_id: str) -> Any:
            for by_partition in iam_backends.values():
                for backend in by_partition.values():
                    for user in list(backend.users.values()):
                        for key in user.access_keys:
                            if key.access_key_id == access_key_id:
                                return key
            return None

        def get_caller_identity(backend: Any, access_key_id: str, region: str) -> Any:
            key = find_key(access_key_id)
            refused = STSClientError(
                "InvalidClientTokenId", "The security token included in the request is invalid."
            )
            if key is None and access_key_id.startswith("AKIA"):
                raise refused  # an IAM user key that no longer exists
            if key is not None:
                age = (datetime.now(UTC) - key.create_date.replace(tzinfo=UTC)).total_seconds()
                checks = runtime._sts_checks[access_key_id] = (
                    runtime._sts_checks.get(access_key_id, 0) + 1
                )
                propagating = access_key_id in runtime._rotated_keys and (
                    age < runtime.iam_propagation_seconds
                    or checks <= runtime.iam_propagation_checks
                )
                if key.status != "Active" or propagating:
                    raise refused
            return original(backend, access_key_id, region)

        self._stack.enter_context(
            mock.patch.object(STSBackend, "get_caller_identity", get_caller_identity)
        )

        # Propagation is simulated for the keys the rotation's functions create.
        from moto.iam.models import IAMBackend

        original_create = IAMBackend.create_access_key

        def create_access_key(backend: Any, *args: Any, **kwargs: Any) -> Any:
            key = original_create(backend, *args, **kwargs)
            if threading.current_thread().name.startswith("lambda:"):
                runtime._rotated_keys.add(key.access_key_id)
            return key

        self._stack.enter_context(
            mock.patch.object(IAMBackend, "create_access_key", create_access_key)
        )

        # moto never checks a request's signature: an access key id with any secret key would
        # pass. For IAM user keys the runtime checks it, as AWS does.
        from moto.sts.responses import TokenResponse

        original_response = TokenResponse.get_caller_identity

        def signed_get_caller_identity(response: Any) -> Any:
            key = find_key(response.get_access_key())
            if key is not None and not signature_matches(response, key.secret_access_key):
                raise STSClientError(
                    "SignatureDoesNotMatch",
                    "The request signature we calculated does not match the signature you provided.",
                )
            return original_response(response)

        self._stack.enter_context(
            mock.patch.object(TokenResponse, "get_caller_identity", signed_get_caller_identity)
        )

    # --- what users of the runtime need ------------------------------------------------------

    def client(self, service: str) -> Any:
        """A boto3 client for this runtime's region (cached: creating one costs ~50 ms)."""
        if service not in self._clients:
            self._clients[service] = boto3.client(service, region_name=self.region)  # type: ignore[call-overload]
        return self._clients[service]

    def _router_spec(self) -> Any:
        assert self.spec is not None
        return self.spec.functions["RouterFunction"]

    @property
    def router_function_arn(self) -> str:
        return str(self._router_spec().arn)

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
        """Invoke the router as Secrets Manager would, returning the Lambda invocation."""
        assert self.host is not None
        return self.host.invoke(self._router_spec(), event)

    def rotate(self, secret_id: str, **kwargs: Any) -> RotationOutcome:
        """RotateSecret with the router (as AWS would run it) and return how it ended."""
        before = len(self.rotations)
        self.client("secretsmanager").rotate_secret(
            SecretId=secret_id, RotationLambdaARN=self.router_function_arn, **kwargs
        )
        if len(self.rotations) == before:
            raise RuntimeError("RotateSecret did not run a rotation")
        return self.rotations[-1]

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

    def executions(self) -> list[dict[str, Any]]:
        sfn = self.client("stepfunctions")
        found: list[dict[str, Any]] = []
        for arn in self.state_machine_arns.values():
            paginator = sfn.get_paginator("list_executions")
            for page in paginator.paginate(stateMachineArn=arn):
                found.extend(page["executions"])
        return found

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

    def log_text(self) -> str:
        assert self.host is not None
        return "\n".join(self.host.sink.lines)

    def describe(self) -> dict[str, Any]:
        """The line ``serve`` prints when ready (without the endpoint)."""
        return {
            "router_function_arn": self.router_function_arn,
            "state_machine_arns": self.state_machine_arns,
            "alert_queue_url": self.alert_queue_url,
            "region": self.region,
            "account": ACCOUNT,
        }

    @contextmanager
    def serve(self, port: int = 0, host: str = "127.0.0.1") -> Iterator[str]:
        """Serve the AWS APIs on a loopback port; yields the endpoint URL."""
        from moto.server import ThreadedMotoServer

        server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
        server.start()
        try:
            bound_host, bound_port = server.get_host_and_port()
            yield f"http://{bound_host}:{bound_port}"
        finally:
            server.stop()


def _placeholder_zip() -> bytes:
    # moto stores the code; the runtime never runs it (handlers are loaded from the source tree).
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("README.txt", "handlers run in-process from the source tree\n")
    return buffer.getvalue()


def signature_matches(response: Any, secret_access_key: str) -> bool:
    """Recompute a request's SigV4 signature (as AWS does) with the key's secret."""
    import re

    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    headers = {k.lower(): v for k, v in response.headers.items()}
    match = re.match(
        r"AWS4-HMAC-SHA256 Credential=([^/]+)/[0-9]{8}/([^/]+)/([^/]+)/aws4_request,\s*"
        r"SignedHeaders=([^,]+),\s*Signature=([0-9a-f]+)",
        headers.get("authorization", ""),
    )
    if not match:
        return False
    key_id, region, service, signed, signature = match.groups()
    body = response.body if isinstance(response.body, bytes) else (response.body or "").encode()
    form = getattr(response, "form_data", None)
    if not body and form:
        # werkzeug parsed the form body away; query-protocol bodies re-encode identically
        from botocore.utils import percent_encode_sequence

        pairs: Any = list(form.items(multi=True))
        body = percent_encode_sequence(pairs).encode()
    request = AWSRequest(
        method=response.method,
        url=response.uri,
        data=body,
        headers={name: headers[name] for name in signed.split(";") if name in headers},
    )
    request.context["timestamp"] = headers.get("x-amz-date", "")
    auth = SigV4Auth(Credentials(key_id, secret_access_key), service, region)
    expected = auth.signature(
        auth.string_to_sign(request, auth.canonical_request(request)), request
    )
    return bool(expected == signature)
