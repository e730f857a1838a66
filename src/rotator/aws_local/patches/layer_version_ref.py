"""``Ref`` of an ``AWS::Lambda::LayerVersion`` in a stack is the layer version's ARN.

AWS: "When you pass the logical ID of this resource to the intrinsic ``Ref`` function, ``Ref``
returns the ARN of the layer version, such as
``arn:aws:lambda:us-west-2:123456789012:layer:my-layer:1``."
https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-lambda-layerversion.html

moto 5.2's layer version model has no physical resource id, so its CloudFormation resolves
``Ref`` to the model object itself: a function's ``Layers`` then holds that object, which its
create handler happens to ignore and its update handler (a stack update, e.g. ``sam deploy`` of
a new release) fails on (``'LayerVersion' object has no attribute 'replace'``). The patch gives
the model its ARN as physical id.
"""

from __future__ import annotations

from typing import Any
from unittest import mock

from rotator.aws_local.patches import MotoPatch


class LayerVersionRefIsItsArn(MotoPatch):
    aws_doc = "https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-lambda-layerversion.html"

    def replacements(self) -> list[tuple[type, str, Any]]:
        from moto.awslambda.models import LayerVersion

        return [(LayerVersion, "physical_resource_id", property(lambda layer: layer.arn))]

    def start(self) -> None:
        # the attribute does not exist on moto's model: create it while started
        self._patchers = [
            mock.patch.object(owner, name, replacement, create=True)
            for owner, name, replacement in self.replacements()
        ]
        for patcher in self._patchers:
            patcher.start()
