"""IAM is enforced locally (issue 8 §6): each function runs with its own role from the template,
and what the role does not allow is refused as AWS refuses it.

Every AWS call a function or state machine of the local stack makes is authorized by the IAM
checker (:mod:`rotator.iam_checker`) against the policies CloudFormation created on moto; Secrets
Manager, EventBridge and SNS invoke functions only as the functions' resource policies allow.

- The rotations of every strategy, with their failures, rollbacks, retirements and alerts, make
  no call the template does not allow; and the converse: every statement of the template is
  used by some call, except the ones AWS services use themselves (the checker's allow-list).
- A missing ``SecretRotationMaster`` or ``SecretRotation`` tag, a worker calling outside its
  role, a function Secrets Manager may not invoke: each fails locally as it fails on AWS.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

from rotator.checks import eventually
from rotator.dbservers import DatabaseServer
from rotator.iam_checker import ALLOW_LIST, Report
from rotator.local import LocalRuntime
from tests.conftest import assert_nothing_leaked
from tests.functional.conftest import iam_secret
from tests.integration.conftest import (
    GROUP_TAGS,
    create_app_user,
    create_master,
    database_secret,
    new_password,
    secret_value,
    unique_name,
)

pytestmark = pytest.mark.integration


# --- helpers ------------------------------------------------------------------------------------


def _invocations(rt: Any, logical_id: str) -> list[Any]:
    name = rt.spec.functions[logical_id].name
    return [inv for inv in rt.host.invocations if inv.function == name]


@contextlib.contextmanager
def _before(rt: Any, logical_id: str, action: Callable[[Any], None]) -> Iterator[None]:
    """Run ``action(event)`` before each invocation of one function (in its Lambda thread)."""

    def hook(spec: Any, event: Any) -> None:
        if spec.logical_id == logical_id:
            action(event)

    rt.host.before_invoke.append(hook)
    try:
        yield
    finally:
        rt.host.before_invoke.remove(hook)


def _set_postgres_password(server: DatabaseServer, username: str, password: str) -> None:
    from psycopg2 import sql

    statement = sql.SQL("ALTER ROLE {} PASSWORD %s").format(sql.Identifier(username))
    with contextlib.closing(server.admin_connection()) as conn, conn.cursor() as cur:
        cur.execute(statement, (password,))


def _retirements_done(rt: Any) -> bool:
    sfn = rt.client("stepfunctions")
    executions = sfn.list_executions(stateMachineArn=rt.retirement_state_machine_arn)["executions"]
    return bool(executions) and all(e["status"] != "RUNNING" for e in executions)


def _redis_secret(rt: Any, server: DatabaseServer) -> tuple[str, str, str]:
    username, password = unique_name("cache"), new_password()
    server.create_login(username, password)
    secret = database_secret(server, username, password, masterarn=create_master(rt, server))
    arn = rt.client("secretsmanager").create_secret(
        Name=f"it/redis/{unique_name()}", SecretString=json.dumps(secret), Tags=GROUP_TAGS
    )["ARN"]
    return str(arn), username, password


def _retirement_refused(_event: Any) -> None:
    from rotation_core.exceptions import RotationStateError

    raise RotationStateError("injected: the superseded key is not this rotation's to retire")


def _probe_fails(_event: Any) -> None:
    from rotation_core.exceptions import ProbeFailedError

    raise ProbeFailedError("injected: the new password does not pass the probe")


def _alternating_secret(rt: Any, server: DatabaseServer) -> str:
    username, password = unique_name("alt"), new_password()
    server.create_login(username, password)
    secret = database_secret(server, username, password, masterarn=create_master(rt, server))
    arn = rt.client("secretsmanager").create_secret(
        Name=f"it/alt/{unique_name()}", SecretString=json.dumps(secret), Tags=GROUP_TAGS
    )["ARN"]
    return str(arn)


def _probe(rt: Any, arn: str) -> dict[str, Any]:
    """What rotator doctor/plan ask the stack's ProbeFunction (under its own role)."""
    answer = rt.client("lambda").invoke(
        FunctionName=rt.spec.functions["ProbeFunction"].name,
        Payload=json.dumps({"SecretId": arn, "Plan": True}).encode(),
    )
    payload: dict[str, Any] = json.loads(answer["Payload"].read())
    assert not answer.get("FunctionError"), payload
    return payload


