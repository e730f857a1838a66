"""template.yaml is the single source of truth; check what it promises."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from rotator.functions import FunctionHost
from rotator.template import PROJECT_ROOT, build_stack_spec, load_template

TEMPLATE = load_template()
WRITES = {"secretsmanager:PutSecretValue", "secretsmanager:UpdateSecretVersionStage"}


def _spec() -> Any:
    return build_stack_spec(
        TEMPLATE,
        stack_name="t",
        region="us-east-1",
        account="123456789012",
        kms_key=("k", "arn:aws:kms:us-east-1:123456789012:key/k"),
    )


def _functions() -> dict[str, dict[str, Any]]:
    return {
        k: v for k, v in TEMPLATE["Resources"].items() if v["Type"] == "AWS::Serverless::Function"
    }


def _actions(resource: dict[str, Any]) -> set[str]:
    actions: set[str] = set()
    for policy in resource["Properties"].get("Policies", []):
        for statement in policy.get("Statement", []) if isinstance(policy, dict) else []:
            listed = statement["Action"]
            actions |= {listed} if isinstance(listed, str) else set(listed)
    return actions


@pytest.mark.parametrize("logical_id", sorted(_functions()))
def test_every_handler_in_the_template_exists(logical_id: str) -> None:
    spec = _spec()
    host = FunctionHost(spec.functions, "us-east-1")
    try:
        assert callable(host.handler(spec.functions[logical_id]))
    finally:
        host.close()


def test_only_the_router_may_write_versions_or_labels() -> None:
    writers = {name for name, fn in _functions().items() if _actions(fn) & WRITES}
    assert writers == {"RouterFunction"}


def test_no_function_is_granted_wildcard_actions() -> None:
    for name, fn in _functions().items():
        assert not any(a.endswith(":*") or a == "*" for a in _actions(fn)), name


def test_functions_read_only_rotated_secrets_or_masters_tagged_for_this_stack() -> None:
    allowed = ("secretsmanager:resource/AllowRotationLambdaArn", "secretsmanager:ResourceTag/")
    for name, fn in _functions().items():
        for policy in fn["Properties"].get("Policies", []):
            for statement in policy.get("Statement", []):
                actions = statement["Action"]
                actions = [actions] if isinstance(actions, str) else actions
                if "secretsmanager:GetSecretValue" in actions:
                    condition = json.dumps(statement["Condition"])
                    assert any(key in condition for key in allowed), name


def test_only_workers_that_need_the_master_secret_may_read_it() -> None:
    readers = {
        name
        for name, fn in _functions().items()
        if "SecretRotationMaster" in json.dumps(fn["Properties"].get("Policies", []), default=str)
    }
    assert readers == {
        "SingleUserRollbackFunction",
        "AlternatingUsersCreateSecretFunction",
        "AlternatingUsersSetSecretFunction",
        "MultiCredentialCreateSecretFunction",
        "MultiCredentialSetSecretFunction",
        "MultiCredentialRollbackFunction",
        "MultiCredentialRetireFunction",
    }


def test_every_lambda_the_state_machines_invoke_is_a_template_function() -> None:
    spec = _spec()
    arns = {fn.arn for fn in spec.functions.values()}
    text = "\n".join(m.definition for m in spec.state_machines.values())
    invoked = set(re.findall(r"arn:aws:lambda:[^\"]+", text))
    workers = {
        fn.arn
        for name, fn in spec.functions.items()
        if name not in ("RouterFunction", "AlertSafetyNetFunction")
    }
    assert invoked <= arns
    assert invoked == workers, "a worker function is never invoked, or the router is"


def test_the_state_machine_takes_its_intervals_from_substitutions() -> None:
    text = (PROJECT_ROOT / "statemachine" / "rotation.asl.json").read_text()
    assert '"IntervalSeconds": ${RetryIntervalSeconds}' in text
    assert '"MaxAttempts": ${RetryMaxAttempts}' in text


@pytest.mark.parametrize(
    ("code_uri", "needed"),
    [
        ("functions/single_user", {"psycopg2-binary", "pymysql"}),
        ("functions/shared", {"aws-lambda-powertools", "jsonschema"}),
    ],
)
def test_sam_requirements_list_what_the_code_imports(code_uri: str, needed: set[str]) -> None:
    lines = (PROJECT_ROOT / code_uri / "requirements.txt").read_text().splitlines()
    names = {
        line.split(">")[0].split("=")[0].strip().lower()
        for line in lines
        if line and not line.startswith("#")
    }
    assert needed <= names
    pyproject = (PROJECT_ROOT / "pyproject.toml").read_text()
    assert all(f'"{name}' in pyproject for name in needed)


def test_the_events_directory_has_one_sample_per_step() -> None:
    names = {p.stem for p in Path(PROJECT_ROOT / "events").glob("*.json")}
    assert {"createSecret", "setSecret", "testSecret", "finishSecret"} <= names


def test_only_the_router_can_open_sealed_credentials() -> None:
    key = TEMPLATE["Resources"]["SealingKey"]["Properties"]["KeyPolicy"]["Statement"]
    decrypters = [
        s for s in key if "kms:Decrypt" in json.dumps(s["Action"]) or s["Action"] == "kms:*"
    ]
    assert len(decrypters) == 1
    assert decrypters[0]["Principal"] == {"AWS": {"Fn::GetAtt": ["RouterFunctionRole", "Arn"]}}
    assert not any("kms:" in a for fn in _functions().values() for a in _actions(fn)), (
        "KMS use is granted by the key policy alone"
    )
