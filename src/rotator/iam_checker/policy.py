"""The IAM policy language and AWS's evaluation logic for requests inside one account.

What is modelled, and where AWS documents it:

- Statement elements ``Effect``, ``Action``/``NotAction``, ``Resource``/``NotResource``,
  ``Principal`` and ``Condition``; wildcards ``*`` and ``?`` in actions (case-insensitive) and
  resources (case-sensitive).
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements.html
- Condition operators (``String*``, ``Arn*``, ``Bool``, ``Null``), the ``IfExists`` suffix and the
  ``ForAllValues:``/``ForAnyValue:`` set prefixes. A key missing from the request context makes a
  condition false, except for negated operators (``StringNotEquals``, ``ArnNotLike``...), where it
  makes it true, and except ``...IfExists`` and ``Null``, which test presence.
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html
  Several values for one key are ORed, for a negated operator NORed; several keys or operators
  are ANDed.
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-logic-multiple-context-keys-or-values.html
  ``ForAllValues`` is true when the key is missing or its set is empty (hence the template's
  ``Null`` companions); set operators belong to multivalued keys only, single-valued operators
  to single-valued keys only.
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-single-vs-multi-valued-context-keys.html
- Evaluation within one account: an explicit Deny in any policy wins; otherwise an Allow in an
  identity-based policy or in a resource-based policy that names the principal allows.
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic_policy-eval-basics.html
  A resource policy that names the *account* (``arn:aws:iam::<account>:root`` or the account
  id) delegates to IAM: it allows nothing by itself, the caller's identity policy must allow too.
- KMS keys differ: without an Allow in the key policy no IAM policy allows anything. The key
  policy either allows the principal itself or allows the account (delegating to IAM policies,
  possibly narrowed with conditions such as ``aws:PrincipalArn``).
  https://docs.aws.amazon.com/kms/latest/developerguide/key-policies.html
  https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html#key-policy-default-allow-root-enable-iam
  https://docs.aws.amazon.com/kms/latest/developerguide/determining-access-key-policy.html

Fail closed: a statement that applies to a request (its action, resource and principal match)
but uses a condition operator, a condition key, a policy variable or a principal type this
module does not model makes the request *denied*, with a reason that names what is unknown.
Grants, permission boundaries, session policies, SCPs and cross-account requests are not
modelled (nothing in the template uses them).
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from typing import Any

#: Context values: a string for a single-valued key, a tuple for a multivalued key.
ContextValue = str | tuple[str, ...]

#: Multivalued keys (``ArrayOf...`` in the Service Authorization Reference; "Multivalued" in the
#: global keys page). Every other key is single-valued.
MULTIVALUED_KEYS = frozenset(
    {
        "aws:calledvia",
        "aws:principalservicenameslist",
        "aws:tagkeys",
        "kms:encryptioncontextkeys",
        "kms:resourcealiases",
        # ArrayOfString: https://docs.aws.amazon.com/step-functions/latest/dg/auth-version-alias.html
        # (its examples use ForAnyValue:StringEquals)
        "states:statemachinequalifier",
    }
)

_STRING_OPERATORS = {
    "StringEquals": (False, "equals"),
    "StringNotEquals": (True, "equals"),
    "StringEqualsIgnoreCase": (False, "equals_ignore_case"),
    "StringNotEqualsIgnoreCase": (True, "equals_ignore_case"),
    "StringLike": (False, "like"),
    "StringNotLike": (True, "like"),
    # ArnEquals and ArnLike are the same operator: both compare the six colon-separated parts,
    # each with wildcards.
    "ArnEquals": (False, "arn"),
    "ArnLike": (False, "arn"),
    "ArnNotEquals": (True, "arn"),
    "ArnNotLike": (True, "arn"),
    "Bool": (False, "bool"),
}
_SET_PREFIXES = ("ForAllValues:", "ForAnyValue:")

_STATEMENT_KEYS = {
    "Sid",
    "Effect",
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "Principal",
    "NotPrincipal",
    "Condition",
}


class PolicyError(ValueError):
    """A policy document that is malformed or uses an element this checker does not model."""


class PolicyKind(StrEnum):
    IDENTITY = "identity-based"
    RESOURCE = "resource-based"


class Effect(StrEnum):
    ALLOW = "Allow"
    DENY = "Deny"


@dataclass(frozen=True)
class StatementRef:
    """Where a statement lives: the policy's label and its Sid (or position)."""

    policy: str
    index: int
    sid: str | None = None

    def __str__(self) -> str:
        return f"{self.policy}#{self.sid or self.index}"


