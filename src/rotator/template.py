"""Read ``template.yaml`` — the single source of truth — into what the local runtime builds.

Only the intrinsic functions and resource types the template uses are understood; anything
else raises :class:`TemplateError`, so the local runtime can never silently diverge from what
``sam deploy`` would create.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_TEMPLATE = PROJECT_ROOT / "template.yaml"


class TemplateError(Exception):
    """The template uses something the local runtime does not understand."""


class _NoValue:
    """``!Ref AWS::NoValue``: the property is removed."""


NO_VALUE = _NoValue()


class _CfnLoader(yaml.SafeLoader):
    pass


def _tag_constructor(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> Any:
    name = "Ref" if tag_suffix == "Ref" else f"Fn::{tag_suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if tag_suffix == "GetAtt":
            value = str(value).split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {name: value}


_CfnLoader.add_multi_constructor("!", _tag_constructor)


def load_template(path: Path = DEFAULT_TEMPLATE) -> dict[str, Any]:
    with open(path, encoding="utf-8") as fh:
        data: dict[str, Any] = yaml.load(fh, Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass
    return data


@dataclass
class FunctionSpec:
    logical_id: str
    name: str
    arn: str
    code_dir: Path
    handler: str
    timeout: int
    memory: int
    environment: dict[str, str]
    description: str = ""


@dataclass
class StateMachineSpec:
    logical_id: str
    name: str
    arn: str
    definition: str


@dataclass
class RuleSpec:
    logical_id: str
    name: str
    event_pattern: dict[str, Any]
    target_arns: list[str]


@dataclass
class StackSpec:
    """Everything the local runtime creates, with names and ARNs already resolved."""

    name: str
    region: str
    account: str
    functions: dict[str, FunctionSpec] = field(default_factory=dict)
    state_machines: dict[str, StateMachineSpec] = field(default_factory=dict)
    topics: dict[str, str] = field(default_factory=dict)  # logical id -> ARN
    log_groups: dict[str, str] = field(default_factory=dict)  # logical id -> name
    rules: dict[str, RuleSpec] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)


# Resource types the runtime builds, and the ones that have no local behaviour.
_BUILT = {
    "AWS::Serverless::Function",
    "AWS::Serverless::StateMachine",
    "AWS::SNS::Topic",
    "AWS::KMS::Key",
    "AWS::Logs::LogGroup",
    "AWS::Events::Rule",
}
_INERT = {
    "AWS::Serverless::LayerVersion",  # the local runtime imports the layer's package directly
    "AWS::Lambda::Permission",
    "AWS::SNS::Subscription",  # lambda subscriptions only carry alarms, which moto never fires
    "AWS::CloudWatch::Alarm",
}


class Resolver:
    """Evaluates the intrinsic functions the template uses against known physical IDs."""

    def __init__(
        self,
        template: dict[str, Any],
        parameters: dict[str, Any],
        pseudo: dict[str, str],
        refs: dict[str, Any],
        attributes: dict[tuple[str, str], Any],
    ) -> None:
        self.template = template
        self.parameters = parameters
        self.pseudo = pseudo
        self.refs = refs
        self.attributes = attributes
        self._conditions: dict[str, bool] = {}

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            try:
                expression = self.template.get("Conditions", {})[name]
            except KeyError:
                raise TemplateError(f"unknown condition {name!r}") from None
            self._conditions[name] = bool(self.resolve(expression))
        return self._conditions[name]

    def resolve(self, node: Any) -> Any:
        if isinstance(node, list):
            return [v for v in (self.resolve(item) for item in node) if v is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, arg),) = node.items()
            if key == "Ref":
                return self._ref(arg)
            if key == "Condition" and isinstance(arg, str):
                return self.condition(arg)
            if key.startswith("Fn::"):
                return self._function(key[4:], arg)
        resolved = {k: self.resolve(v) for k, v in node.items()}
        return {k: v for k, v in resolved.items() if v is not NO_VALUE}

    def _ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        if name in self.refs:
            return self.refs[name]
        raise TemplateError(f"!Ref {name}: not a parameter or a resource the runtime builds")

    def _function(self, name: str, arg: Any) -> Any:
        if name == "GetAtt":
            logical, attribute = arg if isinstance(arg, list) else str(arg).split(".", 1)
            try:
                return self.attributes[(logical, attribute)]
            except KeyError:
                raise TemplateError(f"!GetAtt {logical}.{attribute} is not known locally") from None
        if name == "Sub":
            text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
            values = {k: self.resolve(v) for k, v in variables.items()}
            return re.sub(r"\$\{([^}!]+)\}", lambda m: self._sub_var(m.group(1), values), text)
        if name == "If":
            condition, yes, no = arg
            return self.resolve(yes if self.condition(condition) else no)
        if name == "Equals":
            left, right = (self.resolve(v) for v in arg)
            return left == right
        if name == "Not":
            return not self.resolve(arg[0])
        if name == "Join":
            separator, items = arg
            return separator.join(str(v) for v in self.resolve(items))
        raise TemplateError(f"intrinsic function Fn::{name} is not supported by the local runtime")

    def _sub_var(self, name: str, values: dict[str, Any]) -> str:
        if name in values:
            return str(values[name])
        if "." in name:
            return str(self._function("GetAtt", name.split(".", 1)))
        value = self._ref(name)
        return ",".join(value) if isinstance(value, list) else str(value)


def _parameter_values(template: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, spec in template.get("Parameters", {}).items():
        raw = overrides.get(name, spec.get("Default"))
        if raw is None:
            raise TemplateError(f"parameter {name} has no default; pass it as an override")
        if spec.get("Type") == "CommaDelimitedList":
            values[name] = raw if isinstance(raw, list) else [p for p in str(raw).split(",")]
        else:
            values[name] = str(raw)
    unknown = set(overrides) - set(values)
    if unknown:
        raise TemplateError(f"unknown parameter override(s): {', '.join(sorted(unknown))}")
    return values


def build_stack_spec(
    template: dict[str, Any],
    *,
    stack_name: str,
    region: str,
    account: str,
    parameter_overrides: dict[str, Any] | None = None,
    kms_key: tuple[str, str] | None = None,
    root: Path = PROJECT_ROOT,
) -> StackSpec:
    """Resolve names, ARNs, environments and definitions of every resource the runtime builds.

    ``kms_key`` is (key id, ARN) of a key created beforehand: KMS makes up key IDs itself.
    """
    partition = "aws"
    pseudo = {
        "AWS::StackName": stack_name,
        "AWS::Region": region,
        "AWS::AccountId": account,
        "AWS::Partition": partition,
        "AWS::URLSuffix": "amazonaws.com",
    }
    parameters = _parameter_values(template, parameter_overrides or {})
    resources: dict[str, Any] = template.get("Resources", {})
    refs: dict[str, Any] = {}
    attributes: dict[tuple[str, str], Any] = {}
    resolver = Resolver(template, parameters, pseudo, refs, attributes)
    spec = StackSpec(name=stack_name, region=region, account=account)

    # Pass 1: physical names and ARNs (they depend only on names, never on other resources).
    for logical_id, resource in resources.items():
        kind = resource["Type"]
        props = resource.get("Properties", {})
        if kind not in _BUILT | _INERT:
            raise TemplateError(f"{logical_id}: resource type {kind} is not supported locally")
        default_name = f"{stack_name}-{logical_id}"[:64]
        if kind == "AWS::Serverless::Function":
            name = resolver.resolve(props.get("FunctionName", default_name))
            arn = f"arn:{partition}:lambda:{region}:{account}:function:{name}"
            refs[logical_id] = name
            attributes[(logical_id, "Arn")] = arn
        elif kind == "AWS::Serverless::StateMachine":
            arn = f"arn:{partition}:states:{region}:{account}:stateMachine:{default_name}"
            refs[logical_id] = arn
            attributes[(logical_id, "Arn")] = arn
            attributes[(logical_id, "Name")] = default_name
        elif kind == "AWS::SNS::Topic":
            arn = f"arn:{partition}:sns:{region}:{account}:{default_name}"
            refs[logical_id] = arn
            attributes[(logical_id, "TopicArn")] = arn
            attributes[(logical_id, "TopicName")] = default_name
            spec.topics[logical_id] = arn
        elif kind == "AWS::KMS::Key":
            if kms_key is None:
                raise TemplateError(f"{logical_id}: create the KMS key first and pass kms_key")
            refs[logical_id], attributes[(logical_id, "Arn")] = kms_key
        elif kind == "AWS::Logs::LogGroup":
            name = f"/aws/vendedlogs/states/{default_name}"
            refs[logical_id] = name
            attributes[(logical_id, "Arn")] = (
                f"arn:{partition}:logs:{region}:{account}:log-group:{name}:*"
            )
            spec.log_groups[logical_id] = name
        elif kind == "AWS::Serverless::LayerVersion":
            refs[logical_id] = f"arn:{partition}:lambda:{region}:{account}:layer:{default_name}:1"
        elif kind == "AWS::Events::Rule":
            refs[logical_id] = default_name
            attributes[(logical_id, "Arn")] = (
                f"arn:{partition}:events:{region}:{account}:rule/{default_name}"
            )

    # Pass 2: properties.
    globals_fn = template.get("Globals", {}).get("Function", {})
    for logical_id, resource in resources.items():
        if "Condition" in resource and not resolver.condition(resource["Condition"]):
            continue
        kind = resource["Type"]
        props = resource.get("Properties", {})
        if kind == "AWS::Serverless::Function":
            merged = _merge_globals(globals_fn, props)
            resolved = resolver.resolve(merged)
            spec.functions[logical_id] = FunctionSpec(
                logical_id=logical_id,
                name=refs[logical_id],
                arn=attributes[(logical_id, "Arn")],
                code_dir=(root / resolved["CodeUri"]).resolve(),
                handler=resolved["Handler"],
                timeout=int(resolved.get("Timeout", 3)),
                memory=int(resolved.get("MemorySize", 128)),
                environment={
                    k: str(v)
                    for k, v in resolved.get("Environment", {}).get("Variables", {}).items()
                },
                description=resolved.get("Description", ""),
            )
        elif kind == "AWS::Serverless::StateMachine":
            substitutions = resolver.resolve(props.get("DefinitionSubstitutions", {}))
            text = (root / props["DefinitionUri"]).read_text("utf-8")
            definition = _substitute(text, substitutions, logical_id)
            spec.state_machines[logical_id] = StateMachineSpec(
                logical_id=logical_id,
                name=attributes[(logical_id, "Name")],
                arn=refs[logical_id],
                definition=definition,
            )
        elif kind == "AWS::Events::Rule":
            resolved = resolver.resolve(props)
            spec.rules[logical_id] = RuleSpec(
                logical_id=logical_id,
                name=refs[logical_id],
                event_pattern=resolved["EventPattern"],
                target_arns=[target["Arn"] for target in resolved.get("Targets", [])],
            )
    spec.outputs = {
        name: resolver.resolve(output["Value"])
        for name, output in template.get("Outputs", {}).items()
    }
    return spec


def _merge_globals(globals_fn: dict[str, Any], props: dict[str, Any]) -> dict[str, Any]:
    merged = dict(globals_fn)
    for key, value in props.items():
        if key == "Environment":
            variables = dict(globals_fn.get("Environment", {}).get("Variables", {}))
            variables.update(value.get("Variables", {}))
            merged["Environment"] = {"Variables": variables}
        else:
            merged[key] = value
    return merged


def _substitute(text: str, substitutions: dict[str, Any], logical_id: str) -> str:
    def replace(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in substitutions:
            raise TemplateError(f"{logical_id}: definition uses ${{{key}}} with no substitution")
        return str(substitutions[key])

    definition = re.sub(r"\$\{([A-Za-z0-9_]+)\}", replace, text)
    try:
        json.loads(definition)
    except ValueError as exc:
        raise TemplateError(
            f"{logical_id}: definition is not valid JSON after substitution: {exc}"
        ) from None
    return definition
