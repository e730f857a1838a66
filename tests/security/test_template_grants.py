"""Attack class 11: what the template grants, and what a retirement trusts.

No function may read or describe every secret in the account: each secret statement is bound
to the secrets this stack's router rotates (``secretsmanager:resource/AllowRotationLambdaArn``)
or to masters tagged for this stack (``SecretRotationMaster``). And a retirement (deactivate,
verify, delete a superseded credential) must check from the secret itself that the version it
names is superseded, holds this identity's credential, and that its grace period has passed:
anyone with states:StartExecution can start one, with any input.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from rotator.checks import eventually
from tests.security.conftest import (
    access_keys,
    current_version,
    iam_secret,
    load_template,
    put_value,
)

#: condition keys that bind a statement to this stack's secrets
_BINDING_KEYS = (
    "secretsmanager:resource/allowrotationlambdaarn",
    "secretsmanager:resourcetag/secretrotationmaster",
    "aws:resourcetag/secretrotationmaster",
)
#: Secrets Manager actions that take no resource (documented as "*")
_NO_RESOURCE_ACTIONS = ("secretsmanager:getrandompassword", "secretsmanager:listsecrets")


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _policy_statements(template: dict[str, Any], policy: Any) -> list[dict[str, Any]]:
    """The statements one entry of a function's ``Policies`` (or a role's policy) grants."""
    resources = template.get("Resources", {})
    if isinstance(policy, dict) and "Ref" in policy:
        target = resources.get(policy["Ref"], {})
        document = target.get("Properties", {}).get("PolicyDocument", {})
        return [s for s in _as_list(document.get("Statement", [])) if isinstance(s, dict)]
    if isinstance(policy, dict) and "Statement" in policy:
        return [s for s in _as_list(policy["Statement"]) if isinstance(s, dict)]
    if isinstance(policy, dict) and "PolicyDocument" in policy:
        return _policy_statements(template, policy["PolicyDocument"])
    if isinstance(policy, dict) and len(policy) == 1:
        name, params = next(iter(policy.items()))
        if "secretsmanager" in name.lower():  # a SAM policy template over secrets
            return [
                {"Sid": name, "Effect": "Allow", "Action": "secretsmanager:*", "Resource": params}
            ]
    return []


def _grants(template: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(resource logical id, statement) for every function and role statement."""
    found = []
    for logical_id, resource in template.get("Resources", {}).items():
        properties = resource.get("Properties", {})
        if resource.get("Type") == "AWS::Serverless::Function":
            policies = _as_list(properties.get("Policies", []))
        elif resource.get("Type") == "AWS::IAM::Role":
            policies = _as_list(properties.get("Policies", [])) + _as_list(
                properties.get("ManagedPolicyArns", [])
            )
        else:
            continue
        for policy in policies:
            for statement in _policy_statements(template, policy):
                found.append((logical_id, statement))
    return found


def _condition_keys(statement: dict[str, Any]) -> set[str]:
    keys: set[str] = set()
    for _operator, pairs in (statement.get("Condition") or {}).items():
        keys.update(k.lower() for k in pairs)
    return keys


def test_no_function_can_read_or_describe_every_secret() -> None:
    """Attacker: controls what one function does (a bug, a poisoned dependency, a crafted
    event) and wants to reach secrets this stack does not rotate.

    Today: the alert safety net may call secretsmanager:DescribeSecret on every secret in the
    account (its tags, rotation settings and version ids).

    Must hold: every Allow statement granting a Secrets Manager action on secrets carries a
    condition binding it to this stack's router (AllowRotationLambdaArn) or to masters tagged
    SecretRotationMaster; only actions that take no resource stay unbound.
    """
    template = load_template()
    unbound = []
    for logical_id, statement in _grants(template):
        if statement.get("Effect") != "Allow":
            continue
        actions = [a.lower() for a in _as_list(statement.get("Action", []))]
        secret_actions = [
            a for a in actions if a.startswith("secretsmanager:") and a not in _NO_RESOURCE_ACTIONS
        ]
        if secret_actions and not _condition_keys(statement) & set(_BINDING_KEYS):
            unbound.append(f"{logical_id}/{statement.get('Sid', '?')}: {secret_actions}")

    assert not unbound, f"statements over every secret: {unbound}"


def _retire_input(rt: Any, arn: str, version: str, action: str | None = None) -> dict[str, Any]:
    body = {
        "Step": "finishSecret",
        "SecretArn": arn,
        "SecretName": "victim",
        "DisplayName": "victim",
        "Token": current_version(rt, arn),
        "Strategy": "multi-credential",
        "Engine": "iam",
        "RetiringVersionId": version,
    }
    if action:
        body["Action"] = action
    return body


