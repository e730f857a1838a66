"""GetSecretValue without a version serves whatever holds AWSCURRENT
(rotator.aws_local.patches.secret_current_version)."""

from __future__ import annotations

import json
import uuid
from typing import Any

from rotator.aws_local.patches.secret_current_version import CurrentLabelPicksTheValue


def _move_current_to_a_new_version(rt: Any) -> str:
    sm = rt.client("secretsmanager")
    arn = sm.create_secret(Name=f"fidelity/{uuid.uuid4().hex[:8]}", SecretString='{"v": "old"}')[
        "ARN"
    ]
    old = sm.describe_secret(SecretId=arn)["VersionIdsToStages"]
    (old_version,) = old
    new_version = str(uuid.uuid4())
    sm.put_secret_value(
        SecretId=arn,
        ClientRequestToken=new_version,
        SecretString='{"v": "new"}',
        VersionStages=["AWSPENDING"],
    )
    sm.update_secret_version_stage(
        SecretId=arn,
        VersionStage="AWSCURRENT",
        MoveToVersionId=new_version,
        RemoveFromVersionId=old_version,
    )
    return str(arn)


def _served(rt: Any, arn: str) -> str:
    value = rt.client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"]
    return str(json.loads(value)["v"])


def test_moving_awscurrent_changes_what_get_secret_value_serves(runtime: Any) -> None:
    arn = _move_current_to_a_new_version(runtime)
    assert _served(runtime, arn) == "new"


def test_moto_alone_still_serves_the_old_version(runtime: Any) -> None:
    with runtime.cloud.suspended(CurrentLabelPicksTheValue):
        arn = _move_current_to_a_new_version(runtime)
        assert _served(runtime, arn) == "old"
