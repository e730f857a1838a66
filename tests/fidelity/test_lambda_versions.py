"""CloudFormation publishes Lambda versions (Ref = version ARN) and creates aliases
(rotator.aws_local.patches.lambda_versions)."""

from __future__ import annotations

import json
import re
from typing import Any


def test_every_function_has_the_alias_live_on_a_published_version(runtime: Any) -> None:
    lam = runtime.client("lambda")
    for fn in runtime.spec.functions.values():
        alias = lam.get_alias(FunctionName=fn.name, Name="live")
        assert alias["FunctionVersion"].isdigit(), fn.name
        assert alias["AliasArn"] == f"{fn.arn}:live"


def test_the_state_machine_is_handed_worker_version_arns(runtime: Any) -> None:
    sfn = runtime.client("stepfunctions")
    machine = runtime.spec.state_machines["RotationStateMachine"].arn
    definition = json.loads(sfn.describe_state_machine(stateMachineArn=machine)["definition"])
    workers = definition["States"]["Single-user workers"]["Result"]
    for role in ("Create", "Set", "Test", "Rollback"):
        assert re.fullmatch(r"arn:aws:lambda:[^:]+:\d+:function:[\w-]+:\d+", workers[role]), role
