"""A Lambda resource-based policy belongs to the function, version or alias it was added to.

AWS: "The scope of that permission depends on whether you apply it to an alias, a version, or
the entire function. For example, if you use an alias name (such as helloworld:PROD), the
permission allows you to invoke the helloworld function using the alias ARN (helloworld:PROD).
If you attempt to invoke the function without an alias or a specific version, then you get a
permission error." ``AddPermission``, ``GetPolicy`` and ``RemovePermission`` take the version or
alias as ``Qualifier`` (or at the end of ``FunctionName``).
https://docs.aws.amazon.com/lambda/latest/dg/using-aliases.html
https://docs.aws.amazon.com/lambda/latest/api/API_AddPermission.html

moto 5.2 resolves a qualifier to the function object of that version, and a published version
is a shallow copy of ``$LATEST`` sharing its ``policy``: a permission added on the alias
``<router>:live`` lands in the one policy every version and ``$LATEST`` answer with, so the
service it names could invoke the function by any ARN. The patch keeps one policy per
version and alias, held by moto's object of that version or alias (it goes with the function);
the unqualified function (``$LATEST``) keeps moto's own.
"""

from __future__ import annotations

import re
from typing import Any

from rotator.aws_local.patches import MotoPatch

#: the attribute of a moto version or alias object that holds its own policy
POLICY_ATTRIBUTE = "rotator_policy"


def _split(name_or_arn: str, qualifier: str | None) -> tuple[str, str | None]:
    """(function name, qualifier or None for the unqualified function / $LATEST)."""
    if name_or_arn.startswith("arn:"):
        parts = name_or_arn.split(":")
        name = parts[6]
        qualifier = parts[7] if len(parts) > 7 else qualifier
    elif re.fullmatch(r"\d{12}:function:.+", name_or_arn):
        parts = name_or_arn.split(":")
        name = parts[2]
        qualifier = parts[3] if len(parts) > 3 else qualifier
    else:
        name, _, in_name = name_or_arn.partition(":")
        qualifier = in_name or qualifier
    return name, (None if qualifier in (None, "", "$LATEST") else qualifier)


class _Target:
    """What moto's ``Policy`` reads of its parent: the unqualified ARN (it appends the
    qualifier to each statement's ``Resource`` itself)."""

    def __init__(self, function_arn: str) -> None:
        self.function_arn = function_arn


def _policy(backend: Any, name_or_arn: str, qualifier: str | None, *, create: bool) -> Any:
    """The policy of the version or alias named, or None for the unqualified function."""
    from moto.awslambda.exceptions import GenericResourcNotFound
    from moto.awslambda.policy import Policy

    name, qualifier = _split(name_or_arn, qualifier)
    if qualifier is None:
        return None
    function = backend.get_function(name, qualifier)  # raises when no such version or alias
    storage = backend._lambdas
    owner = storage._get_version(name, qualifier) or storage.get_alias(qualifier, name)
    if getattr(owner, POLICY_ATTRIBUTE, None) is None:
        if not create:
            raise GenericResourcNotFound()
        unqualified = ":".join(function.function_arn.split(":")[:7])
        setattr(owner, POLICY_ATTRIBUTE, Policy(_Target(unqualified)))  # type: ignore[arg-type]
    return getattr(owner, POLICY_ATTRIBUTE)


class QualifiedPermissionsAreTheirOwn(MotoPatch):
    aws_doc = "https://docs.aws.amazon.com/lambda/latest/dg/using-aliases.html"

    def replacements(self) -> list[tuple[type, str, Any]]:
        from moto.awslambda.models import LambdaBackend

        add, get, remove = (
            LambdaBackend.add_permission,
            LambdaBackend.get_policy,
            LambdaBackend.remove_permission,
        )

        def add_permission(
            backend: Any, function_name: str, qualifier: str | None, raw: str
        ) -> dict[str, Any]:
            policy = _policy(backend, function_name, qualifier, create=True)
            if policy is None:
                return add(backend, function_name, qualifier, raw)  # type: ignore[arg-type]
            statement, _revision = policy.add_statement(raw, _split(function_name, qualifier)[1])
            return statement

        def get_policy(backend: Any, function_name: str, qualifier: str | None = None) -> str:
            policy = _policy(backend, function_name, qualifier, create=False)
            if policy is None:
                return get(backend, function_name, qualifier)
            return policy.wire_format()

        def remove_permission(
            backend: Any, function_name: str, sid: str, revision: str = ""
        ) -> None:
            policy = _policy(backend, function_name, None, create=False)
            if policy is None:
                remove(backend, function_name, sid, revision)
            else:
                policy.del_statement(sid, revision)

        return [
            (LambdaBackend, "add_permission", add_permission),
            (LambdaBackend, "get_policy", get_policy),
            (LambdaBackend, "remove_permission", remove_permission),
        ]
