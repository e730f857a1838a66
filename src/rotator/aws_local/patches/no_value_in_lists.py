"""``!Ref AWS::NoValue`` as a list item (directly or from ``Fn::If``) removes the item.

AWS: ``AWS::NoValue`` "removes the corresponding resource property when specified as a return
value in the ``Fn::If`` intrinsic function"; where the value is an item of a list, CloudFormation
removes that item, which is how a template adds a list item only under a condition (the
template's ``!If [HasSecretsKmsKeys, <statement>, !Ref AWS::NoValue]`` in a policy's statement
list, ``!If [InVpc, <policy ARN>, !Ref AWS::NoValue]`` in ``ManagedPolicyArns``).
https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/pseudo-parameter-reference.html
https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/intrinsic-function-reference-conditions.html

moto 5.2 resolves ``AWS::NoValue`` to ``None`` and drops it from objects, but keeps it in lists:
the router role's inline policy is stored with a ``null`` statement, and a role's
``ManagedPolicyArns`` holds ``None``. The patch wraps moto's property resolver
(``clean_json``) for lists only: an item that *is* ``AWS::NoValue`` (a ``Ref`` to it, or an
``Fn::If`` whose chosen branch is one) is left out. Other items that resolve to ``None`` (a
``Ref`` to a resource type moto skips) stay as moto leaves them.
"""

from __future__ import annotations

from typing import Any

from rotator.aws_local.patches import MotoPatch

NO_VALUE = {"Ref": "AWS::NoValue"}


def is_no_value(item: Any, resources_map: Any) -> bool:
    """Whether ``item`` resolves to ``AWS::NoValue`` (conditions resolved as moto resolves them)."""
    if item == NO_VALUE:
        return True
    if isinstance(item, dict) and len(item) == 1 and "Fn::If" in item:
        condition, if_true, if_false = item["Fn::If"]
        chosen = if_true if resources_map.lazy_condition_map[condition] else if_false
        return is_no_value(chosen, resources_map)
    return False


class NoValueDropsListItems(MotoPatch):
    aws_doc = "https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/pseudo-parameter-reference.html"

    def replacements(self) -> list[tuple[Any, str, Any]]:
        from moto.cloudformation import parsing

        original = parsing.clean_json

        def clean_json(resource_json: Any, resources_map: Any) -> Any:
            if isinstance(resource_json, list):
                # moto's resolver calls clean_json by its module name: nested lists come here too
                return [
                    parsing.clean_json(item, resources_map)
                    for item in resource_json
                    if not is_no_value(item, resources_map)
                ]
            return original(resource_json, resources_map)

        return [(parsing, "clean_json", clean_json)]
