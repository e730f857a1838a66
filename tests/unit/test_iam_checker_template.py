"""The real template.yaml's policies, translated as ``sam deploy`` does, against representative calls.

For each function and state machine: calls it makes in a rotation are allowed, calls outside its
job (another secret, another user, writing versions, opening sealed credentials) are refused, as
AWS would refuse them. The request context (a secret's rotation function and tags, an IAM user's
tags, a KMS call's encryption context) comes from moto.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.secretsmanager.models import secretsmanager_backends

from rotator.iam_checker import IamChecker, ServiceInvokeDeniedError, TemplatePolicies
from rotator.iam_checker.policy import Denial
from rotator.iam_checker.record import Caller
from rotator.iam_checker.sources import DEFAULT_TEMPLATE, read_template

ACCOUNT = "123456789012"
REGION = "us-east-1"
STACK = "rotator"


def stack_parameters(**extra: str) -> dict[str, str]:
    declared = read_template(DEFAULT_TEMPLATE).get("Parameters", {})
    parameters = {"NamePrefix": STACK} if "NamePrefix" in declared else {}
    return {**parameters, **extra}


@dataclass
class World:
    store: TemplatePolicies
    checker: IamChecker
    key_arn: str
    secret: str  # rotated by this stack's router
    foreign: str  # rotated by another stack's router
    master: str  # tagged SecretRotationMaster=<stack>
    untagged_master: str
    cmk_secret: str  # rotated by the router, encrypted with a customer managed key
    cmk_arn: str
    topic: str

    def function(self, logical_id: str) -> Caller:
        name = self.store.function_name(logical_id)
        role = self.store.role_of_function(name)
        assert role, f"{logical_id} has no role in the template"
        return Caller(name, "function", role)

    def machine(self, logical_id: str) -> Caller:
        arn = self.store.arn(logical_id)
        role = self.store.role_of_state_machine(arn, "")
        assert role, f"{logical_id} has no role in the template"
        return Caller(arn.rsplit(":", 1)[-1], "state machine", role)

    def allowed(self, caller: Caller, service: str, operation: str, **params: Any) -> bool:
        refusal = self.checker.check_call(caller, service, operation, params)
        # A refusal must be AWS's answer, not the checker failing closed on the template.
        assert refusal is None or refusal.decision.denial is not Denial.UNKNOWN, refusal.message
        return refusal is None


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    with mock_aws():
        kms = boto3.client("kms", region_name=REGION)
        sm = boto3.client("secretsmanager", region_name=REGION)
        iam = boto3.client("iam", region_name=REGION)
        sns = boto3.client("sns", region_name=REGION)
        key_arn = kms.create_key(Description="SealingKey")["KeyMetadata"]["Arn"]
        cmk_arn = kms.create_key(Description="the secrets' own key")["KeyMetadata"]["Arn"]
        topic = sns.create_topic(Name=f"{STACK}-alerts")["TopicArn"]
        store = TemplatePolicies.load(
            stack_name=STACK,
            region=REGION,
            account=ACCOUNT,
            parameters=stack_parameters(),
            arns={"SealingKey": key_arn, "AlertTopic": topic},
        )
        # what users set as the rotation function: the router's alias (output RouterFunctionArn)
        router_arn = store.arn("RouterFunctionAliaslive")
        backend = secretsmanager_backends[ACCOUNT][REGION]

        def secret(name: str, rotation: str | None, **kwargs: Any) -> str:
            arn = sm.create_secret(Name=name, SecretString="{}", **kwargs)["ARN"]
            if rotation:
                backend.secrets[arn].rotation_lambda_arn = rotation
            return str(arn)

        for user, tags in (
            ("svc-orders", [{"Key": "SecretRotation", "Value": STACK}]),
            ("admin", []),
        ):
            iam.create_user(UserName=user, Tags=tags)
        yield World(
            store=store,
            checker=IamChecker(store, account=ACCOUNT, region=REGION),
            key_arn=key_arn,
            secret=secret("app/db", router_arn),
            foreign=secret("other/db", router_arn.replace(f"{STACK}-router", "other-router")),
            master=secret(
                "app/master", None, Tags=[{"Key": "SecretRotationMaster", "Value": STACK}]
            ),
            untagged_master=secret("app/master-untagged", None),
            cmk_secret=secret("app/cmk", router_arn, KmsKeyId=cmk_arn),
            cmk_arn=cmk_arn,
            topic=topic,
        )


def sealing_context(world: World) -> dict[str, str]:
    return {"SecretArn": world.secret, "ClientRequestToken": "token-1"}


# --- the router ------------------------------------------------------------------------------


def test_the_router_reads_and_writes_secrets_that_name_it(world: World):
    router = world.function("RouterFunction")
    for operation in ("DescribeSecret", "GetSecretValue", "PutSecretValue"):
        assert world.allowed(router, "secretsmanager", operation, SecretId=world.secret), operation
    assert world.allowed(
        router,
        "secretsmanager",
        "UpdateSecretVersionStage",
        SecretId=world.secret,
        VersionStage="AWSCURRENT",
    )


def test_the_router_cannot_touch_a_secret_another_router_rotates(world: World):
    router = world.function("RouterFunction")
    assert not world.allowed(router, "secretsmanager", "GetSecretValue", SecretId=world.foreign)
    assert not world.allowed(router, "secretsmanager", "PutSecretValue", SecretId=world.foreign)


def test_the_router_cannot_read_a_master_secret(world: World):
    router = world.function("RouterFunction")
    assert not world.allowed(router, "secretsmanager", "GetSecretValue", SecretId=world.master)


def test_the_router_starts_and_watches_its_own_executions_only(world: World):
    router = world.function("RouterFunction")
    machine = world.store.arn("RotationStateMachine")
    execution = machine.replace(":stateMachine:", ":execution:") + ":createSecret-abc"
    # executions start on the machine's alias (the version it points to runs them)
    live = f"{machine}:live"
    assert world.allowed(router, "stepfunctions", "StartExecution", stateMachineArn=live)
    assert not world.allowed(router, "stepfunctions", "StartExecution", stateMachineArn=machine)
    version = f"{machine}:3"  # a version, not the alias
    assert not world.allowed(router, "stepfunctions", "StartExecution", stateMachineArn=version)
    assert world.allowed(router, "stepfunctions", "DescribeExecution", executionArn=execution)
    stranger = machine.replace(f":{STACK}-", ":someone-else-").replace("RotationStateMachine", "X")
    for foreign in (stranger, f"{stranger}:live"):
        assert not world.allowed(router, "stepfunctions", "StartExecution", stateMachineArn=foreign)


def test_the_router_opens_sealed_credentials_only_with_the_encryption_context(world: World):
    router = world.function("RouterFunction")
    assert world.allowed(
        router,
        "kms",
        "Decrypt",
        KeyId=world.key_arn,
        CiphertextBlob=b"x",
        EncryptionContext=sealing_context(world),
    )
    refusal = world.checker.check_call(
        router, "kms", "Decrypt", {"KeyId": world.key_arn, "CiphertextBlob": b"x"}
    )
    assert refusal is not None
    assert "kms:Decrypt" in refusal.message


def test_the_router_cannot_seal(world: World):
    router = world.function("RouterFunction")
    refusal = world.checker.check_call(
        router,
        "kms",
        "Encrypt",
        {"KeyId": world.key_arn, "Plaintext": b"x", "EncryptionContext": sealing_context(world)},
    )
    assert refusal is not None
    assert refusal.message.startswith(
        f"User: arn:aws:sts::{ACCOUNT}:assumed-role/{refusal.caller.role_arn.rsplit('/', 1)[-1]}/"
        f"{STACK}-router is not authorized to perform: kms:Encrypt on resource: {world.key_arn}"
    )


# --- the workers -----------------------------------------------------------------------------


def test_a_create_worker_reads_generates_and_seals(world: World):
    create = world.function("SingleUserCreateSecretFunction")
    assert world.allowed(
        create, "secretsmanager", "GetSecretValue", SecretId=world.secret, VersionStage="AWSCURRENT"
    )
    assert world.allowed(create, "secretsmanager", "GetRandomPassword", PasswordLength=32)
    assert world.allowed(
        create,
        "kms",
        "Encrypt",
        KeyId=world.key_arn,
        Plaintext=b"x",
        EncryptionContext=sealing_context(world),
    )


def test_a_create_worker_cannot_seal_without_the_full_encryption_context(world: World):
    create = world.function("SingleUserCreateSecretFunction")
    partial = {"SecretArn": world.secret}
    extra = {**sealing_context(world), "Purpose": "x"}
    for context in ({}, partial, extra):
        assert not world.allowed(
            create, "kms", "Encrypt", KeyId=world.key_arn, Plaintext=b"x", EncryptionContext=context
        )


def test_a_create_worker_neither_writes_versions_nor_opens_sealed_credentials(world: World):
    create = world.function("SingleUserCreateSecretFunction")
    assert not world.allowed(create, "secretsmanager", "PutSecretValue", SecretId=world.secret)
    assert not world.allowed(
        create,
        "kms",
        "Decrypt",
        KeyId=world.key_arn,
        CiphertextBlob=b"x",
        EncryptionContext=sealing_context(world),
    )


def test_a_set_worker_cannot_seal_or_generate(world: World):
    set_ = world.function("SingleUserSetSecretFunction")
    assert world.allowed(set_, "secretsmanager", "ListSecretVersionIds", SecretId=world.secret)
    assert not world.allowed(
        set_,
        "kms",
        "Encrypt",
        KeyId=world.key_arn,
        Plaintext=b"x",
        EncryptionContext=sealing_context(world),
    )
    assert not world.allowed(set_, "secretsmanager", "GetRandomPassword", PasswordLength=32)


def test_alternating_users_workers_may_list_versions_for_their_ownership_proof(world: World):
    # create and set prove the secret held the idle user from earlier, unlabeled versions
    # (strategies/alternating_users.py); found missing by the checker in the local runtime
    for logical_id in ("AlternatingUsersCreateSecretFunction", "AlternatingUsersSetSecretFunction"):
        worker = world.function(logical_id)
        assert world.allowed(
            worker, "secretsmanager", "ListSecretVersionIds", SecretId=world.secret
        ), logical_id
        assert not world.allowed(
            worker, "secretsmanager", "ListSecretVersionIds", SecretId=world.foreign
        ), logical_id


def test_a_worker_reads_a_master_tagged_for_this_stack(world: World):
    for logical_id in ("AlternatingUsersCreateSecretFunction", "AlternatingUsersSetSecretFunction"):
        worker = world.function(logical_id)
        assert world.allowed(worker, "secretsmanager", "GetSecretValue", SecretId=world.master), (
            logical_id
        )


def test_a_master_without_the_secret_rotation_master_tag_is_refused_to_a_worker(world: World):
    worker = world.function("AlternatingUsersSetSecretFunction")
    refusal = world.checker.check_call(
        worker, "secretsmanager", "GetSecretValue", {"SecretId": world.untagged_master}
    )
    assert refusal is not None
    assert refusal.message.endswith(
        "because no identity-based policy allows the secretsmanager:GetSecretValue action"
    )


def test_a_test_worker_cannot_read_masters(world: World):
    test = world.function("AlternatingUsersTestSecretFunction")
    assert world.allowed(test, "secretsmanager", "GetSecretValue", SecretId=world.secret)
    assert not world.allowed(test, "secretsmanager", "GetSecretValue", SecretId=world.master)


def test_the_access_key_worker_manages_keys_of_users_tagged_for_this_stack_only(world: World):
    create = world.function("IamKeysCreateSecretFunction")
    for operation in ("ListAccessKeys", "CreateAccessKey", "DeleteAccessKey"):
        assert world.allowed(create, "iam", operation, UserName="svc-orders"), operation
        assert not world.allowed(create, "iam", operation, UserName="admin"), operation


def test_the_retire_worker_deletes_but_never_creates_keys(world: World):
    retire = world.function("IamKeysRetireFunction")
    assert world.allowed(
        retire,
        "iam",
        "UpdateAccessKey",
        UserName="svc-orders",
        AccessKeyId="AKIA1",
        Status="Inactive",
    )
    assert world.allowed(
        retire, "iam", "DeleteAccessKey", UserName="svc-orders", AccessKeyId="AKIA1"
    )
    assert not world.allowed(retire, "iam", "CreateAccessKey", UserName="svc-orders")


def test_the_key_test_worker_needs_no_permission_for_get_caller_identity(world: World):
    test = world.function("IamKeysTestSecretFunction")
    assert world.allowed(test, "sts", "GetCallerIdentity")
    assert not world.allowed(test, "iam", "CreateAccessKey", UserName="svc-orders")


def test_reading_a_secret_under_a_customer_key_needs_that_key_through_secrets_manager(world: World):
    test = world.function("SingleUserTestSecretFunction")
    refusal = world.checker.check_call(
        test, "secretsmanager", "GetSecretValue", {"SecretId": world.cmk_secret}
    )
    assert refusal is not None
    assert refusal.request is not None
    assert (refusal.request.action, refusal.request.resource) == ("kms:Decrypt", world.cmk_arn)
    # The template's SecretsKmsKeyArns parameter grants it, through Secrets Manager only.
    granted = TemplatePolicies.load(
        stack_name=STACK,
        region=REGION,
        account=ACCOUNT,
        parameters=stack_parameters(SecretsKmsKeyArns=world.cmk_arn),
        arns={"SealingKey": world.key_arn},
    )
    checker = IamChecker(granted, account=ACCOUNT, region=REGION)
    caller = Caller(test.name, "function", granted.role_of_function(test.name) or "")
    assert (
        checker.check_call(
            caller, "secretsmanager", "GetSecretValue", {"SecretId": world.cmk_secret}
        )
        is None
    )
    assert (
        checker.check_call(
            caller, "kms", "Decrypt", {"KeyId": world.cmk_arn, "CiphertextBlob": b"x"}
        )
        is not None
    )


def test_an_operation_missing_from_the_request_table_fails_closed(world: World):
    router = world.function("RouterFunction")
    refusal = world.checker.check_call(
        router, "secretsmanager", "DeleteSecret", {"SecretId": world.secret}
    )
    assert refusal is not None
    assert (
        "secretsmanager:DeleteSecret is not in the IAM checker's request table" in refusal.message
    )


# --- the safety net, the state machines, the services that invoke functions ------------------


def test_the_alerts_function_publishes_to_the_alert_topic_only(world: World):
    alerts = world.function("AlertSafetyNetFunction")
    assert world.allowed(alerts, "sns", "Publish", TopicArn=world.topic, Message="m")
    assert not world.allowed(alerts, "sns", "Publish", TopicArn=world.topic + "-other", Message="m")
    assert world.allowed(alerts, "secretsmanager", "DescribeSecret", SecretId=world.secret)
    assert not world.allowed(alerts, "secretsmanager", "GetSecretValue", SecretId=world.secret)


def test_the_alerts_function_reads_the_stack_s_executions(world: World):
    alerts = world.function("AlertSafetyNetFunction")
    machine = world.store.arn("RetirementStateMachine")
    execution = machine.replace(":stateMachine:", ":execution:") + ":retire-1"
    assert world.allowed(alerts, "stepfunctions", "ListExecutions", stateMachineArn=machine)
    assert world.allowed(alerts, "stepfunctions", "GetExecutionHistory", executionArn=execution)


def test_the_rotation_state_machine_invokes_workers_and_publishes_alerts(world: World):
    machine = world.machine("RotationStateMachine")
    # a state machine version calls the worker versions it was published with
    worker = world.store.arn("SingleUserCreateSecretFunction") + ":3"
    assert world.allowed(machine, "lambda", "Invoke", FunctionName=worker, Payload=b"{}")
    assert world.allowed(machine, "sns", "Publish", TopicArn=world.topic, Message="m")
    for router in (world.store.arn("RouterFunction"), world.store.arn("RouterFunction") + ":3"):
        assert not world.allowed(machine, "lambda", "Invoke", FunctionName=router)


def test_the_retirement_state_machine_invokes_only_the_retire_workers(world: World):
    machine = world.machine("RetirementStateMachine")
    assert world.allowed(
        machine, "lambda", "Invoke", FunctionName=world.store.arn("IamKeysRetireFunction") + ":3"
    )
    assert not world.allowed(
        machine,
        "lambda",
        "Invoke",
        FunctionName=world.store.arn("IamKeysCreateSecretFunction") + ":3",
    )


def test_secrets_manager_may_invoke_the_router_for_this_account_only(world: World):
    router = world.store.arn("RouterFunctionAliaslive")
    decision = world.checker.authorize_service_invoke(
        "secretsmanager.amazonaws.com", router, source_arn=world.secret, source_account=ACCOUNT
    )
    assert [ref.sid for ref in decision.allowed_by] == ["RouterInvokePermission"]
    with pytest.raises(ServiceInvokeDeniedError, match="lambda:InvokeFunction"):
        world.checker.authorize_service_invoke(
            "secretsmanager.amazonaws.com", router, source_account="999999999999"
        )


def test_eventbridge_may_invoke_the_alerts_function_for_its_rule_only(world: World):
    alerts = world.store.arn("AlertSafetyNetFunction")
    rule = world.store.arn("RotationFailedRule")
    world.checker.authorize_service_invoke(
        "events.amazonaws.com", alerts, source_arn=rule, source_account=ACCOUNT
    )
    with pytest.raises(ServiceInvokeDeniedError):
        world.checker.authorize_service_invoke(
            "events.amazonaws.com", alerts, source_arn=rule + "-other", source_account=ACCOUNT
        )
    with pytest.raises(ServiceInvokeDeniedError):
        world.checker.authorize_service_invoke(
            "secretsmanager.amazonaws.com", alerts, source_arn=world.secret, source_account=ACCOUNT
        )


def test_every_template_policy_is_read_and_unused_statements_are_reported(world: World):
    checker = IamChecker(world.store, account=ACCOUNT, region=REGION)
    report = checker.report()
    sids = {stmt.ref.sid for stmt in report.unused}
    # Nothing was called through this fresh checker: every statement a function needs is unused,
    # while those that exist for AWS's own calls are excused by the allow-list.
    assert {"ReadRotatedSecrets", "SealForTheRouter", "OpenSealedCredentials"} <= sids
    excused = {stmt.ref.sid for stmt, _ in report.excused}
    assert {"DeliverExecutionLogs", "AccountAdministersTheKeyButCannotUseIt"} <= excused
    assert not report.complete


def test_secrets_manager_may_invoke_the_router_s_alias_not_its_latest(world: World):
    # the permission is on the alias "live": $LATEST and other versions are not covered
    router = world.store.arn("RouterFunction")
    assert world.store.arn("RouterFunctionAliaslive") == f"{router}:live"
    for target in (router, f"{router}:3"):
        with pytest.raises(ServiceInvokeDeniedError):
            world.checker.authorize_service_invoke(
                "secretsmanager.amazonaws.com",
                target,
                source_arn=world.secret,
                source_account=ACCOUNT,
            )


def test_the_router_may_not_write_a_secret_that_names_its_latest(world: World):
    # a secret whose rotation function is the unqualified router is not one this stack rotates
    router = world.function("RouterFunction")
    latest = world.store.arn("RouterFunction")
    from moto.secretsmanager.models import secretsmanager_backends

    secret = world.secret
    backend = secretsmanager_backends[ACCOUNT][REGION]
    configured = backend.secrets[secret].rotation_lambda_arn
    backend.secrets[secret].rotation_lambda_arn = latest
    try:
        assert not world.allowed(
            router, "secretsmanager", "PutSecretValue", SecretId=secret, SecretString="{}"
        )
    finally:
        backend.secrets[secret].rotation_lambda_arn = configured
