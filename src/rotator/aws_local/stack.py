"""Deploy ``template.yaml`` the way ``sam deploy`` does: package, translate, create the stack.

1. **Package** (what ``sam package`` does): zip each ``CodeUri``/``ContentUri`` directory and
   upload it with each ``DefinitionUri`` file to an S3 bucket, then point the template at the
   ``s3://`` URIs. The translator refuses local paths, as CloudFormation's transform would.
2. **Translate** with aws-sam-translator, the library behind CloudFormation's
   ``AWS::Serverless-2016-10-31`` transform.
3. **Create** the translated stack with CloudFormation and require ``CREATE_COMPLETE``.

The same code serves CI (``tools/deploy_check.py``, against CloudFormation on moto) and the local
runtime; it takes boto3 clients, so it runs against any endpoint.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import os
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[3]
DEFAULT_TEMPLATE = PROJECT_ROOT / "template.yaml"
#: CloudFormation takes a TemplateBody up to this size; bigger templates go through S3.
TEMPLATE_BODY_LIMIT = 51_200
#: The template parameter that prefixes every physical name.
NAME_PREFIX = "NamePrefix"

# Properties that name local artifacts, per SAM resource type (as ``sam package`` knows them).
_ARTIFACTS = {
    "AWS::Serverless::Function": ("CodeUri", True),
    "AWS::Serverless::LayerVersion": ("ContentUri", True),
    "AWS::Serverless::StateMachine": ("DefinitionUri", False),
}


class DeployError(Exception):
    """The template cannot be packaged, translated or created (as it would fail on AWS)."""


class _CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short-form tags (``!Ref``, ``!Sub``...) in long form."""


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    name = suffix if suffix in ("Ref", "Condition") else f"Fn::{suffix}"
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


