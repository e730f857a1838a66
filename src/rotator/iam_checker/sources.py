"""Where the policies come from: moto (as CloudFormation created them) or the template itself.

Both sources answer the same questions (:class:`PolicyStore`): which role a function or state
machine runs as, that role's identity policies (inline and managed), a KMS key's key policy, a
Lambda function's resource policy, and every policy in the stack (for the converse proof).

- :class:`MotoPolicies` reads moto's IAM, KMS and Lambda backends at the moment of each call, so
  it sees exactly what CloudFormation on moto created (and any later change).
- :class:`TemplatePolicies` reads ``template.yaml``: translated with aws-sam-translator as
  ``sam deploy`` does, then with intrinsic functions resolved for a stack name. Physical names
  CloudFormation would generate are synthesized, or taken from ``arns`` (logical id -> ARN) so
  they match what a local runtime created.

AWS managed policies (e.g. ``AWSLambdaBasicExecutionRole``) come from moto's snapshot of them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import yaml

from rotator.iam_checker.policy import Policy, PolicyError, PolicyKind, parse_policy

PROJECT_ROOT = Path(__file__).resolve().parents[3]
DEFAULT_TEMPLATE = PROJECT_ROOT / "template.yaml"


class TemplateError(Exception):
    """The template uses something this reader does not resolve (fails closed)."""


class PolicyStore(Protocol):
    """What the checker needs to know about the stack's policies."""

    def role_of_function(self, function_name: str) -> str | None: ...

    def role_of_state_machine(self, state_machine_arn: str, role_arn: str) -> str | None: ...

    def identity_policies(self, role_arn: str) -> list[Policy]: ...

    def role_tags(self, role_arn: str) -> dict[str, str]: ...

    def key_policy(self, key_arn: str) -> Policy | None: ...

    def function_policy(self, function_arn: str) -> Policy | None: ...

    def all_policies(self, scope: Scope | None = None) -> list[Policy]: ...


@dataclass(frozen=True)
class Scope:
    """One stack's part of a shared moto: its functions, state machines and keys."""

    functions: frozenset[str] = frozenset()  # function names
    state_machines: frozenset[str] = frozenset()  # state machine ARNs
    keys: frozenset[str] = frozenset()  # key ARNs

    def covers_caller(self, name: str, kind: str) -> bool:
        if kind == "function":
            return name in self.functions
        if kind == "state machine":
            return any(arn.rsplit(":", 1)[-1] == name for arn in self.state_machines)
        return False

    def covers_function_arn(self, arn: str) -> bool:
        parts = arn.split(":")
        return len(parts) > 6 and parts[5] == "function" and parts[6] in self.functions


@lru_cache(maxsize=1)
def _aws_managed_policies() -> dict[str, Any]:
    from moto.iam.aws_managed_policies import aws_managed_policies_data

    data: dict[str, Any] = json.loads(aws_managed_policies_data)
    return data


def aws_managed_policy(arn: str) -> Policy | None:
    """An AWS managed policy's current document (moto's snapshot), or None if unknown."""
    if ":iam::aws:policy/" not in arn:
        return None
    data = _aws_managed_policies().get(arn.rsplit("/", 1)[-1])
    if data is None:
        return None
    return _parsed(json.dumps(data["Document"]), f"managed {arn}", PolicyKind.IDENTITY)


def _parsed_document(document: Any, label: str, kind: PolicyKind) -> Policy:
    """``parse_policy``, parsing each (document, label) once: moto holds documents as JSON text
    or (created by CloudFormation) as parsed JSON; both are read at every checked call."""
    text = document if isinstance(document, str) else json.dumps(document, sort_keys=True)
    return _parsed(text, label, kind)


@lru_cache(maxsize=2048)
def _parsed(text: str, label: str, kind: PolicyKind) -> Policy:
    return parse_policy(text, label, kind)


# --- moto ------------------------------------------------------------------------------------


