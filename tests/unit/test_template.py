"""template.yaml is the single source of truth; check what it promises.

These read the SAM template itself; ``tools/deploy_check.py`` (CI) and every test that uses the
local runtime deploy it through the SAM transform and CloudFormation on moto.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from rotator.aws_local.lambda_host import FunctionHost, FunctionSpec
from rotator.template import PROJECT_ROOT, load_template

TEMPLATE = load_template()
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]
WRITES = {"secretsmanager:PutSecretValue", "secretsmanager:UpdateSecretVersionStage"}
CREATE_WORKERS = {
    "SingleUserCreateSecretFunction",
    "AlternatingUsersCreateSecretFunction",
    "IamKeysCreateSecretFunction",
    "RedisAclCreateSecretFunction",
}
LONGEST_PREFIX = "p" * TEMPLATE["Parameters"]["NamePrefix"]["MaxLength"]


def _functions() -> dict[str, dict[str, Any]]:
    return {k: v for k, v in RESOURCES.items() if v["Type"] == "AWS::Serverless::Function"}


def _statements(document_holder: Any) -> list[dict[str, Any]]:
    """Statements of an inline policy ({Statement: [...]}) or a PolicyDocument; !If branches
    are both included."""
    found: list[dict[str, Any]] = []
    for statement in document_holder.get("Statement", []):
        if isinstance(statement, dict) and "Fn::If" in statement:
            found += [s for s in statement["Fn::If"][1:] if isinstance(s, dict) and "Effect" in s]
        elif isinstance(statement, dict):
            found.append(statement)
    return found


def _managed(ref: Any) -> list[dict[str, Any]]:
    """Statements of a managed policy referenced by !Ref (or !If of !Ref); [] for AWS's own."""
    if isinstance(ref, dict) and "Fn::If" in ref:
        return [s for branch in ref["Fn::If"][1:] for s in _managed(branch)]
    if isinstance(ref, dict) and "Ref" in ref and ref["Ref"] in RESOURCES:
        return _statements(RESOURCES[ref["Ref"]]["Properties"]["PolicyDocument"])
    return []


def _policy_names(ref: Any) -> set[str]:
    if isinstance(ref, dict) and "Fn::If" in ref:
        return {n for branch in ref["Fn::If"][1:] for n in _policy_names(branch)}
    if isinstance(ref, dict) and "Ref" in ref and ref["Ref"] in RESOURCES:
        return {ref["Ref"]}
    return set()


def _role_of(function: dict[str, Any]) -> str | None:
    role = function["Properties"].get("Role")
    return role["Fn::GetAtt"][0] if isinstance(role, dict) else None


def _attached(logical_id: str) -> set[str]:
    """Managed policies (logical ids) a function's role has."""
    function = RESOURCES[logical_id]
    role = _role_of(function)
    refs = (
        RESOURCES[role]["Properties"].get("ManagedPolicyArns", [])
        if role
        else [p for p in function["Properties"].get("Policies", []) if "Statement" not in p]
    )
    return {name for ref in refs for name in _policy_names(ref)}


def _effective(logical_id: str) -> list[dict[str, Any]]:
    """Every statement a function's role holds (managed and inline)."""
    function = RESOURCES[logical_id]
    role = _role_of(function)
    found: list[dict[str, Any]] = []
    if role:
        props = RESOURCES[role]["Properties"]
        for ref in props.get("ManagedPolicyArns", []):
            found += _managed(ref)
        for policy in props.get("Policies", []):
            found += _statements(policy["PolicyDocument"])
    else:
        for policy in function["Properties"].get("Policies", []):
            found += _statements(policy) if "Statement" in policy else _managed(policy)
    return found


def _actions(statement: dict[str, Any]) -> set[str]:
    listed = statement["Action"]
    return {listed} if isinstance(listed, str) else set(listed)


def _sub_with_prefix(value: Any, prefix: str = "rotator") -> str:
    text = value["Fn::Sub"] if isinstance(value, dict) else value
    return str(text).replace("${NamePrefix}", prefix)


@pytest.mark.parametrize("logical_id", sorted(_functions()))
def test_every_handler_in_the_template_exists(logical_id: str) -> None:
    props = _functions()[logical_id]["Properties"]
    spec = FunctionSpec(
        logical_id=logical_id,
        name=_sub_with_prefix(props["FunctionName"]),
        arn=f"arn:aws:lambda:us-east-1:123456789012:function:{logical_id}",
        code_dir=PROJECT_ROOT / props["CodeUri"],
        handler=props["Handler"],
        timeout=30,
        memory=256,
        environment={},
    )
    host = FunctionHost({logical_id: spec}, "us-east-1")
    try:
        assert callable(host.handler(spec))
    finally:
        host.close()


