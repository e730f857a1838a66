"""The converse proof: which statements no recorded call used, and what the allow-list excuses."""

from __future__ import annotations

from typing import Any

import pytest

from rotator.iam_checker.policy import (
    Policy,
    PolicyKind,
    Principal,
    Request,
    evaluate,
    parse_policy,
)
from rotator.iam_checker.record import ALLOW_LIST, Caller, CallRecord, Recorder
from rotator.iam_checker.requests import AwsState, lambda_function_arn
from rotator.iam_checker.sources import aws_managed_policy, physical_arns

ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/worker"
SECRET = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:app/db-AbCdEf"
WORKER = Caller("worker", "function", ROLE)


def policy(*statements: dict[str, Any], kind: PolicyKind = PolicyKind.IDENTITY) -> Policy:
    return parse_policy({"Statement": list(statements)}, "role worker: inline", kind)


READ = {
    "Sid": "Read",
    "Effect": "Allow",
    "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
    "Resource": "*",
}
WRITE = {
    "Sid": "Write",
    "Effect": "Allow",
    "Action": "secretsmanager:PutSecretValue",
    "Resource": "*",
}


def record(recorder: Recorder, policies: list[Policy], action: str) -> None:
    request = Request(Principal(ROLE, ACCOUNT, session="worker"), action, SECRET)
    recorder.add(CallRecord(WORKER, action, request, evaluate(request, policies)))


def test_a_statement_no_call_used_is_reported():
    policies = [policy(READ, WRITE)]
    recorder = Recorder()
    record(recorder, policies, "secretsmanager:GetSecretValue")
    record(recorder, policies, "secretsmanager:DescribeSecret")
    report = recorder.report(policies)
    assert [stmt.ref.sid for stmt in report.unused] == ["Write"]
    assert not report.complete


def test_an_action_no_call_needed_is_reported_even_when_its_statement_was_used():
    policies = [policy(READ)]
    recorder = Recorder()
    record(recorder, policies, "secretsmanager:GetSecretValue")
    report = recorder.report(policies)
    assert report.unused == []
    assert [(s.ref.sid, a) for s, a in report.unused_actions] == [
        ("Read", "secretsmanager:DescribeSecret")
    ]


def test_a_resource_no_call_matched_is_reported_even_when_its_statement_was_used():
    other = SECRET.replace("app/db-AbCdEf", "app/other-*")
    two = {**WRITE, "Resource": [SECRET, other]}
    policies = [policy(two)]
    recorder = Recorder()
    record(recorder, policies, "secretsmanager:PutSecretValue")  # on SECRET only
    report = recorder.report(policies)
    assert report.unused == [] and report.unused_actions == []
    assert [(s.ref.sid, r) for s, r in report.unused_resources] == [("Write", other)]
    assert not report.complete
    assert f"Write: {other}" in report.text()


def test_every_statement_used_makes_the_report_complete():
    policies = [policy(READ)]
    recorder = Recorder()
    record(recorder, policies, "secretsmanager:GetSecretValue")
    record(recorder, policies, "secretsmanager:DescribeSecret")
    report = recorder.report(policies)
    assert report.complete
    assert report.calls == {"worker": (2, 0)}


def test_a_denied_call_uses_no_statement():
    policies = [policy(WRITE)]
    recorder = Recorder()
    record(recorder, policies, "secretsmanager:GetSecretValue")
    report = recorder.report(policies)
    assert [stmt.ref.sid for stmt in report.unused] == ["Write"]
    assert report.calls == {"worker": (0, 1)}
    assert "because no identity-based policy allows" in report.text()


@pytest.mark.parametrize(
    "managed",
    ["AWSLambdaBasicExecutionRole", "AWSLambdaVPCAccessExecutionRole", "AWSXrayWriteOnlyAccess"],
)
def test_aws_s_own_use_of_the_execution_role_is_excused(managed: str):
    document = aws_managed_policy(
        f"arn:aws:iam::aws:policy/service-role/{managed}"
    ) or aws_managed_policy(f"arn:aws:iam::aws:policy/{managed}")
    assert document is not None
    report = Recorder().report([document])
    assert report.unused == []
    assert len(report.excused) == len(document.statements)