class MotoPolicies:
    """Policies as they are in moto right now (what CloudFormation on moto created)."""

    def __init__(self, account: str, region: str, partition: str = "aws") -> None:
        self.account = account
        self.region = region
        self.partition = partition

    def _iam(self) -> Any:
        from moto.iam.models import iam_backends

        return iam_backends[self.account][self.partition]

    def _lambda(self) -> Any:
        from moto.awslambda.models import lambda_backends

        return lambda_backends[self.account][self.region]

    def _state_machines(self) -> list[Any]:
        """Every state machine of both of moto's Step Functions backends: the one that runs
        executions (``execute_state_machine``, where the local runtime's stacks create theirs)
        and the plain one; which one the API serves depends on moto's configuration *now*."""
        from moto.stepfunctions.models import stepfunctions_backends
        from moto.stepfunctions.parser.models import stepfunctions_parser_backends

        found: dict[str, Any] = {}
        for backends in (stepfunctions_parser_backends, stepfunctions_backends):
            for machine in backends[self.account][self.region].state_machines:
                found.setdefault(machine.arn, machine)
        return list(found.values())

    def role_of_function(self, function_name: str) -> str | None:
        try:
            return str(self._lambda().get_function(function_name).role)
        except Exception:
            return None

    def role_of_state_machine(self, state_machine_arn: str, role_arn: str) -> str | None:
        return role_arn or None

    def identity_policies(self, role_arn: str) -> list[Policy]:
        try:
            role = self._iam().get_role_by_arn(role_arn)
        except Exception:
            return []
        policies = [
            _parsed_document(document, f"role {role.name}: {name}", PolicyKind.IDENTITY)
            for name, document in sorted(role.policies.items())
        ]
        for arn, managed in sorted(role.managed_policies.items()):
            version = next((v for v in managed.versions if v.is_default), None)
            if version is not None and version.document:
                policies.append(
                    _parsed_document(version.document, f"managed {arn}", PolicyKind.IDENTITY)
                )
            elif (known := aws_managed_policy(arn)) is not None:
                policies.append(known)
            else:
                raise PolicyError(f"managed policy {arn} has no document")
        return policies

    def role_tags(self, role_arn: str) -> dict[str, str]:
        try:
            name = self._iam().get_role_by_arn(role_arn).name
            tags, _ = self._iam().list_role_tags(name, None, 1000)
        except Exception:
            return {}
        return {t["Key"]: t["Value"] for t in tags}

    def key_policy(self, key_arn: str) -> Policy | None:
        from moto.kms.models import kms_backends

        try:
            key = kms_backends[self.account][self.region].describe_key(key_arn)
        except Exception:
            return None
        return _parsed_document(key.policy, f"key {key.id}: key policy", PolicyKind.RESOURCE)

    def function_policy(self, function_arn: str) -> Policy | None:
        try:
            wire = json.loads(self._lambda().get_policy(function_arn))
        except Exception:
            return None
        name = function_arn.split(":", 6)[-1]
        return _parsed_document(
            wire["Policy"], f"function {name}: resource policy", PolicyKind.RESOURCE
        )

    def all_policies(self, scope: Scope | None = None) -> list[Policy]:
        """Every policy of the stack's roles, keys and functions (all of moto's without scope)."""
        from moto.kms.models import kms_backends

        functions = [
            fn
            for fn in self._lambda().list_functions()
            if scope is None or fn.function_name in scope.functions
        ]
        machines = [
            m for m in self._state_machines() if scope is None or m.arn in scope.state_machines
        ]
        keys = [
            key
            for key in kms_backends[self.account][self.region].list_keys()
            if scope is None or key.arn in scope.keys
        ]
        roles = {str(fn.role) for fn in functions} | {str(m.roleArn) for m in machines}
        policies: list[Policy] = []
        for role in sorted(roles):
            policies.extend(self.identity_policies(role))
        for key in keys:
            if (policy := self.key_policy(key.arn)) is not None:
                policies.append(policy)
        for fn in functions:
            # the function's own policy, then each alias's (a permission on an alias is its own)
            arns = [
                fn.function_arn,
                *(a.arn for a in self._lambda().list_aliases(fn.function_name)),
            ]
            for arn in arns:
                if (policy := self.function_policy(arn)) is not None:
                    policies.append(policy)
        return _unique(policies)


def _unique(policies: Iterable[Policy]) -> list[Policy]:
    seen: dict[str, Policy] = {}
    for policy in policies:
        seen.setdefault(policy.label, policy)
    return list(seen.values())