def test_the_probe_may_only_read() -> None:
    """The operator's probe reads secrets and logs in; no write, no KMS, no state machine."""
    actions = {a for s in _effective("ProbeFunction") for a in _actions(s)}
    assert actions == {
        "secretsmanager:DescribeSecret",
        "secretsmanager:GetSecretValue",
        "secretsmanager:ListSecretVersionIds",
        "kms:Decrypt",  # only with SecretsKmsKeyArns, only through Secrets Manager
    }
    assert _attached("ProbeFunction") == {
        "DescribeRotatedSecretsPolicy",
        "ReadRotatedSecretsPolicy",
        "ListRotatedSecretVersionsPolicy",
        "ReadMasterSecretsPolicy",
        "DecryptSecretsKeysPolicy",
    }


def test_only_the_router_may_write_versions_or_labels() -> None:
    writers = {name for name in _functions() if any(_actions(s) & WRITES for s in _effective(name))}
    assert writers == {"RouterFunction"}


def test_no_function_is_granted_wildcard_actions() -> None:
    for name in _functions():
        for statement in _effective(name):
            assert not any(a.endswith(":*") or a == "*" for a in _actions(statement)), name


def test_functions_read_only_rotated_secrets_or_masters_tagged_for_this_stack() -> None:
    allowed = ("secretsmanager:resource/AllowRotationLambdaArn", "secretsmanager:ResourceTag/")
    reads = {"secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"}
    for name in _functions():
        for statement in _effective(name):
            if _actions(statement) & reads:
                condition = json.dumps(statement["Condition"])
                assert any(key in condition for key in allowed), name


def test_the_alerts_function_describes_only_secrets_this_stack_rotates() -> None:
    describes = [
        s
        for s in _effective("AlertSafetyNetFunction")
        if "secretsmanager:DescribeSecret" in _actions(s)
    ]
    assert describes and all(
        "AllowRotationLambdaArn" in json.dumps(s.get("Condition", {})) for s in describes
    )


def test_only_workers_that_need_the_master_secret_may_read_it() -> None:
    readers = {name for name in _functions() if "ReadMasterSecretsPolicy" in _attached(name)}
    assert readers == {
        # single-user secrets tagged SecretRotationSetBy=master: the master sets the password
        "SingleUserCreateSecretFunction",
        "SingleUserSetSecretFunction",
        "SingleUserRollbackFunction",
        "AlternatingUsersCreateSecretFunction",
        "AlternatingUsersSetSecretFunction",
        "RedisAclCreateSecretFunction",
        "RedisAclSetSecretFunction",
        "RedisAclRollbackFunction",
        "RedisAclRetireFunction",
        # the operator's probe: logs in with the master to report whether it works
        "ProbeFunction",
    }
    master = _statements(RESOURCES["ReadMasterSecretsPolicy"]["Properties"]["PolicyDocument"])
    assert {a for s in master for a in _actions(s)} == {
        "secretsmanager:GetSecretValue",
        "secretsmanager:DescribeSecret",
    }


def test_each_shared_statement_is_written_once() -> None:
    seen: dict[str, str] = {}
    for logical_id, resource in RESOURCES.items():
        documents = []
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::IAM::ManagedPolicy":
            documents.append(props["PolicyDocument"])
        documents += [
            p["PolicyDocument"] for p in props.get("Policies", []) if "PolicyDocument" in p
        ]
        documents += [
            p for p in props.get("Policies", []) if isinstance(p, dict) and "Statement" in p
        ]
        for document in documents:
            for statement in _statements(document):
                key = json.dumps({k: v for k, v in statement.items() if k != "Sid"}, sort_keys=True)
                assert key not in seen, f"{logical_id} repeats a statement of {seen.get(key)}"
                seen[key] = logical_id


def _machine_workers(machine: str) -> set[str]:
    """Functions a state machine's definition invokes (through its substitutions)."""
    props = RESOURCES[machine]["Properties"]
    text = (PROJECT_ROOT / props["DefinitionUri"]).read_text()
    used = set(re.findall(r"\$\{([A-Za-z0-9]+)\}", text))
    found = set()
    for name, value in props["DefinitionSubstitutions"].items():
        if name in used and name.endswith("FunctionArn"):
            # a state machine version calls the worker versions it was published with
            assert isinstance(value, dict) and value.get("Ref", "").endswith(".Version"), name
            found.add(value["Ref"].removesuffix(".Version"))
    return found