def test_a_retirement_cannot_reach_another_users_key(runtime: Any) -> None:
    """Attacker: edit rights on the value of one IAM secret (user A) and states:StartExecution
    on the retirement state machine. Another user B's access key id is known (key ids are not
    secret). It puts a version naming user B and B's key id (with any secret key), then puts
    its real value back, so that version is now a superseded one, and starts a retirement of it.

    Today: the retirement deactivates B's key, "verifies" it no longer works (the made-up
    secret never did) and deletes it: user B's application is locked out.

    Must hold: the retirement fails (RotationStateError or InvalidSecretError) before touching
    any key: B's key stays Active; A's key stays Active.
    """
    arn, mine = iam_secret(runtime)
    _victim_arn, victim = iam_secret(runtime)
    version = put_value(
        runtime,
        arn,
        {
            "engine": "iam",
            "username": victim["username"],
            "access_key_id": victim["access_key_id"],
            "secret_access_key": "made-up-" + "x" * 32,
        },
    )
    put_value(runtime, arn, mine)
    sfn = runtime.client("stepfunctions")
    execution = sfn.start_execution(
        stateMachineArn=runtime.retirement_state_machine_arn,
        input=json.dumps(_retire_input(runtime, arn, version)),
    )["executionArn"]

    assert eventually(
        lambda: sfn.describe_execution(executionArn=execution)["status"] != "RUNNING", timeout=30
    )
    assert access_keys(runtime, victim["username"]) == {victim["access_key_id"]: "Active"}
    assert access_keys(runtime, mine["username"]) == {mine["access_key_id"]: "Active"}
    assert sfn.describe_execution(executionArn=execution)["status"] == "FAILED"


def _retirement_worker(rt: Any) -> str:
    """The function the retirement state machine calls to deactivate an IAM key: named in the
    deactivating task, or set by a Pass state on the ``iam`` branch of a Choice."""
    sfn = rt.client("stepfunctions")
    machine = rt.retirement_state_machine_arn
    states = json.loads(sfn.describe_state_machine(stateMachineArn=machine)["definition"])["States"]
    task = next(
        s
        for s in states.values()
        if ((s.get("Parameters") or {}).get("Payload") or {}).get("Action") == "deactivate"
    )
    if "FunctionName" in task["Parameters"]:
        return str(task["Parameters"]["FunctionName"])
    path = str(task["Parameters"]["FunctionName.$"])  # e.g. $.Worker.Retire
    data: dict[str, Any] = {}
    for state in states.values():
        for choice in state.get("Choices", []):
            if choice.get("StringEquals") == "iam":
                passed = states[choice["Next"]]
                data[passed["ResultPath"].removeprefix("$.")] = passed["Result"]
    value: Any = data
    for part in path.removeprefix("$.").split("."):
        value = value[part]
    return str(value)


@pytest.fixture
def slow_retirement(make_runtime: Any) -> Any:
    """The stack with a grace period of one hour before a superseded key is retired."""
    with make_runtime(RetireAfterSeconds="3600") as rt:
        yield rt


@pytest.mark.parametrize("action", ["deactivate", "delete"])
def test_the_retirement_worker_refuses_a_key_still_in_its_grace_period(
    slow_retirement: Any, action: str
) -> None:
    """Attacker: may invoke the retirement worker (lambda:InvokeFunction on it, or a state
    machine it can start that calls it) right after a rotation, naming AWSPREVIOUS.

    Today: the worker deactivates (or deletes) the superseded key at once: clients still on it
    are cut off an hour before the grace period (RetireAfterSeconds=3600) ends.

    Must hold: the worker fails with RotationStateError, checking from the secret itself when
    the version was superseded; the superseded key stays Active.
    """
    rt = slow_retirement
    arn, old = iam_secret(rt)
    assert rt.rotate(arn).succeeded
    stages = rt.client("secretsmanager").describe_secret(SecretId=arn)["VersionIdsToStages"]
    previous = next(v for v, labels in stages.items() if "AWSPREVIOUS" in labels)
    worker = _retirement_worker(rt)

    answer = rt.client("lambda").invoke(
        FunctionName=worker, Payload=json.dumps(_retire_input(rt, arn, previous, action))
    )

    payload = answer["Payload"].read()
    assert payload, "the local runtime did not run the worker"
    error = json.loads(payload)
    assert access_keys(rt, old["username"]).get(old["access_key_id"]) == "Active"
    assert answer.get("FunctionError"), f"the worker retired the key: {error}"
    assert error.get("errorType") == "RotationStateError", error
