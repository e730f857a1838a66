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
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


def _version_of(rt: LocalRuntime, logical_id: str, tree: Path) -> str:
    """The version of a function that was published from ``tree``."""
    arn = rt.spec.functions[logical_id].arn  # type: ignore[union-attr]
    (version,) = [
        qualified.rsplit(":", 1)[-1]
        for qualified, code_dir in rt.host.version_dirs.items()  # type: ignore[union-attr]
        if qualified.startswith(f"{arn}:") and code_dir.is_relative_to(tree)
    ]
    return version


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


# --- database strategies (real PostgreSQL) ------------------------------------------------------


def _secret(rt: LocalRuntime, arn: str, stage: str = "AWSCURRENT") -> dict[str, Any]:
    value: dict[str, Any] = json.loads(
        rt.client("secretsmanager").get_secret_value(SecretId=arn, VersionStage=stage)[
            "SecretString"
        ]
    )
    return value


@pytest.mark.integration
@pytest.mark.parametrize("database_returns", [True, False], ids=["returns", "stays-away"])
def test_a_single_user_rotation_held_in_its_grace_budget_across_an_update_ends_as_without_it(
    trees: tuple[Path, Path], postgres_server: Any, database_returns: bool
) -> None:
    from rotation_core.exceptions import DatabaseUnavailableError
    from rotator.aws_local.patches.rotate_secret import rotation_of
    from tests.integration.conftest import create_app_user

    old, new = trees
    with LocalRuntime(
        template_path=old / "template.yaml",
        stack_name="upgrade",
        # long enough a budget to deploy inside it
        parameter_overrides={"GraceBudgetSeconds": "60", "RouterTimeoutSeconds": "600"},
    ) as rt:
        arn, username, password = create_app_user(rt, postgres_server)
        held = {"on": True, "attempts": 0}

        def database_away(spec: Any, _event: Any) -> None:
            # testSecret cannot reach the database until the update is done
            if spec.logical_id == "SingleUserTestSecretFunction" and held["on"]:
                held["attempts"] += 1
                # an attempt that waits for its connection (the budget counts attempts at their
                # full timeout, so a quick refusal would spend it in a few seconds)
                time.sleep(1.5)
                raise DatabaseUnavailableError("injected: the database does not answer")

        rt.host.before_invoke.append(database_away)  # type: ignore[union-attr]
        rt.rotate_in_background = True  # RotateSecret returns at once, as on AWS
        test_n = _live(rt, "SingleUserTestSecretFunction")
        # GIVEN a single-user rotation under version N, inside its grace budget (the password
        # changed, the test is being retried)
        token = rt.client("secretsmanager").rotate_secret(
            SecretId=arn, RotationLambdaARN=rt.router_function_arn
        )["VersionId"]
        assert eventually(lambda: held["attempts"] >= 1, timeout=60)
        # WHEN the stack is updated to N+1, then the database answers again
        rt.update_stack(new / "template.yaml")
        assert _live(rt, "SingleUserTestSecretFunction") != test_n
        held["on"] = not database_returns
        rotation = rotation_of(rt, arn, token)
        assert rotation is not None
        outcome = rotation.wait(180)
        # THEN its test ran on the worker version its execution started with, every attempt
        assert _versions_run(rt, "SingleUserTestSecretFunction") == {test_n}
        current = _secret(rt, arn)
        # AND no credential is lost: AWSCURRENT logs in
        assert postgres_server.can_login(username, current["password"])
        if database_returns:
            # AND the rotation completes as it would have without the update
            assert outcome.succeeded
            assert current["password"] != password
            assert rt.alerts() == []
        else:
            # AND it fails as it would have: the budget runs out, the password is set back to
            # AWSCURRENT's by the rollback of version N, one alert
            assert outcome.failed_step == "testSecret"
            assert current["password"] == password
            rollback_n = _version_of(rt, "SingleUserRollbackFunction", old)
            assert _versions_run(rt, "SingleUserRollbackFunction") == {rollback_n}
            alerts = rt.alerts(wait_seconds=2)
            assert len(alerts) == 1
            assert alerts[0].message["step"] == "testSecret"


@pytest.mark.integration
def test_an_alternating_users_rotation_between_steps_across_an_update_completes(
    trees: tuple[Path, Path], postgres_server: Any
) -> None:
    from tests.integration.conftest import create_app_user, create_master

    old, new = trees
    with LocalRuntime(template_path=old / "template.yaml", stack_name="upgrade") as rt:
        master = create_master(rt, postgres_server)
        arn, username, password = create_app_user(rt, postgres_server, masterarn=master)
        router_n = _live(rt, "RouterFunction")
        # GIVEN an alternating-users rotation whose createSecret and setSecret ran under N
        token = rt.stage_rotation(arn)
        for step in ("createSecret", "setSecret"):
            event = {"Step": step, "SecretId": arn, "ClientRequestToken": token}
            assert not rt.invoke_router(event).failed, step
        # WHEN the stack is updated to N+1 before Secrets Manager calls testSecret
        rt.update_stack(new / "template.yaml")
        router_n1 = _live(rt, "RouterFunction")
        assert router_n1 != router_n
        # THEN testSecret and finishSecret (version N+1) finish the rotation N started
        for step in ("testSecret", "finishSecret"):
            event = {"Step": step, "SecretId": arn, "ClientRequestToken": token}
            assert not rt.invoke_router(event).failed, step
        router = rt.spec.functions["RouterFunction"].name  # type: ignore[union-attr]
        assert [
            i.version
            for i in rt.host.invocations  # type: ignore[union-attr]
            if i.function == router
        ] == [router_n, router_n, router_n1, router_n1]
        # AND no credential is lost: both users log in, AWSCURRENT is the clone
        current = _secret(rt, arn)
        assert current["username"] == f"{username}_clone"
        assert postgres_server.can_login(current["username"], current["password"])
        assert postgres_server.can_login(username, password)
        assert rt.alerts() == []