@dataclass(frozen=True)
class Condition:
    operator: str
    key: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class Statement:
    ref: StatementRef
    effect: Effect
    actions: tuple[str, ...] = ()
    not_actions: tuple[str, ...] | None = None
    resources: tuple[str, ...] = ("*",)
    not_resources: tuple[str, ...] | None = None
    #: principal type ("AWS", "Service", ...) -> values; None in identity policies
    principals: Mapping[str, tuple[str, ...]] | None = None
    conditions: tuple[Condition, ...] = ()


@dataclass(frozen=True)
class Policy:
    label: str
    kind: PolicyKind
    statements: tuple[Statement, ...]


@dataclass(frozen=True)
class Principal:
    """Who makes a request: an IAM role (a Lambda function's or a state machine's) or a service."""

    arn: str
    account: str
    is_service: bool = False
    #: the role session's name (Lambda uses the function name)
    session: str = "session"

    @property
    def display(self) -> str:
        """The ARN AWS prints in an access-denied message (the assumed-role session)."""
        if self.is_service:
            return self.arn
        name = self.arn.rsplit("/", 1)[-1]
        partition = self.arn.split(":", 2)[1]
        return f"arn:{partition}:sts::{self.account}:assumed-role/{name}/{self.session}"


@dataclass(frozen=True)
class Request:
    """One authorization: who, which action, on which resource, with which request context.

    ``known`` lists the condition keys AWS defines for this request (``*`` ends a prefix, e.g.
    ``aws:ResourceTag/*``); a key there but not in ``context`` is *absent* (AWS would not put it
    in the context), a key in neither is *unknown* and fails closed.
    """

    principal: Principal
    action: str
    resource: str
    context: Mapping[str, ContextValue] = field(default_factory=dict)
    known: tuple[str, ...] = ()

    def lookup(self, key: str) -> tuple[bool, ContextValue | None]:
        """(whether AWS defines the key for this request, its value or None when absent)."""
        wanted = key.lower()  # condition key names are case-insensitive
        for name, value in self.context.items():
            if name.lower() == wanted:
                return True, value
        for pattern in self.known:
            lowered = pattern.lower()
            if lowered == wanted or (lowered.endswith("*") and wanted.startswith(lowered[:-1])):
                return True, None
        return False, None


class Unknown(Exception):
    """Something in an applicable statement this checker cannot evaluate (fails closed)."""


# --- parsing ---------------------------------------------------------------------------------


def parse_policy(document: str | Mapping[str, Any], label: str, kind: PolicyKind) -> Policy:
    """Parse a policy document (JSON text or already-parsed) into statements."""
    data: Any = json.loads(document) if isinstance(document, str) else document
    if not isinstance(data, Mapping):
        raise PolicyError(f"{label}: a policy document must be a JSON object")
    extra = set(data) - {"Version", "Id", "Statement"}
    if extra:
        raise PolicyError(f"{label}: unknown policy element(s) {sorted(extra)}")
    raw = data.get("Statement", [])
    raw_statements = [raw] if isinstance(raw, Mapping) else list(raw)
    statements = tuple(
        _parse_statement(item, StatementRef(label, index, _sid(item)), kind)
        for index, item in enumerate(raw_statements)
    )
    return Policy(label=label, kind=kind, statements=statements)


def _sid(item: Any) -> str | None:
    return str(item["Sid"]) if isinstance(item, Mapping) and item.get("Sid") else None


def _strings(value: Any, where: str) -> tuple[str, ...]:
    items = value if isinstance(value, list) else [value]
    out = []
    for item in items:
        if isinstance(item, bool):
            out.append("true" if item else "false")
        elif isinstance(item, str | int | float):
            out.append(str(item))
        else:
            raise PolicyError(f"{where}: expected strings, got {type(item).__name__}")
    return tuple(out)