def _denied_text(report: Report) -> str:
    return "\n".join(record.message for record in report.denied)


# --- every strategy, failure, rollback and retirement: nothing refused, every statement used ---


def test_every_strategy_with_failures_rollbacks_and_retirements_uses_exactly_the_template_s_grants(
    test_ca_stack_settings: dict[str, Any],
    postgres_server: DatabaseServer,
    redis_server: DatabaseServer,
) -> None:
    with LocalRuntime(**test_ca_stack_settings) as rt:
        # single-user: a rotation
        arn, _user, _password = create_app_user(rt, postgres_server)
        assert rt.rotate(arn).succeeded

        # single-user: the stored password no longer logs in; createSecret looks for a
        # superseded version (ListSecretVersionIds), fails, and the failure is announced
        # (state machine -> SNS; Secrets Manager's RotationFailed -> EventBridge -> alerts)
        arn, user, _password = create_app_user(rt, postgres_server)
        _set_postgres_password(postgres_server, user, new_password())
        failed = rt.rotate(arn)
        assert failed.failed_step == "createSecret"
        assert eventually(lambda: len(rt.alerts()) >= 1, 10)
        assert eventually(lambda: bool(_invocations(rt, "AlertSafetyNetFunction")), 10)
        # the operator's probe (rotator plan) on that secret: the dry-run setSecret also looks
        # for superseded versions (ListSecretVersionIds), as the real one does
        assert _probe(rt, arn)["PlanOutcome"].startswith("setSecret would fail")

        # single-user set by the master (tag SecretRotationSetBy=master): createSecret checks
        # the master logs in, setSecret has it set the user's password; a rotation succeeds
        master = create_master(rt, postgres_server)
        by_master = [
            {"Key": "RotationStrategy", "Value": "single-user"},
            {"Key": "SecretRotationSetBy", "Value": "master"},
        ]
        arn, _user, _password = create_app_user(rt, postgres_server, masterarn=master)
        rt.client("secretsmanager").tag_resource(SecretId=arn, Tags=by_master)
        assert rt.rotate(arn).succeeded

        # ...and another's test fails: the rollback has the master put AWSCURRENT back, once
        # AWSPENDING (listed among the versions) proves the secret holds the account
        arn, user, _password = create_app_user(rt, postgres_server, masterarn=master)
        rt.client("secretsmanager").tag_resource(SecretId=arn, Tags=by_master)
        with _before(rt, "SingleUserTestSecretFunction", _probe_fails):
            rolled_back = rt.rotate(arn)
        assert not rolled_back.succeeded
        assert any(
            not inv.failed and inv.payload.get("LoggedInWith") == "master"
            for inv in _invocations(rt, "SingleUserRollbackFunction")
        )
        assert postgres_server.can_login(user, secret_value(rt, arn)["password"])

        # alternating users (with the master); the probe reads the master and its privileges
        alternating = _alternating_secret(rt, postgres_server)
        assert rt.rotate(alternating).succeeded
        assert {e["Who"]: e["LogsIn"] for e in _probe(rt, alternating)["Logins"]}["master"]

        # IAM access keys: a rotation and its retirement (deactivate, delete); Secrets Manager
        # then retries the finishSecret (say its answer was lost): the router finds the
        # retirement already started under its name and checks it is its own
        arn, _value = iam_secret(rt, unique_name("svc"))
        finished = rt.rotate(arn)
        assert finished.succeeded
        assert eventually(lambda: _retirements_done(rt), 60)
        again = rt.invoke_router(
            {"Step": "finishSecret", "SecretId": arn, "ClientRequestToken": finished.token}
        )
        assert not again.failed, again.error

        # IAM access keys: the retirement fails (a permanent error) and announces itself
        # (retirement state machine -> SNS)
        arn, _value = iam_secret(rt, unique_name("svc"))
        with _before(rt, "IamKeysRetireFunction", _retirement_refused):
            assert rt.rotate(arn).succeeded
            assert eventually(lambda: _retirements_done(rt), 60)
        assert eventually(lambda: len(rt.alerts()) >= 1, 10)

        # IAM access keys: STS never accepts the new key, the test gives up, the rollback
        # deactivates it; Secrets Manager's retry reactivates it (setSecret) and finishes
        arn, _value = iam_secret(rt, unique_name("svc"))
        rt.iam_propagation_checks = 10**6
        try:
            assert not rt.rotate(arn).succeeded
        finally:
            rt.iam_propagation_checks = 0
        assert any(not inv.failed for inv in _invocations(rt, "IamKeysRollbackFunction"))
        assert rt.retry_rotation(arn).succeeded

        # Redis ACL users (with the master): a rotation and its retirement
        arn, _username, _password = _redis_secret(rt, redis_server)
        assert rt.rotate(arn).succeeded

        # Redis ACL users: the test refuses the new password; the rollback removes what the
        # rotation added (with the master) and AWSCURRENT keeps working
        arn, username, password = _redis_secret(rt, redis_server)
        with _before(rt, "RedisAclTestSecretFunction", _probe_fails):
            assert not rt.rotate(arn).succeeded
        assert any(not inv.failed for inv in _invocations(rt, "RedisAclRollbackFunction"))
        assert redis_server.can_login(username, password)

        # the failed-retirements alarm notifies the safety net through its topic (SNS invokes
        # the alerts function as the topic; CloudWatch never changes an alarm's state on moto)
        alarm = {
            "AlarmName": f"{rt.stack_name}-UnfinishedRetirementExecutionsAlarm",
            "NewStateValue": "ALARM",
            "StateChangeTime": datetime.now(UTC).isoformat(),
            "Trigger": {"Period": 300, "EvaluationPeriods": 1},
        }
        before = len(_invocations(rt, "AlertSafetyNetFunction"))
        assert rt.spec is not None
        rt.client("sns").publish(
            TopicArn=rt.spec.topics["SafetyNetTopic"], Message=json.dumps(alarm)
        )
        assert eventually(lambda: len(_invocations(rt, "AlertSafetyNetFunction")) > before, 10)

        assert eventually(lambda: _retirements_done(rt), 60)
        report = rt.iam_report()
        assert_nothing_leaked(rt)

    print("\n" + report.text())
    assert not report.denied, report.text()
    assert report.complete, report.text()
    # the allow-list excused only what AWS does itself: every excused statement has a reason
    assert {reason for _stmt, reason in report.excused} <= {e.reason for e in ALLOW_LIST}
    callers = set(report.calls)
    assert {"secretsmanager.amazonaws.com", "events.amazonaws.com", "sns.amazonaws.com"} <= callers
    assert {f"{rt.stack_name}-rotation", f"{rt.stack_name}-retirement"} <= callers