def load_template(path: Path = DEFAULT_TEMPLATE) -> dict[str, Any]:
    """The SAM template as a dict, intrinsic functions in their long form."""
    with open(path, encoding="utf-8") as fh:
        data: dict[str, Any] = yaml.load(fh, Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass
    return data


@dataclass
class Artifact:
    """One packaged file: where it came from and where it went."""

    logical_id: str
    source: Path
    bucket: str
    key: str


@dataclass
class Packaged:
    template: dict[str, Any]
    artifacts: list[Artifact] = field(default_factory=list)

    def source_of(self, bucket: str, key: str) -> Path | None:
        """The local directory or file an uploaded artifact was made from."""
        for artifact in self.artifacts:
            if artifact.bucket == bucket and artifact.key == key:
                return artifact.source
        return None


def _zip_directory(directory: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(directory.rglob("*")):
            if path.is_dir() or "__pycache__" in path.parts or path.suffix == ".pyc":
                continue
            info = zipfile.ZipInfo(
                str(path.relative_to(directory)), date_time=(1980, 1, 1, 0, 0, 0)
            )
            info.external_attr = 0o644 << 16
            archive.writestr(info, path.read_bytes())
    return buffer.getvalue()


_ZIP_CACHE: dict[tuple[str, float], bytes] = {}


def _artifact_bytes(path: Path) -> bytes:
    if path.is_file():
        return path.read_bytes()
    newest = max((p.stat().st_mtime for p in path.rglob("*") if p.is_file()), default=0.0)
    cache_key = (str(path), newest)
    if cache_key not in _ZIP_CACHE:
        _ZIP_CACHE[cache_key] = _zip_directory(path)
    return _ZIP_CACHE[cache_key]


def package(
    template: dict[str, Any], s3: Any, bucket: str, *, root: Path = PROJECT_ROOT
) -> Packaged:
    """Upload the template's local artifacts to ``bucket`` and return the rewritten template.

    Keys are content hashes, as ``sam package`` makes them: unchanged code uploads once.
    """
    packaged = Packaged(template=copy.deepcopy(template))
    uploaded: set[str] = set()
    for logical_id, resource in packaged.template.get("Resources", {}).items():
        artifact = _ARTIFACTS.get(resource.get("Type", ""))
        if artifact is None:
            continue
        prop, is_directory = artifact
        props = resource.setdefault("Properties", {})
        uri = props.get(prop)
        if not isinstance(uri, str) or uri.startswith("s3://"):
            continue
        source = (root / uri).resolve()
        if not source.exists() or source.is_dir() != is_directory:
            kind = "directory" if is_directory else "file"
            raise DeployError(f"{logical_id}.{prop}: {uri} is not a {kind}")
        body = _artifact_bytes(source)
        key = hashlib.md5(body, usedforsecurity=False).hexdigest()
        if key not in uploaded:
            s3.put_object(Bucket=bucket, Key=key, Body=body)
            uploaded.add(key)
        props[prop] = f"s3://{bucket}/{key}"
        packaged.artifacts.append(Artifact(logical_id, source, bucket, key))
    return packaged


def translate(
    template: dict[str, Any], parameters: dict[str, str] | None = None, region: str = "us-east-1"
) -> dict[str, Any]:
    """Run the ``AWS::Serverless-2016-10-31`` transform on a packaged template, as
    CloudFormation does for a stack in ``region`` (AWS managed policies from the bundled map)."""
    import boto3
    from samtranslator.internal.managed_policies import get_bundled_managed_policy_map
    from samtranslator.model.exceptions import InvalidDocumentException
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.arn_generator import ArnGenerator
    from samtranslator.translator.translator import Translator
    from samtranslator.utils.py27hash_fix import (
        to_py27_compatible_template,
        undo_mark_unicode_str_in_template,
    )

    fragment = copy.deepcopy(template)
    values: dict[str, Any] = dict(parameters or {})
    to_py27_compatible_template(fragment, values)
    policies = get_bundled_managed_policy_map(ArnGenerator.get_partition_name(region)) or {}
    translator = Translator(None, Parser(), boto_session=boto3.session.Session(region_name=region))
    try:
        translated = translator.translate(
            fragment, parameter_values=values, get_managed_policy_map=lambda: policies
        )
    except InvalidDocumentException as exc:
        causes = "; ".join(str(cause) for cause in exc.causes)
        raise DeployError(f"the SAM transform refused the template: {causes}") from None
    return dict(undo_mark_unicode_str_in_template(translated))


def parameter_values(template: dict[str, Any], overrides: dict[str, str]) -> dict[str, str]:
    """Overrides checked against the template's parameters (an unknown name is an error)."""
    declared = template.get("Parameters", {})
    unknown = sorted(set(overrides) - set(declared))
    if unknown:
        raise DeployError(f"unknown parameter override(s): {', '.join(unknown)}")
    missing = sorted(
        name for name, spec in declared.items() if "Default" not in spec and name not in overrides
    )
    if missing:
        raise DeployError(f"parameter(s) without a default need a value: {', '.join(missing)}")
    return {name: str(value) for name, value in overrides.items()}


def unsupported_types(translated: dict[str, Any]) -> list[str]:
    """Resource types of ``translated`` that moto's CloudFormation skips (creates nothing for),
    as patched (:mod:`rotator.aws_local.patches` adds types) when the patches are on."""
    from moto.cloudformation import parsing

    types = {r["Type"] for r in translated.get("Resources", {}).values()}
    return sorted(t for t in types if parsing.resource_class_from_type(t) is None)


@dataclass
class Deployed:
    """A created stack: its physical resources by logical id, and its outputs."""

    stack_name: str
    stack_id: str
    template: dict[str, Any]
    packaged: Packaged
    resources: dict[str, dict[str, str]]
    outputs: dict[str, str]

    def physical_id(self, logical_id: str) -> str:
        return self.resources[logical_id]["PhysicalResourceId"]

    def of_type(self, resource_type: str) -> dict[str, str]:
        """Logical id -> physical id of every created resource of ``resource_type``."""
        return {
            logical: r["PhysicalResourceId"]
            for logical, r in self.resources.items()
            if r["ResourceType"] == resource_type
        }


def deploy(
    clients: Any,
    *,
    stack_name: str,
    template_path: Path = DEFAULT_TEMPLATE,
    parameters: dict[str, str] | None = None,
    bucket: str | None = None,
) -> Deployed:
    """Package, translate and create the stack; raise :class:`DeployError` unless it is
    ``CREATE_COMPLETE``. ``clients(service)`` returns a boto3 client."""
    source = load_template(template_path)
    values = parameter_values(source, dict(parameters or {}))
    s3 = clients("s3")
    bucket = bucket or f"{stack_name.lower()}-artifacts"
    s3.create_bucket(Bucket=bucket)
    packaged = package(source, s3, bucket, root=template_path.parent)
    translated = translate(packaged.template, values, clients("s3").meta.region_name)
    body = json.dumps(translated)
    cfn = clients("cloudformation")
    request: dict[str, Any] = {
        "StackName": stack_name,
        "Parameters": [{"ParameterKey": k, "ParameterValue": v} for k, v in values.items()],
        "Capabilities": ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
    }
    if len(body.encode()) > TEMPLATE_BODY_LIMIT:
        key = f"{stack_name}.template.json"
        s3.put_object(Bucket=bucket, Key=key, Body=body.encode())
        request["TemplateURL"] = f"https://{bucket}.s3.amazonaws.com/{key}"
    else:
        request["TemplateBody"] = body
    try:
        with warnings.catch_warnings():
            # moto warns for each type it skips; unsupported_types() lists them instead
            warnings.filterwarnings("ignore", message=r"Tried to parse AWS::", category=UserWarning)
            stack_id = cfn.create_stack(**request)["StackId"]
    except Exception as exc:
        raise DeployError(f"CreateStack {stack_name} failed: {exc}") from exc
    stack = cfn.describe_stacks(StackName=stack_id)["Stacks"][0]
    if stack["StackStatus"] != "CREATE_COMPLETE":
        reason = stack.get("StackStatusReason", "")
        raise DeployError(f"stack {stack_name} is {stack['StackStatus']}: {reason}")
    resources: dict[str, dict[str, str]] = {}
    for page in cfn.get_paginator("list_stack_resources").paginate(StackName=stack_id):
        for summary in page["StackResourceSummaries"]:
            resources[summary["LogicalResourceId"]] = summary
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    return Deployed(stack_name, stack_id, translated, packaged, resources, outputs)


def update(
    clients: Any,
    deployed: Deployed,
    *,
    template_path: Path,
    parameters: dict[str, str] | None = None,
) -> Deployed:
    """Package, translate and update ``deployed``'s stack to ``template_path`` (what ``sam
    deploy`` does to an existing stack); raise :class:`DeployError` unless it is
    ``UPDATE_COMPLETE``. The artifacts of both deployments stay known (each Lambda version
    keeps the code it was published with)."""
    source = load_template(template_path)
    values = parameter_values(source, dict(parameters or {}))
    s3 = clients("s3")
    bucket = deployed.packaged.artifacts[0].bucket
    packaged = package(source, s3, bucket, root=template_path.parent)
    translated = translate(packaged.template, values, s3.meta.region_name)
    body = json.dumps(translated)
    cfn = clients("cloudformation")
    request: dict[str, Any] = {
        "StackName": deployed.stack_id,
        "Parameters": [{"ParameterKey": k, "ParameterValue": v} for k, v in values.items()],
        "Capabilities": ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
    }
    key = f"{deployed.stack_name}.update.template.json"
    s3.put_object(Bucket=bucket, Key=key, Body=body.encode())
    request["TemplateURL"] = f"https://{bucket}.s3.amazonaws.com/{key}"
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"Tried to parse AWS::", category=UserWarning)
            cfn.update_stack(**request)
    except Exception as exc:
        raise DeployError(f"UpdateStack {deployed.stack_name} failed: {exc}") from exc
    stack = cfn.describe_stacks(StackName=deployed.stack_id)["Stacks"][0]
    if stack["StackStatus"] != "UPDATE_COMPLETE":
        reason = stack.get("StackStatusReason", "")
        raise DeployError(f"stack {deployed.stack_name} is {stack['StackStatus']}: {reason}")
    resources: dict[str, dict[str, str]] = {}
    for page in cfn.get_paginator("list_stack_resources").paginate(StackName=deployed.stack_id):
        for summary in page["StackResourceSummaries"]:
            resources[summary["LogicalResourceId"]] = summary
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    packaged.artifacts = [*packaged.artifacts, *deployed.packaged.artifacts]
    return Deployed(
        deployed.stack_name, deployed.stack_id, translated, packaged, resources, outputs
    )


def ci_parameters(template: dict[str, Any]) -> dict[str, str]:
    """Values for the parameters without a default (what ``sam deploy --guided`` would ask)."""
    values = {}
    for name, spec in template.get("Parameters", {}).items():
        if "Default" not in spec:
            values[name] = os.environ.get(f"ROTATOR_{name.upper()}", "rotator")
    return values