def test_every_worker_is_invoked_by_a_state_machine_and_allowed_to_be() -> None:
    workers = set(_functions()) - {"RouterFunction", "AlertSafetyNetFunction", "ProbeFunction"}
    invoked = _machine_workers("RotationStateMachine") | _machine_workers("RetirementStateMachine")
    assert invoked == workers
    for machine in ("RotationStateMachine", "RetirementStateMachine"):
        # any version: executions of an older state machine version call older worker versions
        allowed = {
            re.fullmatch(r"\$\{(\w+)\.Arn\}:\*", r["Fn::Sub"]).group(1)  # type: ignore[union-attr]
            for p in RESOURCES[machine]["Properties"]["Policies"]
            if "Statement" in p
            for s in p["Statement"]
            if "lambda:InvokeFunction" in _actions(s)
            for r in s["Resource"]
        }
        assert allowed == _machine_workers(machine), machine


def test_the_state_machine_takes_its_intervals_from_substitutions() -> None:
    text = (PROJECT_ROOT / "statemachine" / "rotation.asl.json").read_text()
    assert '"IntervalSeconds": ${RetryIntervalSeconds}' in text
    assert '"MaxAttempts": ${RetryMaxAttempts}' in text


def test_only_database_and_redis_workers_join_the_vpc() -> None:
    in_vpc = {name for name, fn in _functions().items() if "VpcConfig" in fn["Properties"]}
    assert in_vpc == {
        name
        for name in _functions()
        if name.startswith(("SingleUser", "AlternatingUsers", "RedisAcl", "Probe"))
    }
    assert "VpcConfig" not in TEMPLATE["Globals"]["Function"]


def test_workers_that_reach_servers_get_the_tls_settings() -> None:
    for name, fn in _functions().items():
        variables = fn["Properties"].get("Environment", {}).get("Variables", {})
        reaches_servers = "VpcConfig" in fn["Properties"]
        assert ("ALLOW_PLAINTEXT" in variables) == reaches_servers, name
        assert ("CA_BUNDLE" in variables) == reaches_servers, name
    assert TEMPLATE["Parameters"]["AllowPlaintext"]["Default"] == "false"
    assert TEMPLATE["Parameters"]["CaBundle"]["Default"] == ""


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


# --- the sealing key: both sides written down -----------------------------------------------


def _key_statements() -> list[dict[str, Any]]:
    return list(RESOURCES["SealingKey"]["Properties"]["KeyPolicy"]["Statement"])


def _principal_arns(statement: dict[str, Any]) -> set[str]:
    arns = statement["Condition"]["ArnEquals"]["aws:PrincipalArn"]
    return {_sub_with_prefix(a) for a in (arns if isinstance(arns, list) else [arns])}


def _role_arn(role_logical_id: str) -> str:
    name = _sub_with_prefix(RESOURCES[role_logical_id]["Properties"]["RoleName"])
    return f"arn:${{AWS::Partition}}:iam::${{AWS::AccountId}}:role/{name}"


def _requires_context(statement: dict[str, Any]) -> bool:
    condition = statement.get("Condition", {})
    return condition.get("ForAllValues:StringEquals", {}).get("kms:EncryptionContextKeys") == [
        "SecretArn",
        "ClientRequestToken",
    ] and condition.get("Null") == {
        "kms:EncryptionContext:SecretArn": "false",
        "kms:EncryptionContext:ClientRequestToken": "false",
    }


def test_the_key_policy_names_no_role_of_this_stack() -> None:
    text = json.dumps(RESOURCES["SealingKey"]["Properties"]["KeyPolicy"])
    assert "Fn::GetAtt" not in text and '"Ref"' not in text
    for statement in _key_statements():
        assert statement["Principal"] == {
            "AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}
        }


def test_the_key_policy_lets_only_the_router_decrypt_with_the_context() -> None:
    decrypters = [s for s in _key_statements() if "kms:Decrypt" in _actions(s)]
    assert len(decrypters) == 1 and _requires_context(decrypters[0])
    assert _principal_arns(decrypters[0]) == {_role_arn("RouterRole")}


def test_the_key_policy_lets_only_the_create_workers_encrypt_with_the_context() -> None:
    encrypters = [s for s in _key_statements() if "kms:Encrypt" in _actions(s)]
    assert len(encrypters) == 1 and _requires_context(encrypters[0])
    roles = {_role_of(RESOURCES[name]) for name in CREATE_WORKERS}
    assert _principal_arns(encrypters[0]) == {_role_arn(str(role)) for role in roles}


def test_the_key_policy_grants_no_one_key_use_or_grants_beyond_those() -> None:
    for statement in _key_statements():
        actions = _actions(statement)
        assert "kms:CreateGrant" not in actions and "kms:*" not in actions
        uses = actions & {"kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*"}
        assert not uses or "aws:PrincipalArn" in json.dumps(statement["Condition"])


