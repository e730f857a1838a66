"""A permission added on an alias belongs to that alias: the function's own policy and its other
qualifiers do not get it (rotator.aws_local.patches.lambda_qualified_policies)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from rotator.aws_local.patches.lambda_qualified_policies import QualifiedPermissionsAreTheirOwn


def _principals(rt: Any, function: str) -> set[str]:
    try:
        policy = rt.client("lambda").get_policy(FunctionName=function)["Policy"]
    except ClientError as exc:
        assert exc.response["Error"]["Code"] == "ResourceNotFoundException"
        return set()
    return {s["Principal"]["Service"] for s in json.loads(policy)["Statement"]}


@pytest.fixture
def aliased(runtime: Any) -> Iterator[str]:
    """A throwaway function with version 1 and alias "live" on it (the pooled stack's policies
    stay as deployed); yields the function's unqualified ARN."""
    lam = runtime.client("lambda")
    arn = lam.create_function(
        FunctionName=f"fidelity-{uuid.uuid4().hex[:8]}",
        Runtime="python3.11",
        Role=runtime.spec.functions["RouterFunction"].role_arn,
        Handler="app.handler",
        Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18},
    )["FunctionArn"]
    version = lam.publish_version(FunctionName=arn)["Version"]
    lam.create_alias(FunctionName=arn, Name="live", FunctionVersion=version)
    try:
        yield arn
    finally:
        lam.delete_function(FunctionName=arn)


def _grant_on_alias(rt: Any, function: str) -> None:
    rt.client("lambda").add_permission(
        FunctionName=function,
        Qualifier="live",
        StatementId=f"s{uuid.uuid4().hex[:8]}",
        Action="lambda:InvokeFunction",
        Principal="secretsmanager.amazonaws.com",
    )


def test_a_permission_on_an_alias_is_the_alias_s_only(runtime: Any, aliased: str) -> None:
    # WHEN Secrets Manager is allowed to invoke the alias
    _grant_on_alias(runtime, aliased)
    # THEN the alias's policy has it, with the alias ARN as its resource
    statement = json.loads(
        runtime.client("lambda").get_policy(FunctionName=f"{aliased}:live")["Policy"]
    )["Statement"][0]
    assert statement["Resource"] == f"{aliased}:live"
    # AND neither the function ($LATEST) nor the version the alias points to has it
    assert _principals(runtime, aliased) == set()
    assert _principals(runtime, f"{aliased}:1") == set()


def test_the_deployed_router_may_be_invoked_by_secrets_manager_through_its_alias_only(
    runtime: Any,
) -> None:
    router = runtime.spec.functions["RouterFunction"].arn
    assert runtime.router_function_arn == f"{router}:live"
    assert _principals(runtime, f"{router}:live") == {"secretsmanager.amazonaws.com"}
    assert "secretsmanager.amazonaws.com" not in _principals(runtime, router)


def test_moto_alone_shares_one_policy_between_the_alias_and_the_function(
    runtime: Any, aliased: str
) -> None:
    with runtime.cloud.suspended(QualifiedPermissionsAreTheirOwn):
        _grant_on_alias(runtime, aliased)
        assert _principals(runtime, aliased) == {"secretsmanager.amazonaws.com"}