def test_log_delivery_and_key_administration_are_excused_but_key_use_is_not():
    delivery = {
        "Effect": "Allow",
        "Action": ["logs:CreateLogDelivery", "logs:GetLogDelivery"],
        "Resource": "*",
    }
    admin = {
        "Effect": "Allow",
        "Principal": {"AWS": ACCOUNT},
        "Action": ["kms:Describe*", "kms:Put*"],
        "Resource": "*",
    }
    use = {
        "Effect": "Allow",
        "Principal": {"AWS": ACCOUNT},
        "Action": ["kms:Describe*", "kms:Decrypt"],
        "Resource": "*",
    }
    report = Recorder().report([policy(delivery), policy(admin, use, kind=PolicyKind.RESOURCE)])
    assert len(report.excused) == 2
    assert [stmt.ref.index for stmt in report.unused] == [1]


def test_no_service_principal_s_invoke_permission_is_excused():
    sns = {
        "Effect": "Allow",
        "Principal": {"Service": "sns.amazonaws.com"},
        "Action": "lambda:InvokeFunction",
        "Resource": "*",
    }
    events = {
        "Effect": "Allow",
        "Principal": {"Service": "events.amazonaws.com"},
        "Action": "lambda:InvokeFunction",
        "Resource": "*",
    }
    # SNS, EventBridge and Secrets Manager invoke the local stack's functions through their
    # resource policies (checked), so an invoke permission no call used is unused, not excused
    report = Recorder().report([policy(sns, events, kind=PolicyKind.RESOURCE)])
    assert [stmt.ref.index for stmt in report.unused] == [0, 1]
    assert report.excused == []


def test_every_allow_list_entry_gives_a_reason_with_a_source():
    for entry in ALLOW_LIST:
        assert "https://docs.aws.amazon.com/" in entry.reason


@pytest.mark.parametrize(
    ("name", "qualifier", "arn"),
    [
        ("router", None, "arn:aws:lambda:us-east-1:123456789012:function:router"),
        ("router:live", None, "arn:aws:lambda:us-east-1:123456789012:function:router:live"),
        ("router", "7", "arn:aws:lambda:us-east-1:123456789012:function:router:7"),
        (
            "123456789012:function:router",
            None,
            "arn:aws:lambda:us-east-1:123456789012:function:router",
        ),
        (
            "arn:aws:lambda:us-east-1:123456789012:function:router:$LATEST",
            None,
            "arn:aws:lambda:us-east-1:123456789012:function:router:$LATEST",
        ),
    ],
)
def test_lambda_function_names_become_the_arn_lambda_authorizes(
    name: str, qualifier: str | None, arn: str
):
    assert lambda_function_arn(AwsState(ACCOUNT, "us-east-1"), name, qualifier) == arn


def test_a_created_stack_s_physical_ids_become_arns():
    resources = [
        {
            "LogicalResourceId": "RouterFunction",
            "ResourceType": "AWS::Lambda::Function",
            "PhysicalResourceId": "rotator-router",
        },
        {
            "LogicalResourceId": "SealingKey",
            "ResourceType": "AWS::KMS::Key",
            "PhysicalResourceId": "k-1",
        },
        {
            "LogicalResourceId": "Rule",
            "ResourceType": "AWS::Events::Rule",
            "PhysicalResourceId": "rotator-Rule-X",
        },
        {
            "LogicalResourceId": "Machine",
            "ResourceType": "AWS::StepFunctions::StateMachine",
            "PhysicalResourceId": "arn:aws:states:us-east-1:123456789012:stateMachine:m",
        },
        {
            "LogicalResourceId": "Alarm",
            "ResourceType": "AWS::CloudWatch::Alarm",
            "PhysicalResourceId": "a",
        },
    ]
    assert physical_arns(resources, "us-east-1", ACCOUNT) == {
        "RouterFunction": "arn:aws:lambda:us-east-1:123456789012:function:rotator-router",
        "SealingKey": "arn:aws:kms:us-east-1:123456789012:key/k-1",
        "Rule": "arn:aws:events:us-east-1:123456789012:rule/rotator-Rule-X",
        "Machine": "arn:aws:states:us-east-1:123456789012:stateMachine:m",
    }
