"""A stack update creates and updates resources in dependency order, and updates what reads a
changed attribute or refers to a replaced resource
(rotator.aws_local.patches.stack_update_order)."""

from __future__ import annotations

import io
import json
import uuid
import zipfile
from typing import Any

from rotator.aws_local.patches.stack_update_order import StackUpdateInDependencyOrder


def _code(runtime: Any, bucket: str, release: str) -> dict[str, str]:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("index.py", f"def handler(event, context):\n    return {release!r}\n")
    runtime.client("s3").put_object(Bucket=bucket, Key=release, Body=buffer.getvalue())
    return {"S3Bucket": bucket, "S3Key": release}


def _template(runtime: Any, name: str, release: str) -> str:
    """A function, the version SAM would publish for ``release`` (its logical id changes with
    the code, as SAM names it) and the alias "live" on it."""
    version = f"FunctionVersion{release}"
    return json.dumps(
        {
            "Resources": {
                "Function": {
                    "Type": "AWS::Lambda::Function",
                    "Properties": {
                        "FunctionName": name,
                        "Runtime": "python3.11",
                        "Handler": "index.handler",
                        "Role": runtime.spec.functions["RouterFunction"].role_arn,
                        "Code": _code(runtime, name, release),
                    },
                },
                version: {
                    "Type": "AWS::Lambda::Version",
                    "DeletionPolicy": "Retain",
                    "Properties": {"FunctionName": {"Ref": "Function"}},
                },
                "Alias": {
                    "Type": "AWS::Lambda::Alias",
                    "Properties": {
                        "Name": "live",
                        "FunctionName": {"Ref": "Function"},
                        "FunctionVersion": {"Fn::GetAtt": [version, "Version"]},
                    },
                },
            }
        }
    )


def _release(runtime: Any) -> str:
    """Deploy release A, update to release B; the version "live" points to after the update."""
    cfn, name = runtime.client("cloudformation"), f"fidelity-{uuid.uuid4().hex[:8]}"
    runtime.client("s3").create_bucket(Bucket=name)
    cfn.create_stack(StackName=name, TemplateBody=_template(runtime, name, "A"))
    try:
        cfn.update_stack(StackName=name, TemplateBody=_template(runtime, name, "B"))
        alias = runtime.client("lambda").get_alias(FunctionName=name, Name="live")
        return str(alias["FunctionVersion"])
    finally:
        cfn.delete_stack(StackName=name)


def test_an_update_publishes_the_new_code_and_moves_the_alias_to_it(runtime: Any) -> None:
    assert _release(runtime) == "2"


def test_moto_alone_publishes_before_it_updates_the_code(runtime: Any) -> None:
    with runtime.cloud.suspended(StackUpdateInDependencyOrder):
        assert _release(runtime) == "1"
