"""``rotator migrate SECRET --dry-run``: what switching a secret to this router will do.

Reads the secret's metadata and its AWSCURRENT value (never printed), the master secret's
metadata (never its value) and, for IAM, the user's tags. Changes nothing. Every finding says
what the first rotation through the router will do with it: proceed, adopt, clear, or refuse.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from rotation_core.exceptions import RotationError
from rotation_core.models import check_strategy, parse_secret_string, secret_kind
from rotation_core.router import resolve_strategy

GROUP_TAG = "SecretRotationGroup"
MASTER_TAG = "SecretRotationMaster"
IAM_USER_TAG = "SecretRotation"


@dataclass
class Finding:
    #: "ok" (nothing to do), "note" (the rotation handles it), "block" (the rotation refuses)
    level: str
    subject: str
    text: str


@dataclass
class MigrationPlan:
    secret: str
    strategy: str | None = None
    engine: str | None = None
    findings: list[Finding] = field(default_factory=list)

    def add(self, level: str, subject: str, text: str) -> None:
        self.findings.append(Finding(level, subject, text))

    @property
    def blocked(self) -> bool:
        return any(f.level == "block" for f in self.findings)

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "blocked": self.blocked}, indent=2)

    def text(self) -> str:
        marks = {"ok": "ok   ", "note": "note ", "block": "BLOCK"}
        lines = [f"{self.secret}: strategy {self.strategy or '?'}, engine {self.engine or '?'}"]
        lines += [f"  {marks[f.level]} {f.subject}: {f.text}" for f in self.findings]
        lines.append(
            "  => the first rotation will be refused until the BLOCK lines are fixed"
            if self.blocked
            else "  => the first rotation through the router can proceed"
        )
        return "\n".join(lines)


def plan(
    secretsmanager: Any, iam: Any, secret_id: str, *, stack_name: str, router_arn: str | None
) -> MigrationPlan:
    """Everything the first rotation through the router will check, without changing anything."""
    meta = secretsmanager.describe_secret(SecretId=secret_id)
    result = MigrationPlan(secret=meta["Name"])
    tags = {t["Key"]: t["Value"] for t in meta.get("Tags", [])}
    _rotation_function(result, meta, router_arn)
    try:
        current = parse_secret_string(
            secretsmanager.get_secret_value(SecretId=meta["ARN"], VersionStage="AWSCURRENT").get(
                "SecretString"
            ),
            what="AWSCURRENT secret",
        )
        kind = secret_kind(current, what="AWSCURRENT secret")
        result.engine = str(current.get("engine"))
        result.strategy = resolve_strategy(tags, current)
        check_strategy(kind, result.strategy)
        result.add("ok", "secret", f"AWSCURRENT matches the {kind} schema (values not shown)")
    except RotationError as exc:
        result.add("block", "secret", str(exc))
        return result
    _pending(result, meta)
    _transport(result, current)
    if result.strategy == "alternating-users" or (kind == "redis" and "masterarn" in current):
        _master(result, secretsmanager, current, tags, stack_name)
    if kind == "iam":
        _iam_user(result, iam, str(current.get("username")), stack_name)
    if result.strategy == "alternating-users":
        result.add(
            "note",
            "users",
            f"the idle user is {current['username']!r}'s partner; an existing one is changed only "
            "if an earlier version of the secret logs in as it (AWS's multi-user template leaves "
            "one in AWSPREVIOUS) or it can do nothing the original cannot; checked at createSecret",
        )
    return result


def _rotation_function(result: MigrationPlan, meta: dict[str, Any], router_arn: str | None) -> None:
    configured = meta.get("RotationLambdaARN")
    if router_arn and configured == router_arn:
        result.add("ok", "rotation function", "already this stack's router")
    elif configured:
        result.add(
            "note",
            "rotation function",
            f"now {configured}; switch with: aws secretsmanager rotate-secret --secret-id "
            f"{meta['Name']} --rotation-lambda-arn {router_arn or '<RouterFunctionArn>'} "
            "--no-rotate-immediately",
        )
    else:
        result.add("note", "rotation function", "none configured yet")


def _pending(result: MigrationPlan, meta: dict[str, Any]) -> None:
    stages = meta.get("VersionIdsToStages", {})
    stale = [v for v, s in stages.items() if "AWSPENDING" in s and "AWSCURRENT" not in s]
    if not stale:
        result.add("ok", "AWSPENDING", "no unfinished rotation")
        return
    result.add(
        "note",
        "AWSPENDING",
        f"version {stale[0]} holds an unfinished rotation: Secrets Manager's retry calls the "
        "router with it; the router adopts it if the database already accepts it (ending any "
        "lockout the interrupted function left), otherwise removes its label and the next "
        "rotation starts afresh. It never sets a password it did not generate.",
    )


def _transport(result: MigrationPlan, current: dict[str, Any]) -> None:
    if current.get("engine") == "iam":
        return
    ssl = str(current.get("ssl", "")).lower()
    if ssl == "false":
        result.add(
            "block",
            "TLS",
            "secret field 'ssl' is false: refused unless the stack sets AllowPlaintext=true",
        )
        return
    bundle = current.get("ca_bundle")
    result.add(
        "note",
        "TLS",
        "the server must present a certificate valid for "
        f"{current.get('host')!r} from the system store"
        + (f" or CA bundle {bundle!r}" if bundle else " or the stack's CaBundle")
        + " (RDS: put AWS's RDS bundle in the layer and set CaBundle); AWS's functions fell back "
        "to plaintext, this router does not",
    )


def _master(
    result: MigrationPlan,
    secretsmanager: Any,
    current: dict[str, Any],
    tags: dict[str, str],
    stack_name: str,
) -> None:
    master_arn = current.get("masterarn")
    if not master_arn:
        result.add("block", "master", "secret field 'masterarn' is required for alternating users")
        return
    try:
        master = secretsmanager.describe_secret(SecretId=master_arn)
    except Exception as exc:
        code = getattr(exc, "response", {}).get("Error", {}).get("Code", type(exc).__name__)
        result.add("block", "master", f"cannot describe the master secret ({code})")
        return
    master_tags = {t["Key"]: t["Value"] for t in master.get("Tags", [])}
    if master_tags.get(MASTER_TAG) != stack_name:
        result.add(
            "block",
            "master",
            f"tag the master secret {MASTER_TAG}={stack_name} (the workers may read only those)",
        )
    group = tags.get(GROUP_TAG)
    if not group:
        result.add(
            "block",
            "group",
            f"tag this secret {GROUP_TAG}=<group> and the master with the same value "
            "(a master serves only its own group)",
        )
    elif master_tags.get(GROUP_TAG) != group:
        result.add(
            "block",
            "group",
            f"the master's {GROUP_TAG} tag is {master_tags.get(GROUP_TAG)!r}, this secret's "
            f"{group!r}: they must match",
        )
    else:
        result.add("ok", "group", f"master and secret share {GROUP_TAG}={group}")


def _iam_user(result: MigrationPlan, iam: Any, user: str, stack_name: str) -> None:
    try:
        tags = {t["Key"]: t["Value"] for t in iam.list_user_tags(UserName=user)["Tags"]}
    except Exception as exc:
        code = getattr(exc, "response", {}).get("Error", {}).get("Code", type(exc).__name__)
        result.add("block", "IAM user", f"cannot read user {user!r}'s tags ({code})")
        return
    if tags.get(IAM_USER_TAG) != stack_name:
        result.add(
            "block",
            "IAM user",
            f"tag IAM user {user!r} {IAM_USER_TAG}={stack_name} (the workers may manage only "
            "the keys of those users)",
        )
    else:
        result.add("ok", "IAM user", f"{user!r} is tagged for this stack")