def test_with_customer_managed_keys_the_functions_use_them_only_through_secrets_manager(
    test_ca_stack_settings: dict[str, Any],
) -> None:
    """SecretsKmsKeyArns adds two statements: Decrypt for the functions that read the secrets
    and GenerateDataKey for the router, both only via Secrets Manager. A secret under such a
    key rotates with exactly those."""
    with LocalRuntime(**test_ca_stack_settings) as rt:  # the key exists before its stack
        key = rt.client("kms").create_key(Description="the rotated secrets' key")["KeyMetadata"][
            "Arn"
        ]
    settings: dict[str, Any] = {
        **test_ca_stack_settings,
        "parameter_overrides": {
            **test_ca_stack_settings.get("parameter_overrides", {}),
            "SecretsKmsKeyArns": key,
        },
    }
    with LocalRuntime(**settings) as rt:
        iam = rt.client("iam")
        user = unique_name("svc")
        iam.create_user(UserName=user, Tags=[{"Key": "SecretRotation", "Value": rt.stack_name}])
        access_key = iam.create_access_key(UserName=user)["AccessKey"]
        value = {
            "engine": "iam",
            "username": user,
            "access_key_id": access_key["AccessKeyId"],
            "secret_access_key": access_key["SecretAccessKey"],
        }
        arn = rt.client("secretsmanager").create_secret(
            Name=f"iam/{user}", SecretString=json.dumps(value), KmsKeyId=key
        )["ARN"]
        assert rt.rotate(arn).succeeded
        assert eventually(lambda: _retirements_done(rt), 60)
        report = rt.iam_report()
        calls = rt.iam_calls()
    assert not report.denied, report.text()
    unused = {stmt.ref.sid for stmt in report.unused}
    assert "DecryptSecretsThroughSecretsManager" not in unused, report.text()
    assert "EncryptNewVersionsThroughSecretsManager" not in unused, report.text()
    via_secrets_manager = {(r.request.action, r.note) for r in calls if r.request and r.note}
    assert ("kms:Decrypt", "via Secrets Manager") in via_secrets_manager
    assert ("kms:GenerateDataKey", "via Secrets Manager") in via_secrets_manager