def _parse_statement(item: Any, ref: StatementRef, kind: PolicyKind) -> Statement:
    if not isinstance(item, Mapping):
        raise PolicyError(f"{ref}: a statement must be a JSON object")
    extra = set(item) - _STATEMENT_KEYS
    if extra:
        raise PolicyError(f"{ref}: unknown statement element(s) {sorted(extra)}")
    try:
        effect = Effect(str(item.get("Effect")))
    except ValueError:
        raise PolicyError(f"{ref}: Effect must be Allow or Deny") from None
    if ("Action" in item) == ("NotAction" in item):
        raise PolicyError(f"{ref}: exactly one of Action and NotAction is required")
    if "NotPrincipal" in item:
        raise PolicyError(f"{ref}: NotPrincipal is not modelled by the IAM checker")
    principals = None
    if kind is PolicyKind.IDENTITY:
        if "Principal" in item:
            raise PolicyError(f"{ref}: an identity-based policy cannot name a Principal")
        if ("Resource" in item) == ("NotResource" in item):
            raise PolicyError(f"{ref}: exactly one of Resource and NotResource is required")
    else:
        if "Principal" not in item:
            raise PolicyError(f"{ref}: a resource-based policy statement needs a Principal")
        principals = _parse_principal(item["Principal"], ref)
    conditions: list[Condition] = []
    raw_conditions = item.get("Condition", {})
    if not isinstance(raw_conditions, Mapping):
        raise PolicyError(f"{ref}: Condition must be a JSON object")
    for operator, block in raw_conditions.items():
        if not isinstance(block, Mapping):
            raise PolicyError(f"{ref}: Condition {operator} must map keys to values")
        for key, values in block.items():
            conditions.append(Condition(str(operator), str(key), _strings(values, str(ref))))
    return Statement(
        ref=ref,
        effect=effect,
        actions=_strings(item["Action"], str(ref)) if "Action" in item else (),
        not_actions=_strings(item["NotAction"], str(ref)) if "NotAction" in item else None,
        resources=_strings(item["Resource"], str(ref)) if "Resource" in item else ("*",),
        not_resources=(_strings(item["NotResource"], str(ref)) if "NotResource" in item else None),
        principals=principals,
        conditions=tuple(conditions),
    )


def _parse_principal(value: Any, ref: StatementRef) -> Mapping[str, tuple[str, ...]]:
    if value == "*":
        return {"AWS": ("*",)}
    if not isinstance(value, Mapping):
        raise PolicyError(f'{ref}: Principal must be "*" or a JSON object')
    parsed = {str(kind): _strings(values, str(ref)) for kind, values in value.items()}
    for values in parsed.values():
        for principal in values:
            if principal != "*" and ("*" in principal or "?" in principal):
                raise PolicyError(f"{ref}: wildcards are not allowed in Principal ({principal})")
    return parsed


# --- matching --------------------------------------------------------------------------------


