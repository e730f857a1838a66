"""The hook: real boto3 calls from a function's thread or a state machine's Task state, on moto.

Policies come from moto itself (:class:`MotoPolicies`): roles, inline and managed policies, a KMS
key policy and a Lambda function, created as CloudFormation would create them.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from rotator.iam_checker import IamChecker, MotoPolicies, Scope, install

ACCOUNT = "123456789012"
REGION = "us-east-1"
TAG = {"Key": "Team", "Value": "payments"}


def document(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


@dataclass
class World:
    checker: IamChecker
    allowed_secret: str
    other_secret: str
    topic: str
    other_topic: str
    key_id: str
    machine: str


def run_as(function: str, call: Callable[[], Any]) -> Any:
    """Run ``call`` in a thread named like the local runtime's Lambda threads."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = call()
        except Exception as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=target, name=f"lambda:{function}")
    thread.start()
    thread.join(30)
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def client(service: str) -> Any:
    return boto3.client(service, region_name=REGION)  # type: ignore[call-overload]


@pytest.fixture
def world() -> Iterator[World]:
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        iam, sm, sns, kms = client("iam"), client("secretsmanager"), client("sns"), client("kms")
        trust = document(
            {
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        )
        role = iam.create_role(RoleName="worker-role", AssumeRolePolicyDocument=trust)["Role"][
            "Arn"
        ]
        allowed_secret = sm.create_secret(Name="payments/db", SecretString="{}", Tags=[TAG])["ARN"]
        other_secret = sm.create_secret(Name="billing/db", SecretString="{}")["ARN"]
        topic = sns.create_topic(Name="alerts")["TopicArn"]
        other_topic = sns.create_topic(Name="elsewhere")["TopicArn"]
        iam.put_role_policy(
            RoleName="worker-role",
            PolicyName="read",
            PolicyDocument=document(
                {
                    "Effect": "Allow",
                    "Action": "secretsmanager:GetSecretValue",
                    "Resource": "*",
                    "Condition": {"StringEquals": {"aws:ResourceTag/Team": "payments"}},
                },
                {"Sid": "Publish", "Effect": "Allow", "Action": "sns:Publish", "Resource": topic},
            ),
        )
        managed = iam.create_policy(
            PolicyName="list-keys",
            PolicyDocument=document(
                {
                    "Sid": "ListKeys",
                    "Effect": "Allow",
                    "Action": "iam:ListAccessKeys",
                    "Resource": "*",
                }
            ),
        )["Policy"]["Arn"]
        iam.attach_role_policy(RoleName="worker-role", PolicyArn=managed)
        key_id = kms.create_key(
            Policy=document(
                {
                    "Sid": "WorkerSeals",
                    "Effect": "Allow",
                    "Principal": {"AWS": role},
                    "Action": ["kms:Encrypt", "kms:Decrypt"],
                    "Resource": "*",
                    "Condition": {"StringEquals": {"kms:EncryptionContext:Purpose": "sealing"}},
                }
            )
        )["KeyMetadata"]["KeyId"]
        client("lambda").create_function(
            FunctionName="worker",
            Runtime="python3.11",
            Role=role,
            Handler="app.handler",
            Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18},
        )
        states_trust = document(
            {
                "Effect": "Allow",
                "Principal": {"Service": "states.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        )
        machine_role = iam.create_role(
            RoleName="machine-role", AssumeRolePolicyDocument=states_trust
        )["Role"]["Arn"]
        iam.put_role_policy(
            RoleName="machine-role",
            PolicyName="alerts",
            PolicyDocument=document(
                {"Effect": "Allow", "Action": "sns:Publish", "Resource": topic}
            ),
        )
        definition = {
            "StartAt": "Publish alert",
            "States": {
                "Publish alert": {
                    "Type": "Task",
                    "Resource": "arn:aws:states:::sns:publish",
                    "Parameters": {"TopicArn.$": "$.topic", "Message": "rotation failed"},
                    "End": True,
                }
            },
        }
        machine = client("stepfunctions").create_state_machine(
            name="alerts", definition=json.dumps(definition), roleArn=machine_role
        )["stateMachineArn"]
        checker = IamChecker(MotoPolicies(ACCOUNT, REGION), account=ACCOUNT, region=REGION)
        yield World(checker, allowed_secret, other_secret, topic, other_topic, key_id, machine)


def error_of(call: Callable[[], Any]) -> dict[str, Any]:
    with pytest.raises(ClientError) as caught:
        call()
    error: dict[str, Any] = caught.value.response["Error"]
    return error


def test_a_function_s_allowed_call_reaches_moto(world: World):
    sm = client("secretsmanager")
    with install(world.checker):
        value = run_as("worker", lambda: sm.get_secret_value(SecretId=world.allowed_secret))
    assert value["SecretString"] == "{}"


def test_a_refused_call_raises_what_aws_returns(world: World):
    sm = client("secretsmanager")
    with install(world.checker):
        error = error_of(
            lambda: run_as("worker", lambda: sm.get_secret_value(SecretId=world.other_secret))
        )
    assert error["Code"] == "AccessDeniedException"
    assert error["Message"] == (
        f"User: arn:aws:sts::{ACCOUNT}:assumed-role/worker-role/worker is not authorized to "
        f"perform: secretsmanager:GetSecretValue on resource: {world.other_secret} because no "
        "identity-based policy allows the secretsmanager:GetSecretValue action"
    )


def test_iam_and_sns_refusals_use_their_own_error_codes(world: World):
    iam, sns = client("iam"), client("sns")
    with install(world.checker):
        iam_error = error_of(
            lambda: run_as("worker", lambda: iam.create_access_key(UserName="someone"))
        )
        sns_error = error_of(
            lambda: run_as("worker", lambda: sns.publish(TopicArn=world.other_topic, Message="m"))
        )
    assert iam_error["Code"] == "AccessDenied"
    assert sns_error["Code"] == "AuthorizationError"
    assert "is not authorized to perform: SNS:Publish on resource" in sns_error["Message"]


def test_managed_policies_attached_to_the_role_count(world: World):
    iam = client("iam")
    client("iam").create_user(UserName="svc")
    with install(world.checker):
        keys = run_as("worker", lambda: iam.list_access_keys(UserName="svc"))
    assert keys["AccessKeyMetadata"] == []


def test_kms_calls_carry_the_encryption_context_and_decrypt_finds_the_key_in_the_blob(world: World):
    kms = client("kms")
    with install(world.checker):
        blob = run_as(
            "worker",
            lambda: kms.encrypt(
                KeyId=world.key_id, Plaintext=b"s", EncryptionContext={"Purpose": "sealing"}
            ),
        )["CiphertextBlob"]
        plain = run_as(
            "worker",
            lambda: kms.decrypt(CiphertextBlob=blob, EncryptionContext={"Purpose": "sealing"}),
        )["Plaintext"]
        error = error_of(
            lambda: run_as("worker", lambda: kms.encrypt(KeyId=world.key_id, Plaintext=b"s"))
        )
    assert plain == b"s"
    assert error["Code"] == "AccessDeniedException"
    assert "kms:Encrypt" in error["Message"]


def test_clients_created_before_install_are_checked_too(world: World):
    cached = client("secretsmanager")  # the handlers cache their clients process-wide
    cached.get_secret_value(SecretId=world.other_secret)
    with install(world.checker):
        error = error_of(
            lambda: run_as("worker", lambda: cached.get_secret_value(SecretId=world.other_secret))
        )
    assert error["Code"] == "AccessDeniedException"


def test_calls_outside_the_stack_s_threads_are_not_checked(world: World):
    sm = client("secretsmanager")
    with install(world.checker):
        assert sm.get_secret_value(SecretId=world.other_secret)["SecretString"] == "{}"
    assert world.checker.recorder.records == []


def test_leaving_install_restores_botocore(world: World):
    sm = client("secretsmanager")
    with install(world.checker):
        pass
    value = run_as("worker", lambda: sm.get_secret_value(SecretId=world.other_secret))
    assert value["SecretString"] == "{}"
    assert world.checker.recorder.records == []


def test_a_function_without_a_known_role_is_refused_everything(world: World):
    sm = client("secretsmanager")
    with install(world.checker):
        error = error_of(
            lambda: run_as(
                "not-deployed", lambda: sm.get_secret_value(SecretId=world.allowed_secret)
            )
        )
    assert "knows no role for function not-deployed" in error["Message"]


def wait_for(execution_arn: str) -> dict[str, Any]:
    sfn = client("stepfunctions")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        description: dict[str, Any] = sfn.describe_execution(executionArn=execution_arn)
        if description["status"] != "RUNNING":
            return description
        time.sleep(0.05)
    raise AssertionError("execution did not finish")


def test_a_state_machine_task_runs_under_the_state_machine_s_role(world: World):
    sfn = client("stepfunctions")
    with install(world.checker):
        ok = sfn.start_execution(
            stateMachineArn=world.machine, name="ok", input=json.dumps({"topic": world.topic})
        )
        refused = sfn.start_execution(
            stateMachineArn=world.machine,
            name="refused",
            input=json.dumps({"topic": world.other_topic}),
        )
        ok_result, refused_result = wait_for(ok["executionArn"]), wait_for(refused["executionArn"])
    assert ok_result["status"] == "SUCCEEDED"
    assert refused_result["status"] == "FAILED"
    assert refused_result["error"] == "SNS.AuthorizationErrorException"
    callers = {
        (r.caller.kind, r.caller.name, r.decision.allowed) for r in world.checker.recorder.records
    }
    assert callers == {("state machine", "alerts", True), ("state machine", "alerts", False)}


def test_the_report_counts_calls_and_names_unused_statements(world: World):
    sm = client("secretsmanager")
    with install(world.checker):
        run_as("worker", lambda: sm.get_secret_value(SecretId=world.allowed_secret))
        with pytest.raises(ClientError):
            run_as("worker", lambda: sm.get_secret_value(SecretId=world.other_secret))
    report = world.checker.report()
    assert report.calls == {"worker": (1, 1)}
    unused = {str(stmt.ref) for stmt in report.unused}
    assert "role worker-role: read#Publish" in unused
    assert "role worker-role: read#0" not in unused
    assert "denied calls:" in report.text()


def test_a_report_scoped_to_one_stack_leaves_other_stacks_out(world: World):
    iam, sm = client("iam"), client("secretsmanager")
    trust = document(
        {
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    )
    other_role = iam.create_role(RoleName="other-stack-role", AssumeRolePolicyDocument=trust)[
        "Role"
    ]["Arn"]
    iam.put_role_policy(
        RoleName="other-stack-role",
        PolicyName="other",
        PolicyDocument=document({"Effect": "Allow", "Action": "sns:Publish", "Resource": "*"}),
    )
    client("lambda").create_function(
        FunctionName="other-stack-fn",
        Runtime="python3.11",
        Role=other_role,
        Handler="app.handler",
        Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18},
    )
    with install(world.checker):
        run_as("worker", lambda: sm.get_secret_value(SecretId=world.allowed_secret))
        with pytest.raises(ClientError):
            run_as("other-stack-fn", lambda: sm.get_secret_value(SecretId=world.allowed_secret))
    everything = world.checker.report()
    mine = world.checker.report(Scope(functions=frozenset({"worker"})))
    assert set(everything.calls) == {"worker", "other-stack-fn"}
    assert mine.calls == {"worker": (1, 0)}
    assert any(s.ref.policy.startswith("role other-stack-role") for s in everything.unused)
    assert not any(s.ref.policy.startswith("role other-stack-role") for s in mine.unused)


def test_a_role_policy_that_cannot_be_read_refuses_the_call_and_is_reported(world: World):
    from moto.iam.models import iam_backends

    # What moto's CloudFormation stores for a statement list holding "!Ref AWS::NoValue".
    iam_backends[ACCOUNT]["aws"].get_role("worker-role").policies["broken"] = {
        "Version": "2012-10-17",
        "Statement": [None],
    }
    sm = client("secretsmanager")
    with install(world.checker):
        error = error_of(
            lambda: run_as("worker", lambda: sm.get_secret_value(SecretId=world.allowed_secret))
        )
    assert "a policy cannot be read: role worker-role: broken#0" in error["Message"]
    report = world.checker.report()
    assert not report.complete
    assert report.problems == [
        "policies cannot be read: role worker-role: broken#0: a statement must be a JSON object"
    ]


def test_the_report_covers_the_policies_of_state_machines_that_run_executions(world: World):
    # moto keeps state machines that run executions in a backend of their own; their roles'
    # statements belong in the report like the functions' (here: never used)
    report = world.checker.report(Scope(state_machines=frozenset({world.machine})))
    assert [str(stmt.ref) for stmt in report.unused] == ["role machine-role: alerts#0"]


def test_with_two_stacks_in_use_each_call_goes_to_the_checker_of_its_caller_s_stack(world: World):
    iam, sm = client("iam"), client("secretsmanager")
    trust = document(
        {
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    )
    other_role = iam.create_role(RoleName="stack2-role", AssumeRolePolicyDocument=trust)["Role"][
        "Arn"
    ]
    client("lambda").create_function(
        FunctionName="stack2-fn",
        Runtime="python3.11",
        Role=other_role,
        Handler="app.handler",
        Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18},
    )
    first = IamChecker(
        MotoPolicies(ACCOUNT, REGION),
        account=ACCOUNT,
        region=REGION,
        scope=Scope(functions=frozenset({"worker"})),
    )
    second = IamChecker(
        MotoPolicies(ACCOUNT, REGION),
        account=ACCOUNT,
        region=REGION,
        scope=Scope(functions=frozenset({"stack2-fn"})),
    )
    with install(first), install(second):  # the second stack's checker is the innermost
        run_as("worker", lambda: sm.get_secret_value(SecretId=world.allowed_secret))
        with pytest.raises(ClientError):
            run_as("stack2-fn", lambda: sm.get_secret_value(SecretId=world.allowed_secret))
        # a function of neither stack: its runtime does not check IAM (check_iam=False)
        run_as("unchecked-fn", lambda: sm.get_secret_value(SecretId=world.other_secret))
    assert [(r.caller.name, r.decision.allowed) for r in first.recorder.records] == [
        ("worker", True)
    ]
    assert [(r.caller.name, r.decision.allowed) for r in second.recorder.records] == [
        ("stack2-fn", False)
    ]
