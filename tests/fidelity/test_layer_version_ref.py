"""Ref of an AWS::Lambda::LayerVersion in a stack is the layer version's ARN
(rotator.aws_local.patches.layer_version_ref)."""

from __future__ import annotations

import io
import json
import uuid
import zipfile
from typing import Any

from rotator.aws_local.patches.layer_version_ref import LayerVersionRefIsItsArn


def _layer_ref(rt: Any) -> str:
    name = f"fidelity-{uuid.uuid4().hex[:8]}"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("python/shared.py", "VALUE = 1\n")
    s3 = rt.client("s3")
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="layer.zip", Body=buffer.getvalue())
    template = {
        "Resources": {
            "Layer": {
                "Type": "AWS::Lambda::LayerVersion",
                "Properties": {"Content": {"S3Bucket": name, "S3Key": "layer.zip"}},
            }
        },
        "Outputs": {"Layer": {"Value": {"Ref": "Layer"}}},
    }
    cfn = rt.client("cloudformation")
    cfn.create_stack(StackName=name, TemplateBody=json.dumps(template))
    (output,) = cfn.describe_stacks(StackName=name)["Stacks"][0]["Outputs"]
    return str(output["OutputValue"])


def test_ref_of_a_layer_version_is_its_arn(runtime: Any) -> None:
    ref = _layer_ref(runtime)
    assert ref.startswith("arn:aws:lambda:us-east-1:123456789012:layer:")
    assert ref.rsplit(":", 1)[-1] == "1"


def test_moto_alone_resolves_it_to_its_model_object(runtime: Any) -> None:
    with runtime.cloud.suspended(LayerVersionRefIsItsArn):
        assert not _layer_ref(runtime).startswith("arn:")