# --- refused as on AWS ------------------------------------------------------------------------------


def test_a_master_without_the_secret_rotation_master_tag_fails_the_rotation(
    runtime: Any, postgres_server: DatabaseServer
) -> None:
    username, password = unique_name("master"), new_password()
    postgres_server.create_login(username, password, superuser=True)
    master_value = database_secret(postgres_server, username, password)
    master_value.pop("dbname", None)
    untagged = runtime.client("secretsmanager").create_secret(
        Name=f"it/postgres/master/{unique_name()}",
        SecretString=json.dumps(master_value),
        Tags=GROUP_TAGS,  # in the secret's rotation group, but not SecretRotationMaster
    )["ARN"]
    user, user_password = unique_name("alt"), new_password()
    postgres_server.create_login(user, user_password)
    arn = runtime.client("secretsmanager").create_secret(
        Name=f"it/alt/{unique_name()}",
        SecretString=json.dumps(
            database_secret(postgres_server, user, user_password, masterarn=untagged)
        ),
        Tags=GROUP_TAGS,
    )["ARN"]

    outcome = runtime.rotate(arn)

    assert not outcome.succeeded
    assert "AccessDenied" in json.dumps(outcome.error), outcome.error
    denied = runtime.iam_report().denied
    create_worker = runtime.spec.functions["AlternatingUsersCreateSecretFunction"].name
    assert denied and {r.caller.name for r in denied} == {create_worker}
    refused = denied[0]
    assert refused.request is not None and refused.request.resource == untagged
    assert refused.message.startswith(
        f"User: arn:aws:sts::123456789012:assumed-role/{runtime.stack_name}-alternating-create/"
    )
    assert "is not authorized to perform: secretsmanager:DescribeSecret" in refused.message
    assert postgres_server.can_login(user, user_password)


def test_an_iam_user_without_the_secret_rotation_tag_fails_the_rotation(runtime: Any) -> None:
    iam = runtime.client("iam")
    user = unique_name("svc")
    iam.create_user(UserName=user)  # no SecretRotation=<stack> tag
    key = iam.create_access_key(UserName=user)["AccessKey"]
    arn = runtime.client("secretsmanager").create_secret(
        Name=f"iam/{user}",
        SecretString=json.dumps(
            {
                "engine": "iam",
                "username": user,
                "access_key_id": key["AccessKeyId"],
                "secret_access_key": key["SecretAccessKey"],
            }
        ),
    )["ARN"]

    outcome = runtime.rotate(arn)

    assert outcome.failed_step == "createSecret"
    assert "ListAccessKeys" in json.dumps(outcome.error)
    denied = runtime.iam_report().denied
    create_worker = runtime.spec.functions["IamKeysCreateSecretFunction"].name
    assert denied and {r.caller.name for r in denied} == {create_worker}
    refused = denied[0]
    assert refused.request is not None
    assert refused.request.action == "iam:ListAccessKeys"
    assert refused.request.resource == f"arn:aws:iam::123456789012:user/{user}"
    assert refused.message.endswith(
        "because no identity-based policy allows the iam:ListAccessKeys action"
    )
    assert [k["AccessKeyId"] for k in iam.list_access_keys(UserName=user)["AccessKeyMetadata"]] == [
        key["AccessKeyId"]
    ]