@lru_cache(maxsize=4096)
def _glob(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    # fnmatch's translate also gives [...] a meaning that IAM does not: escape brackets first.
    escaped = pattern.replace("[", "[[]")
    return re.compile(fnmatch.translate(escaped), re.IGNORECASE if ignore_case else 0)


def wildcard_match(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    """IAM's ``*`` (any run of characters, ``:`` and ``/`` included) and ``?`` (one)."""
    if "${" in pattern:
        raise Unknown(f"policy variable in {pattern!r} is not supported")
    return _glob(pattern, ignore_case).match(value) is not None


def _arn_match(pattern: str, value: str) -> bool:
    parts, values = pattern.split(":", 5), value.split(":", 5)
    if len(parts) != 6 or len(values) != 6:
        return False
    return all(wildcard_match(p, v) for p, v in zip(parts, values, strict=True))


def _action_matches(stmt: Statement, action: str) -> bool:
    if stmt.not_actions is not None:
        return not any(wildcard_match(p, action, ignore_case=True) for p in stmt.not_actions)
    return any(wildcard_match(p, action, ignore_case=True) for p in stmt.actions)


def _resource_matches(stmt: Statement, resource: str) -> bool:
    if stmt.not_resources is not None:
        return not any(wildcard_match(p, resource) for p in stmt.not_resources)
    return any(wildcard_match(p, resource) for p in stmt.resources)


class PrincipalMatch(StrEnum):
    NONE = "none"
    #: the statement names the caller itself (or everyone)
    DIRECT = "direct"
    #: the statement names the caller's account: a delegation to IAM policies
    ACCOUNT = "account"


def _principal_matches(stmt: Statement, principal: Principal) -> PrincipalMatch:
    if stmt.principals is None:
        return PrincipalMatch.DIRECT
    best = PrincipalMatch.NONE
    for kind, values in stmt.principals.items():
        if kind == "Service":
            if principal.is_service and principal.arn in values:
                return PrincipalMatch.DIRECT
        elif kind == "AWS":
            for value in values:
                if value == "*":
                    return PrincipalMatch.DIRECT
                if principal.is_service:
                    continue
                if value in (principal.arn, principal.display):
                    return PrincipalMatch.DIRECT
                if value == principal.account or re.fullmatch(
                    rf"arn:[a-z-]+:iam::{principal.account}:root", value
                ):
                    best = PrincipalMatch.ACCOUNT
        else:
            raise Unknown(f"principal type {kind!r} is not modelled")
    return best


# --- conditions ------------------------------------------------------------------------------


def _split_operator(operator: str) -> tuple[str | None, str, bool]:
    prefix = next((p for p in _SET_PREFIXES if operator.startswith(p)), None)
    base = operator[len(prefix) :] if prefix else operator
    if_exists = base.endswith("IfExists")
    if if_exists:
        base = base[: -len("IfExists")]
    known = base in _STRING_OPERATORS or (base == "Null" and not prefix and not if_exists)
    if not known or (prefix and base == "Bool"):
        raise Unknown(f"condition operator {operator!r} is not modelled")
    return prefix, base, if_exists


def _value_matches(kind: str, value: str, pattern: str) -> bool:
    if "${" in pattern:
        raise Unknown(f"policy variable in condition value {pattern!r} is not supported")
    if kind == "equals":
        return value == pattern
    if kind == "equals_ignore_case":
        return value.casefold() == pattern.casefold()
    if kind == "like":
        return wildcard_match(pattern, value)
    if kind == "arn":
        return _arn_match(pattern, value)
    # Bool
    if pattern.lower() not in ("true", "false"):
        raise Unknown(f"Bool condition value {pattern!r} is not true or false")
    return value.lower() == pattern.lower()


def condition_holds(condition: Condition, request: Request) -> bool:
    """Whether one (operator, key, values) triple holds for the request; raises Unknown."""
    prefix, base, if_exists = _split_operator(condition.operator)
    known, value = request.lookup(condition.key)
    if not known:
        raise Unknown(f"condition key {condition.key!r} is not known for {request.action}")
    multivalued = condition.key.lower() in MULTIVALUED_KEYS
    present = value is not None and value != ()
    if base == "Null":
        wanted = {v.lower() for v in condition.values}
        if not wanted <= {"true", "false"}:
            raise Unknown(f"Null condition values must be true or false: {condition.values}")
        return ("true" in wanted and not present) or ("false" in wanted and present)
    if multivalued and not prefix:
        raise Unknown(
            f"multivalued key {condition.key!r} needs ForAllValues: or ForAnyValue: "
            f"(operator {condition.operator!r})"
        )
    if prefix and not multivalued:
        raise Unknown(f"set operator {condition.operator!r} on single-valued key {condition.key!r}")
    negated, kind = _STRING_OPERATORS[base]

    def one_matches(item: str) -> bool:
        hit = any(_value_matches(kind, item, pattern) for pattern in condition.values)
        return not hit if negated else hit

    if not present:
        if if_exists:
            return True
        if prefix == "ForAllValues:":
            return True
        if prefix == "ForAnyValue:":
            return False
        return negated
    if prefix:
        items = value if isinstance(value, tuple) else (str(value),)
        if prefix == "ForAllValues:":
            return all(one_matches(item) for item in items)
        return any(one_matches(item) for item in items)
    if isinstance(value, tuple):  # a multivalued value under a single-valued key name
        raise Unknown(f"key {condition.key!r} holds several values in this request")
    return one_matches(str(value))


# --- evaluation ------------------------------------------------------------------------------


class Denial(StrEnum):
    EXPLICIT = "explicit"
    IMPLICIT = "implicit"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Decision:
    allowed: bool
    #: AWS's wording of why (the end of an access-denied message) or what allowed it
    reason: str
    denial: Denial | None = None
    #: which kind of policy the denial is attributed to (AWS names one in its message)
    policy_kind: PolicyKind | None = None
    #: every Allow statement that granted this request (what the converse proof counts)
    allowed_by: tuple[StatementRef, ...] = ()
    denied_by: tuple[StatementRef, ...] = ()

    def message(self, request: Request) -> str:
        """The access-denied message AWS would return for this request.

        https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_access-denied.html
        """
        return (
            f"User: {request.principal.display} is not authorized to perform: "
            f"{request.action} on resource: {request.resource} {self.reason}"
        )


@dataclass(frozen=True)
class _Applicable:
    stmt: Statement
    kind: PolicyKind
    principal: PrincipalMatch


def evaluate(
    request: Request,
    identity_policies: Sequence[Policy],
    resource_policy: Policy | None = None,
    *,
    key_policy: bool = False,
) -> Decision:
    """AWS's decision for ``request`` within one account.

    ``key_policy=True`` marks ``resource_policy`` as a KMS key policy: it must allow the request
    itself, or allow the account and leave the rest to an identity policy.
    """
    policies = list(identity_policies) + ([resource_policy] if resource_policy else [])
    applicable: list[_Applicable] = []
    unknown: list[str] = []
    for policy in policies:
        for stmt in policy.statements:
            try:
                match = _applies(stmt, request)
            except Unknown as exc:
                unknown.append(f"{stmt.ref}: {exc}")
                continue
            if match is not PrincipalMatch.NONE:
                applicable.append(_Applicable(stmt, policy.kind, match))
    if unknown:
        return Decision(
            allowed=False,
            reason="because the local IAM checker cannot evaluate " + "; ".join(unknown),
            denial=Denial.UNKNOWN,
        )
    denies = [a for a in applicable if a.stmt.effect is Effect.DENY]
    if denies:
        kind = denies[0].kind
        return Decision(
            allowed=False,
            reason=f"with an explicit deny in a {kind} policy",
            denial=Denial.EXPLICIT,
            policy_kind=kind,
            denied_by=tuple(a.stmt.ref for a in denies),
        )
    allows = [a for a in applicable if a.stmt.effect is Effect.ALLOW]
    identity = [a.stmt.ref for a in allows if a.kind is PolicyKind.IDENTITY]
    direct = [
        a.stmt.ref
        for a in allows
        if a.kind is PolicyKind.RESOURCE and a.principal is PrincipalMatch.DIRECT
    ]
    delegated = [
        a.stmt.ref
        for a in allows
        if a.kind is PolicyKind.RESOURCE and a.principal is PrincipalMatch.ACCOUNT
    ]
    granted_by_identity = bool(identity) and (not key_policy or bool(delegated))
    if direct or granted_by_identity:
        used = direct + (identity + delegated if granted_by_identity else [])
        return Decision(allowed=True, reason="allowed", allowed_by=tuple(used))
    # AWS names one policy type: the key policy when it grants nothing (not even to the
    # account), the resource policy for a service principal, else the caller's identity policy.
    resource_at_fault = (key_policy and not delegated) or request.principal.is_service
    blamed = PolicyKind.RESOURCE if resource_at_fault else PolicyKind.IDENTITY
    return Decision(
        allowed=False,
        reason=f"because no {blamed} policy allows the {request.action} action",
        denial=Denial.IMPLICIT,
        policy_kind=blamed,
    )


def _applies(stmt: Statement, request: Request) -> PrincipalMatch:
    if not _action_matches(stmt, request.action):
        return PrincipalMatch.NONE
    if not _resource_matches(stmt, request.resource):
        return PrincipalMatch.NONE
    principal = _principal_matches(stmt, request.principal)
    if principal is PrincipalMatch.NONE:
        return principal
    # Every condition is evaluated, so an unknown operator or key fails closed even next to a
    # condition that is false.
    unknown: list[str] = []
    holds = True
    for condition in stmt.conditions:
        try:
            holds = condition_holds(condition, request) and holds
        except Unknown as exc:
            unknown.append(str(exc))
    if unknown:
        raise Unknown("; ".join(unknown))
    return principal if holds else PrincipalMatch.NONE
