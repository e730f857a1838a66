"""Issue 9 §4: work in flight survives a stack update (version N -> N+1) on the local runtime.

Version N is this commit's own template and code, copied to a temporary tree; version N+1 is
another copy with a change in the layer (``rotation_core``) and in the multi-credential
workers' handler module. Why not the previous commit or tag: it works from any clean clone
(no history needed), and it always exercises the versioning this commit ships (a ref from before
the versions and aliases has no alias to move; a fixed fixture ref would stop testing the code
as it changes).

The stack is created from N, work is started, the stack is updated to N+1 with CloudFormation's
UpdateStack (as ``sam deploy`` does), then everything finishes. Each version runs the handler
module of the tree it was published from (``FunctionHost.version_dirs``); ``rotation_core`` is
the process's one copy for both (see ``FunctionHost.find``).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from rotator.aws_local.stack import PROJECT_ROOT
from rotator.checks import eventually
from rotator.local import LocalRuntime

RETIRE_AFTER_SECONDS = 20  # long enough for the update to happen while the retirement waits


def _copy(destination: Path) -> Path:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    destination.mkdir()
    shutil.copy(PROJECT_ROOT / "template.yaml", destination / "template.yaml")
    for directory in ("functions", "statemachine"):
        shutil.copytree(PROJECT_ROOT / directory, destination / directory, ignore=ignore)
    return destination


@pytest.fixture(scope="module")
def trees(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(version N, version N+1): N+1 changes the layer and the multi-credential handlers."""
    root = tmp_path_factory.mktemp("upgrade")
    old, new = _copy(root / "n"), _copy(root / "n_plus_1")
    for changed in (
        new / "functions" / "shared" / "rotation_core" / "models.py",
        new / "functions" / "multi_credential" / "app.py",
    ):
        changed.write_text(changed.read_text() + "\n# version N+1\n")
    return old, new


@pytest.fixture
def runtime(trees: tuple[Path, Path]) -> Iterator[LocalRuntime]:
    old, _new = trees
    with LocalRuntime(
        template_path=old / "template.yaml",
        stack_name="upgrade",
        parameter_overrides={"RetireAfterSeconds": str(RETIRE_AFTER_SECONDS)},
    ) as rt:
        yield rt


def _iam_secret(rt: LocalRuntime, user: str) -> tuple[str, dict[str, str]]:
    iam = rt.client("iam")
    iam.create_user(UserName=user, Tags=[{"Key": "SecretRotation", "Value": rt.stack_name}])
    key = iam.create_access_key(UserName=user)["AccessKey"]
    value = {
        "engine": "iam",
        "username": user,
        "access_key_id": key["AccessKeyId"],
        "secret_access_key": key["SecretAccessKey"],
    }
    arn = rt.client("secretsmanager").create_secret(
        Name=f"iam/{user}", SecretString=json.dumps(value)
    )["ARN"]
    return str(arn), value


def _keys(rt: LocalRuntime, user: str) -> set[str]:
    listed = rt.client("iam").list_access_keys(UserName=user)["AccessKeyMetadata"]
    return {k["AccessKeyId"] for k in listed}


def _live(rt: LocalRuntime, logical_id: str) -> str:
    name = rt.spec.functions[logical_id].name  # type: ignore[union-attr]
    return str(rt.client("lambda").get_alias(FunctionName=name, Name="live")["FunctionVersion"])


def _machine_live(rt: LocalRuntime, arn: str) -> str:
    alias = rt.client("stepfunctions").describe_state_machine_alias(
        stateMachineAliasArn=f"{arn}:live"
    )
    return str(alias["routingConfiguration"][0]["stateMachineVersionArn"])


def _versions_run(rt: LocalRuntime, logical_id: str) -> set[str]:
    name = rt.spec.functions[logical_id].name  # type: ignore[union-attr]
    return {i.version for i in rt.host.invocations if i.function == name}  # type: ignore[union-attr]


def test_a_retirement_waiting_across_an_update_finishes_on_the_versions_it_started_with(
    runtime: LocalRuntime, trees: tuple[Path, Path]
) -> None:
    old, new = trees
    rt = runtime
    sfn = rt.client("stepfunctions")
    retire = rt.spec.functions["IamKeysRetireFunction"]  # type: ignore[union-attr]
    # GIVEN a multi-credential rotation under version N, its retirement waiting
    arn, first = _iam_secret(rt, "svc-upgrade")
    assert rt.rotate(arn).succeeded
    (retirement,) = sfn.list_executions(stateMachineArn=rt.retirement_state_machine_arn)[
        "executions"
    ]
    assert retirement["status"] == "RUNNING"
    retire_n = _live(rt, "IamKeysRetireFunction")
    machine_n = _machine_live(rt, rt.retirement_state_machine_arn)
    create_n = _live(rt, "IamKeysCreateSecretFunction")

    # WHEN the stack is updated to version N+1 while it waits
    rt.update_stack(new / "template.yaml")

    # THEN the aliases point at new versions (functions and state machine), published from N+1
    retire_n1 = _live(rt, "IamKeysRetireFunction")
    assert retire_n1 != retire_n
    assert _machine_live(rt, rt.retirement_state_machine_arn) != machine_n
    assert rt.host.version_dirs[f"{retire.arn}:{retire_n}"].is_relative_to(old)  # type: ignore[union-attr]
    assert rt.host.version_dirs[f"{retire.arn}:{retire_n1}"].is_relative_to(new)  # type: ignore[union-attr]
    # AND the waiting retirement finishes, on the worker version it started with
    assert eventually(
        lambda: (
            sfn.describe_execution(executionArn=retirement["executionArn"])["status"] == "SUCCEEDED"
        ),
        timeout=RETIRE_AFTER_SECONDS + 60,
    )
    assert _versions_run(rt, "IamKeysRetireFunction") == {retire_n}
    # AND no credential is lost: the superseded key is gone, the current one is the only key
    current = json.loads(rt.client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"])
    assert _keys(rt, first["username"]) == {current["access_key_id"]}
    # AND nothing failed, so nothing was announced
    assert rt.alerts() == []

    # WHEN the next rotation starts after the update THEN it runs version N+1
    rt.host.invocations.clear()  # type: ignore[union-attr]
    assert rt.rotate(arn).succeeded
    create_n1 = _live(rt, "IamKeysCreateSecretFunction")
    assert create_n1 != create_n
    assert _versions_run(rt, "IamKeysCreateSecretFunction") == {create_n1}
    assert _versions_run(rt, "RouterFunction") == {_live(rt, "RouterFunction")}