# --- the template ----------------------------------------------------------------------------


class _CfnLoader(yaml.SafeLoader):
    pass


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = str(value).split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {name: value}


_CfnLoader.add_multi_constructor("!", _tag)


def read_template(path: Path) -> dict[str, Any]:
    with open(path, encoding="utf-8") as fh:
        data: dict[str, Any] = yaml.load(fh, Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass
    return data


def sam_translate(template: dict[str, Any], region: str, parameters: Mapping[str, Any]) -> Any:
    """Translate ``AWS::Serverless`` resources into CloudFormation, as ``sam deploy`` does.

    Code locations (``CodeUri``, ``ContentUri``, ``DefinitionUri``) are replaced with
    placeholders: they do not change a single IAM statement, and the translator insists on S3.
    """
    import boto3
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    template = json.loads(json.dumps(template))
    placeholders = {
        "AWS::Serverless::Function": ("CodeUri", "s3://iam-checker/code.zip"),
        "AWS::Serverless::LayerVersion": ("ContentUri", "s3://iam-checker/layer.zip"),
        "AWS::Serverless::StateMachine": ("DefinitionUri", {"Bucket": "iam-checker", "Key": "d"}),
    }
    for resource in template.get("Resources", {}).values():
        prop, value = placeholders.get(resource.get("Type"), (None, None))
        props = resource.get("Properties", {})
        if prop and isinstance(props.get(prop), str) and not props[prop].startswith("s3://"):
            props[prop] = value
    translator = Translator(None, Parser(), boto_session=boto3.Session(region_name=region))
    return translator.translate(template, dict(parameters))


def _suffix(logical_id: str) -> str:
    digest = hashlib.sha256(logical_id.encode()).hexdigest().upper()
    return digest[:12]


class _Resolver:
    """Resolves the intrinsic functions a translated template uses in its IAM-relevant parts."""

    def __init__(
        self,
        template: Mapping[str, Any],
        stack_name: str,
        region: str,
        account: str,
        parameters: Mapping[str, Any],
        arns: Mapping[str, str],
    ) -> None:
        self.resources: Mapping[str, Any] = template.get("Resources", {})
        self.conditions: Mapping[str, Any] = template.get("Conditions", {})
        self.stack_name = stack_name
        self.region = region
        self.account = account
        self.partition = "aws"
        self.arns = dict(arns)
        self.pseudo = {
            "AWS::AccountId": account,
            "AWS::Region": region,
            "AWS::Partition": self.partition,
            "AWS::StackName": stack_name,
            "AWS::StackId": f"arn:aws:cloudformation:{region}:{account}:stack/{stack_name}/id",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NoValue": None,
        }
        self.parameters: dict[str, Any] = {}
        for name, spec in template.get("Parameters", {}).items():
            raw = parameters.get(name, spec.get("Default"))
            if raw is None:
                raise TemplateError(f"parameter {name} has no default; pass a value")
            if spec.get("Type") == "CommaDelimitedList":
                raw = raw if isinstance(raw, list) else str(raw).split(",")
            self.parameters[name] = raw

    # physical ids ------------------------------------------------------------------------------

    def _name(self, logical_id: str, prop: str | None, limit: int = 64, stack: bool = True) -> str:
        props = self.resources[logical_id].get("Properties", {})
        if prop and props.get(prop) is not None:
            return str(self.resolve(props[prop]))
        base = f"{self.stack_name}-{logical_id}" if stack else logical_id
        return f"{base[: limit - 13]}-{_suffix(logical_id)}"

    def arn_of(self, logical_id: str) -> str:
        if logical_id in self.arns:
            return self.arns[logical_id]
        kind = self.resources[logical_id]["Type"]
        p, r, a = self.partition, self.region, self.account
        if kind == "AWS::Lambda::Function":
            return f"arn:{p}:lambda:{r}:{a}:function:{self._name(logical_id, 'FunctionName')}"
        if kind == "AWS::IAM::Role":
            path = self.resources[logical_id].get("Properties", {}).get("Path", "/")
            return f"arn:{p}:iam::{a}:role{path}{self._name(logical_id, 'RoleName')}"
        if kind == "AWS::IAM::ManagedPolicy":
            name = self._name(logical_id, "ManagedPolicyName")
            return f"arn:{p}:iam::{a}:policy/{name}"
        if kind == "AWS::StepFunctions::StateMachine":
            name = self._name(logical_id, "StateMachineName", 80, stack=False)
            return f"arn:{p}:states:{r}:{a}:stateMachine:{name}"
        if kind == "AWS::SNS::Topic":
            return f"arn:{p}:sns:{r}:{a}:{self._name(logical_id, 'TopicName', 256)}"
        if kind == "AWS::KMS::Key":
            digest = hashlib.sha256(logical_id.encode()).hexdigest()
            key_id = f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"
            return f"arn:{p}:kms:{r}:{a}:key/{key_id}"
        if kind == "AWS::Events::Rule":
            return f"arn:{p}:events:{r}:{a}:rule/{self._name(logical_id, 'Name')}"
        if kind == "AWS::Logs::LogGroup":
            name = self._name(logical_id, "LogGroupName", 512)
            return f"arn:{p}:logs:{r}:{a}:log-group:{name}:*"
        if kind == "AWS::Lambda::Version":
            function = self.resolve(self.resources[logical_id]["Properties"]["FunctionName"])
            return f"{self._function_arn(function)}:1"
        if kind == "AWS::Lambda::Alias":
            props = self.resources[logical_id]["Properties"]
            function = self.resolve(props["FunctionName"])
            return f"{self._function_arn(function)}:{self.resolve(props['Name'])}"
        raise TemplateError(f"{logical_id}: no ARN for resource type {kind}")

    def _function_arn(self, name_or_arn: str) -> str:
        if name_or_arn.startswith("arn:"):
            return ":".join(name_or_arn.split(":")[:7])
        return f"arn:{self.partition}:lambda:{self.region}:{self.account}:function:{name_or_arn}"

    def ref(self, logical_id: str) -> Any:
        kind = self.resources[logical_id]["Type"]
        if kind in (
            "AWS::StepFunctions::StateMachine",
            "AWS::SNS::Topic",
            "AWS::IAM::ManagedPolicy",
            "AWS::Lambda::Version",
            "AWS::Lambda::Alias",
        ):
            return self.arn_of(logical_id)
        if kind == "AWS::KMS::Key":
            return self.arn_of(logical_id).rsplit("/", 1)[-1]
        if kind in ("AWS::Lambda::Function", "AWS::IAM::Role", "AWS::Events::Rule"):
            return self.arn_of(logical_id).rsplit("/", 1)[-1].rsplit(":", 1)[-1]
        if kind == "AWS::Logs::LogGroup":
            return self.arn_of(logical_id).split(":log-group:", 1)[1][: -len(":*")]
        return f"{self.stack_name}-{logical_id}-{_suffix(logical_id)}"

    def get_att(self, logical_id: str, attribute: str) -> Any:
        if logical_id not in self.resources:
            raise TemplateError(f"Fn::GetAtt {logical_id}.{attribute}: no such resource")
        if attribute == "Arn":
            return self.arn_of(logical_id)
        if attribute in ("Name", "TopicName", "StateMachineName"):
            return self.arn_of(logical_id).rsplit(":", 1)[-1]
        raise TemplateError(f"Fn::GetAtt {logical_id}.{attribute} is not resolved")

    # intrinsic functions ----------------------------------------------------------------------

    def condition(self, name: str) -> bool:
        if name not in self.conditions:
            raise TemplateError(f"unknown condition {name!r}")
        return bool(self.resolve(self.conditions[name]))

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [v for v in (self.resolve(item) for item in value) if v is not None]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((name, arg),) = value.items()
            if name == "Ref":
                return self._ref(str(arg))
            if name == "Condition":
                return self.condition(str(arg))
            if name.startswith("Fn::"):
                return self._function(name[4:], arg)
        out = {k: self.resolve(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v is not None}

    def _ref(self, name: str) -> Any:
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        if name in self.resources:
            return self.ref(name)
        raise TemplateError(f"Ref {name}: not a parameter, pseudo parameter or resource")

    def _function(self, name: str, arg: Any) -> Any:
        if name == "GetAtt":
            parts = arg if isinstance(arg, list) else str(arg).split(".", 1)
            return self.get_att(str(self.resolve(parts[0])), str(self.resolve(parts[1])))
        if name == "Sub":
            text, values = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
            resolved = {k: self.resolve(v) for k, v in values.items()}
            return self._sub(str(text), resolved)
        if name == "Join":
            separator, items = arg
            return str(separator).join(str(i) for i in self.resolve(items))
        if name == "Select":
            index, items = arg
            return self.resolve(items)[int(self.resolve(index))]
        if name == "Split":
            separator, text = arg
            return str(self.resolve(text)).split(str(separator))
        if name == "If":
            condition, yes, no = arg
            return self.resolve(yes if self.condition(str(condition)) else no)
        if name == "Equals":
            left, right = (self.resolve(a) for a in arg)
            return left == right
        if name == "Not":
            return not self.resolve(arg[0])
        if name == "And":
            return all(self.resolve(a) for a in arg)
        if name == "Or":
            return any(self.resolve(a) for a in arg)
        raise TemplateError(f"intrinsic function Fn::{name} is not resolved by the IAM checker")

    def _sub(self, text: str, values: Mapping[str, Any]) -> str:
        out, rest = [], text
        while "${" in rest:
            before, _, after = rest.partition("${")
            name, _, rest = after.partition("}")
            out.append(before)
            if name.startswith("!"):
                out.append("${" + name[1:] + "}")
            elif name in values:
                out.append(str(values[name]))
            elif "." in name:
                logical_id, attribute = name.split(".", 1)
                out.append(str(self.get_att(logical_id, attribute)))
            else:
                out.append(str(self._ref(name)))
        out.append(rest)
        return "".join(out)


def _permission_statement(
    props: Mapping[str, Any], logical_id: str, function_arn: str
) -> dict[str, Any]:
    """The statement Lambda's AddPermission writes for an ``AWS::Lambda::Permission``.

    https://docs.aws.amazon.com/lambda/latest/dg/access-control-resource-based.html
    """
    unsupported = {"EventSourceToken", "FunctionUrlAuthType", "InvokedViaFunctionUrl"} & set(props)
    if unsupported:
        raise TemplateError(f"{logical_id}: {sorted(unsupported)} not modelled by the IAM checker")
    principal = str(props["Principal"])
    if principal.endswith(".amazonaws.com"):
        principal_block: dict[str, Any] = {"Service": principal}
    elif principal.isdigit():
        principal_block = {"AWS": f"arn:aws:iam::{principal}:root"}
    else:
        principal_block = {"AWS": principal}
    condition: dict[str, Any] = {}
    if props.get("SourceAccount"):
        condition.setdefault("StringEquals", {})["AWS:SourceAccount"] = props["SourceAccount"]
    if props.get("PrincipalOrgID"):
        condition.setdefault("StringEquals", {})["aws:PrincipalOrgID"] = props["PrincipalOrgID"]
    if props.get("SourceArn"):
        condition["ArnLike"] = {"AWS:SourceArn": props["SourceArn"]}
    statement: dict[str, Any] = {
        "Sid": logical_id,
        "Effect": "Allow",
        "Principal": principal_block,
        "Action": props["Action"],
        "Resource": function_arn,
    }
    if condition:
        statement["Condition"] = condition
    return statement


class TemplatePolicies:
    """Policies as ``template.yaml`` declares them, for one stack name."""

    def __init__(self, resolver: _Resolver, resources: Mapping[str, Any]) -> None:
        self._r = resolver
        self._roles: dict[str, list[Policy]] = {}  # role ARN -> identity policies
        self._role_tags: dict[str, dict[str, str]] = {}
        self._function_roles: dict[str, str] = {}  # function name -> role ARN
        self._machine_roles: dict[str, str] = {}  # state machine ARN -> role ARN
        self._keys: dict[str, Policy] = {}
        self._functions: dict[str, Policy] = {}  # function ARN (as granted) -> resource policy
        self.logical_ids: dict[str, str] = {}  # ARN -> logical id (for readable reports)
        self._load(resources)

    @classmethod
    def load(
        cls,
        path: Path = DEFAULT_TEMPLATE,
        *,
        stack_name: str,
        region: str = "us-east-1",
        account: str = "123456789012",
        parameters: Mapping[str, Any] | None = None,
        arns: Mapping[str, str] | None = None,
    ) -> TemplatePolicies:
        """Translate (when it is a SAM template) and resolve ``path`` for ``stack_name``."""
        template = read_template(path)
        if "AWS::Serverless-2016-10-31" in str(template.get("Transform", "")):
            template = sam_translate(template, region, parameters or {})
        resolver = _Resolver(template, stack_name, region, account, parameters or {}, arns or {})
        return cls(resolver, template.get("Resources", {}))

    @classmethod
    def for_stack(
        cls,
        path: Path,
        stack_resources: Iterable[Mapping[str, str]],
        *,
        stack_name: str,
        region: str,
        account: str,
        parameters: Mapping[str, Any] | None = None,
    ) -> TemplatePolicies:
        """The template's policies with the physical names a created stack actually has.

        ``stack_resources`` are CloudFormation's ``DescribeStackResources`` entries
        (``LogicalResourceId``, ``ResourceType``, ``PhysicalResourceId``).
        """
        return cls.load(
            path,
            stack_name=stack_name,
            region=region,
            account=account,
            parameters=parameters,
            arns=physical_arns(stack_resources, region, account),
        )

    def _included(self, resource: Mapping[str, Any]) -> bool:
        condition = resource.get("Condition")
        return condition is None or self._r.condition(str(condition))

    def _load(self, resources: Mapping[str, Any]) -> None:
        r = self._r
        managed: dict[str, Policy] = {}
        attached: dict[str, list[str]] = {}  # role name -> managed policy ARNs
        role_names: dict[str, str] = {}  # role name -> role ARN
        permissions: dict[str, list[dict[str, Any]]] = {}  # function ARN -> statements
        for logical_id, resource in resources.items():
            if not self._included(resource):
                continue
            kind, props = resource["Type"], resource.get("Properties", {})
            if kind == "AWS::IAM::Role":
                arn = r.arn_of(logical_id)
                self.logical_ids[arn] = logical_id
                role_names[arn.rsplit("/", 1)[-1]] = arn
                name = arn.rsplit("/", 1)[-1]
                policies = [
                    parse_policy(
                        r.resolve(p["PolicyDocument"]),
                        f"role {name}: {r.resolve(p['PolicyName'])}",
                        PolicyKind.IDENTITY,
                    )
                    for p in r.resolve(props.get("Policies", []))
                ]
                self._roles[arn] = policies
                attached.setdefault(name, []).extend(r.resolve(props.get("ManagedPolicyArns", [])))
                self._role_tags[arn] = {
                    t["Key"]: str(t["Value"]) for t in r.resolve(props.get("Tags", []))
                }
            elif kind == "AWS::IAM::ManagedPolicy":
                arn = r.arn_of(logical_id)
                managed[arn] = parse_policy(
                    r.resolve(props["PolicyDocument"]), f"managed {logical_id}", PolicyKind.IDENTITY
                )
                for role in r.resolve(props.get("Roles", [])):
                    attached.setdefault(str(role), []).append(arn)
        for logical_id, resource in resources.items():
            if not self._included(resource):
                continue
            kind, props = resource["Type"], resource.get("Properties", {})
            if kind == "AWS::IAM::Policy":
                inline = parse_policy(
                    r.resolve(props["PolicyDocument"]),
                    f"policy {r.resolve(props['PolicyName'])}",
                    PolicyKind.IDENTITY,
                )
                for role in r.resolve(props.get("Roles", [])):
                    self._roles.setdefault(role_names.get(str(role), str(role)), []).append(inline)
            elif kind == "AWS::Lambda::Function":
                arn = r.arn_of(logical_id)
                self.logical_ids[arn] = logical_id
                self._function_roles[arn.rsplit(":", 1)[-1]] = str(r.resolve(props["Role"]))
            elif kind == "AWS::StepFunctions::StateMachine":
                arn = r.arn_of(logical_id)
                self.logical_ids[arn] = logical_id
                self._machine_roles[arn] = str(r.resolve(props["RoleArn"]))
            elif kind == "AWS::KMS::Key":
                arn = r.arn_of(logical_id)
                self.logical_ids[arn] = logical_id
                self._keys[arn] = parse_policy(
                    r.resolve(props["KeyPolicy"]),
                    f"key {logical_id}: key policy",
                    PolicyKind.RESOURCE,
                )
            elif kind == "AWS::Lambda::Permission":
                target = str(r.resolve(props["FunctionName"]))
                arn = target if target.startswith("arn:") else r._function_arn(target)
                permissions.setdefault(arn, []).append(
                    _permission_statement(r.resolve(props), logical_id, arn)
                )
        for arn, statements in permissions.items():
            self._functions[arn] = parse_policy(
                {"Version": "2012-10-17", "Statement": statements},
                f"function {arn.split(':', 6)[-1]}: resource policy",
                PolicyKind.RESOURCE,
            )
        for name, arns in attached.items():
            role_arn = role_names.get(name)
            if role_arn is None:
                raise TemplateError(f"managed policy attached to unknown role {name}")
            for arn in arns:
                document = managed.get(arn) or aws_managed_policy(str(arn))
                if document is None:
                    raise TemplateError(f"managed policy {arn}: document unknown")
                self._roles[role_arn].append(document)

    # PolicyStore ------------------------------------------------------------------------------

    def role_of_function(self, function_name: str) -> str | None:
        return self._function_roles.get(function_name)

    def role_of_state_machine(self, state_machine_arn: str, role_arn: str) -> str | None:
        return self._machine_roles.get(state_machine_arn)

    def identity_policies(self, role_arn: str) -> list[Policy]:
        return list(self._roles.get(role_arn, []))

    def role_tags(self, role_arn: str) -> dict[str, str]:
        return dict(self._role_tags.get(role_arn, {}))

    def key_policy(self, key_arn: str) -> Policy | None:
        # Keys the stack does not declare (customer keys of the secrets) live in moto.
        if key_arn in self._keys:
            return self._keys[key_arn]
        return MotoPolicies(self._r.account, self._r.region, self._r.partition).key_policy(key_arn)

    def function_policy(self, function_arn: str) -> Policy | None:
        return self._functions.get(function_arn)

    def all_policies(self, scope: Scope | None = None) -> list[Policy]:
        """Every policy the template declares (it is one stack: ``scope`` changes nothing)."""
        policies: list[Policy] = []
        for role_policies in self._roles.values():
            policies.extend(role_policies)
        policies.extend(self._keys.values())
        policies.extend(self._functions.values())
        return _unique(policies)

    # lookups for tests and reports ------------------------------------------------------------

    def arn(self, logical_id: str) -> str:
        """The ARN this store gives a template resource (its own or the one passed in)."""
        return self._r.arn_of(logical_id)

    def function_name(self, logical_id: str) -> str:
        return self.arn(logical_id).rsplit(":", 1)[-1]


def physical_arns(
    stack_resources: Iterable[Mapping[str, str]], region: str, account: str, partition: str = "aws"
) -> dict[str, str]:
    """Logical id -> ARN for the resource types whose ARNs policies name, from physical ids."""
    arn_formats = {
        "AWS::Lambda::Function": "arn:{p}:lambda:{r}:{a}:function:{id}",
        "AWS::KMS::Key": "arn:{p}:kms:{r}:{a}:key/{id}",
        "AWS::Events::Rule": "arn:{p}:events:{r}:{a}:rule/{id}",
        "AWS::IAM::Role": "arn:{p}:iam::{a}:role/{id}",
        "AWS::IAM::ManagedPolicy": "{id}",  # CloudFormation's physical id is the ARN
        "AWS::StepFunctions::StateMachine": "{id}",
        "AWS::SNS::Topic": "{id}",
    }
    arns = {}
    for resource in stack_resources:
        form = arn_formats.get(resource.get("ResourceType", ""))
        physical = resource.get("PhysicalResourceId", "")
        if form is None or not physical:
            continue
        if physical.startswith("arn:"):
            arns[resource["LogicalResourceId"]] = physical
        else:
            arns[resource["LogicalResourceId"]] = form.format(
                p=partition, r=region, a=account, id=physical
            )
    return arns