def test_the_roles_side_matches_the_key_policy() -> None:
    for name in _functions():
        kms = [s for s in _effective(name) if any(a.startswith("kms:") for a in _actions(s))]
        on_key = [s for s in kms if s["Resource"] == {"Fn::GetAtt": ["SealingKey", "Arn"]}]
        encrypts = [s for s in on_key if "kms:Encrypt" in _actions(s)]
        decrypts = [s for s in on_key if "kms:Decrypt" in _actions(s)]
        assert bool(encrypts) == (name in CREATE_WORKERS), name
        assert bool(decrypts) == (name == "RouterFunction"), name
        assert all(_requires_context(s) for s in encrypts + decrypts), name
        assert not any("kms:CreateGrant" in _actions(s) for s in kms), name
    # the roles the key policy names are the roles those functions run with
    for name in CREATE_WORKERS | {"RouterFunction"}:
        assert _role_of(RESOURCES[name]) is not None, f"{name} needs its fixed-name role"


# --- names derived from NamePrefix stay within AWS's limits ---------------------------------


def _derived_names() -> list[tuple[str, str, int]]:
    limits = {
        "AWS::Serverless::Function": ("FunctionName", 64),
        "AWS::IAM::Role": ("RoleName", 64),
        "AWS::IAM::ManagedPolicy": ("ManagedPolicyName", 128),
        "AWS::Serverless::StateMachine": ("Name", 80),
        "AWS::Logs::LogGroup": ("LogGroupName", 512),
    }
    found = []
    for logical_id, resource in RESOURCES.items():
        if resource["Type"] in limits:
            prop, limit = limits[resource["Type"]]
            assert prop in resource["Properties"], f"{logical_id} has no derived {prop}"
            found.append(
                (logical_id, _sub_with_prefix(resource["Properties"][prop], LONGEST_PREFIX), limit)
            )
    return found


@pytest.mark.parametrize(("logical_id", "name", "limit"), _derived_names())
def test_every_derived_name_fits_with_the_longest_prefix(
    logical_id: str, name: str, limit: int
) -> None:
    assert len(name) <= limit, f"{logical_id}: {name} is {len(name)} characters"


# --- what a deployer relies on ----------------------------------------------------------------


def test_subnets_without_security_groups_are_refused_by_a_rule() -> None:
    rule = TEMPLATE["Rules"]["SubnetsNeedSecurityGroups"]
    assert "SubnetIds" in json.dumps(rule["RuleCondition"])
    assert "SecurityGroupIds" in json.dumps(rule["Assertions"][0]["Assert"])


def test_the_retirement_alarm_counts_failed_timed_out_and_aborted_executions() -> None:
    metrics = RESOURCES["UnfinishedRetirementExecutionsAlarm"]["Properties"]["Metrics"]
    counted = {m["MetricStat"]["Metric"]["MetricName"] for m in metrics if "MetricStat" in m}
    assert counted == {"ExecutionsFailed", "ExecutionsTimedOut", "ExecutionsAborted"}
    (expression,) = [m for m in metrics if m.get("ReturnData")]
    assert all(m["Id"] in expression["Expression"] for m in metrics if "MetricStat" in m)


def test_retirement_delays_fit_in_one_standard_execution() -> None:
    year = 365 * 86400
    parameters = TEMPLATE["Parameters"]
    assert (
        parameters["RetireAfterSeconds"]["MaxValue"] + parameters["DeleteAfterSeconds"]["MaxValue"]
        < year
    )


def test_state_machine_logs_are_vended_log_groups() -> None:
    for name in ("RotationStateMachineLogs", "RetirementStateMachineLogs"):
        group = _sub_with_prefix(RESOURCES[name]["Properties"]["LogGroupName"])
        assert group.startswith("/aws/vendedlogs/states/"), name


def test_every_output_is_exported_for_other_stacks() -> None:
    for name, output in TEMPLATE["Outputs"].items():
        assert output["Export"]["Name"] == {"Fn::Sub": f"${{AWS::StackName}}-{name}"}, name


def test_only_functions_in_the_vpc_may_manage_network_interfaces() -> None:
    """SAM attaches AWSLambdaVPCAccessExecutionRole to a role it makes whenever VpcConfig is
    present, even as an Fn::If that is false; the VPC workers' roles are written out so the
    policy is attached only InVpc."""
    vpc_policy = "AWSLambdaVPCAccessExecutionRole"
    for name, resource in RESOURCES.items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        props = resource["Properties"]
        if "VpcConfig" not in props:
            continue
        assert "Policies" not in props, f"{name}: SAM would attach {vpc_policy} unconditionally"
        role = RESOURCES[props["Role"]["Fn::GetAtt"][0]]["Properties"]
        attached = [p for p in role["ManagedPolicyArns"] if vpc_policy in json.dumps(p)]
        assert attached and all("Fn::If" in p and p["Fn::If"][0] == "InVpc" for p in attached), name
