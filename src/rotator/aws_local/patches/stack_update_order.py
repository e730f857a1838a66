"""A stack update creates and updates resources in dependency order.

AWS: "CloudFormation ... determines the order of resource creation, update and deletion from the
references between resources: a resource that refers to another (``Ref``, ``Fn::GetAtt``,
``Fn::Sub``) or names it in ``DependsOn`` is created or updated after it."
https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-attribute-dependson.html
For SAM's ``AutoPublishAlias`` that order is what makes a deployment publish the new code: the
new ``AWS::Lambda::Version`` (it refers to its function) is created after the function's code
and configuration were updated, then the alias and the state machines (they refer to the
version) move to it.
https://docs.aws.amazon.com/serverless-application-model/latest/developerguide/sam-resource-function.html#sam-function-autopublishalias

moto 5.2's ``UpdateStack`` creates every new resource first and updates the changed ones after,
whatever they refer to: the new version is published from the function's old code (moto then
hands back the existing version: nothing changed yet), so the alias never moves. It also finds
what to update by comparing template text only, so a resource whose properties read an attribute
that the update changed (a state machine version reads ``StateMachineRevisionId``) is left as it
was. The patch runs the additions and modifications, those readers included, in dependency
order.
"""

from __future__ import annotations

import re
from typing import Any

from rotator.aws_local.patches import MotoPatch

_SUB_NAME = re.compile(r"\$\{([A-Za-z0-9]+)[.}]")
#: attributes whose value an in-place update changes; a resource that reads one of a modified
#: resource is updated too (its resolved properties changed even though its JSON did not)
CHANGED_BY_UPDATE = frozenset({"StateMachineRevisionId"})


def references(value: Any) -> set[str]:
    """Logical ids (or parameters) a resource's JSON refers to."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "Ref" and isinstance(item, str):
                found.add(item)
            elif key == "Fn::GetAtt":
                target = item[0] if isinstance(item, list) else str(item).split(".", 1)[0]
                found.add(str(target))
            elif key == "Fn::Sub":
                text = item[0] if isinstance(item, list) else item
                found.update(_SUB_NAME.findall(str(text)))
                if isinstance(item, list) and len(item) > 1:
                    found.update(references(item[1]))
            elif key == "DependsOn":
                found.update([item] if isinstance(item, str) else item)
            else:
                found.update(references(item))
    elif isinstance(value, list):
        for item in value:
            found.update(references(item))
    return found


def _reads_changed_attribute(value: Any, modified: set[str]) -> bool:
    if isinstance(value, dict):
        got = value.get("Fn::GetAtt")
        if (
            isinstance(got, list)
            and len(got) == 2
            and got[0] in modified
            and got[1] in CHANGED_BY_UPDATE
        ):
            return True
        return any(_reads_changed_attribute(item, modified) for item in value.values())
    if isinstance(value, list):
        return any(_reads_changed_attribute(item, modified) for item in value)
    return False


def dependency_order(names: list[str], resources: dict[str, Any]) -> list[str]:
    """``names`` so that each comes after those of ``names`` it refers to (stable otherwise)."""
    pending = list(names)
    wanted = set(names)
    ordered: list[str] = []
    done: set[str] = set()
    while pending:
        for name in pending:
            needs = (references(resources.get(name, {})) & wanted) - {name}
            if needs <= done:
                ordered.append(name)
                done.add(name)
                pending.remove(name)
                break
        else:  # a cycle (CloudFormation refuses one); keep moto's order for the rest
            ordered.extend(pending)
            break
    return ordered


class StackUpdateInDependencyOrder(MotoPatch):
    aws_doc = "https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-attribute-dependson.html"

    def replacements(self) -> list[tuple[type, str, Any]]:
        from moto.cloudformation import parsing

        original = parsing.ResourceMap.update

        def update(
            resource_map: Any, template: dict[str, Any], parameters: dict[str, Any] | None = None
        ) -> None:
            resources = template.get("Resources", {})
            diff = resource_map.build_resource_diff(template, parameters)
            additions, modifications = list(diff["Add"]), list(diff["Modify"])
            # moto's own update, with nothing to add or modify: removals and the new template
            resource_map.build_resource_diff = lambda *_args, **_kw: {
                "Add": [],
                "Modify": [],
                "Remove": list(diff["Remove"]),
            }
            try:
                original(resource_map, template, parameters)
            finally:
                del resource_map.build_resource_diff
            replaced: set[str] = set()  # physical id changed: whoever refers to it is updated
            updated: set[str] = set()
            for name in dependency_order(list(resources), resources):
                if name in additions:
                    _ = resource_map[name]  # moto creates a resource on first access
                    continue
                resource = resources[name]
                if not (
                    name in modifications
                    or references(resource) & replaced
                    or _reads_changed_attribute(resource, updated)
                ):
                    continue
                before = getattr(
                    resource_map._parsed_resources.get(name), "physical_resource_id", None
                )
                changed = parsing.parse_and_update_resource(
                    name,
                    resource_map._resource_json_map[name],
                    resource_map,
                    account_id=resource_map._account_id,
                    region_name=resource_map._region_name,
                )
                resource_map._parsed_resources[name] = changed
                updated.add(name)
                if getattr(changed, "physical_resource_id", None) != before:
                    replaced.add(name)

        return [(parsing.ResourceMap, "update", update)]