def test_a_worker_calling_outside_its_role_is_refused(runtime: Any) -> None:
    arn, _value = iam_secret(runtime, unique_name("svc"))
    sm = runtime.client("secretsmanager")
    caught: list[ClientError] = []

    def write_the_secret(event: Any) -> None:
        # the test worker tries to write a version itself (only the router may)
        try:
            sm.put_secret_value(SecretId=arn, SecretString="{}")
        except ClientError as exc:
            caught.append(exc)
            raise

    with _before(runtime, "IamKeysTestSecretFunction", write_the_secret):
        outcome = runtime.rotate(arn)

    assert not outcome.succeeded
    error = caught[0].response["Error"]
    assert error["Code"] == "AccessDeniedException"
    test_worker = runtime.spec.functions["IamKeysTestSecretFunction"].name
    # the session AWS names: the role SAM made for the function, the function's own name
    assert error["Message"].startswith("User: arn:aws:sts::123456789012:assumed-role/")
    assert (
        f"/{test_worker} is not authorized to perform: secretsmanager:PutSecretValue"
        in (error["Message"])
    )
    assert error["Message"].endswith(
        f"on resource: {arn} because no identity-based policy allows the "
        "secretsmanager:PutSecretValue action"
    )
    denied = runtime.iam_report().denied
    assert denied and {r.caller.name for r in denied} == {test_worker}
    assert {r.request.action for r in denied if r.request} == {"secretsmanager:PutSecretValue"}
    assert runtime.client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"] != "{}"


def test_secrets_manager_cannot_rotate_with_a_function_it_may_not_invoke(runtime: Any) -> None:
    arn, _value = iam_secret(runtime, unique_name("svc"))
    alerts_function = runtime.spec.functions["AlertSafetyNetFunction"]
    sm = runtime.client("secretsmanager")

    with pytest.raises(ClientError) as refused:
        sm.rotate_secret(SecretId=arn, RotationLambdaARN=alerts_function.arn)

    assert refused.value.response["Error"]["Code"] == "AccessDeniedException"
    assert "secretsmanager.amazonaws.com" in refused.value.response["Error"]["Message"]
    assert _invocations(runtime, "AlertSafetyNetFunction") == []
    (denied,) = runtime.iam_report().denied
    assert denied.caller.name == "secretsmanager.amazonaws.com"
    assert denied.request is not None and denied.request.resource == alerts_function.arn


def test_a_test_hook_after_a_worker_s_invocation_is_not_the_state_machine_s_call(
    runtime: Any,
) -> None:
    # after_invoke hooks run in the thread that invoked the worker: for a state machine's Task,
    # moto's interpreter thread; their AWS calls are the test's, not the state machine's
    arn, value = iam_secret(runtime, unique_name("svc"))
    iam = runtime.client("iam")
    counts: list[int] = []
    runtime.host.after_invoke.append(
        lambda _inv: counts.append(
            len(iam.list_access_keys(UserName=value["username"])["AccessKeyMetadata"])
        )
    )
    assert runtime.rotate(arn).succeeded
    assert len(counts) > 4  # the router's four invocations and the workers'
    assert not runtime.iam_report().denied
    machines = {r.caller.name for r in runtime.iam_calls() if r.caller.kind == "state machine"}
    assert machines and all(
        r.request is None or r.request.action != "iam:ListAccessKeys"
        for r in runtime.iam_calls()
        if r.caller.name in machines
    )


def test_secrets_manager_may_invoke_the_router_through_its_alias_only(runtime: Any) -> None:
    # GIVEN the router's permission for Secrets Manager, on its alias "live"
    arn, _value = iam_secret(runtime, unique_name("svc"))
    unqualified = runtime.spec.functions["RouterFunction"].arn
    assert runtime.router_function_arn == f"{unqualified}:live"
    sm = runtime.client("secretsmanager")

    # WHEN a secret is pointed at the router's $LATEST (the unqualified ARN)
    with pytest.raises(ClientError) as refused:
        sm.rotate_secret(SecretId=arn, RotationLambdaARN=unqualified)

    # THEN Secrets Manager refuses: only the published version behind the alias rotates
    assert refused.value.response["Error"]["Code"] == "AccessDeniedException"
    assert _invocations(runtime, "RouterFunction") == []
    (denied,) = runtime.iam_report().denied
    assert denied.caller.name == "secretsmanager.amazonaws.com"
    assert denied.request is not None and denied.request.resource == unqualified
