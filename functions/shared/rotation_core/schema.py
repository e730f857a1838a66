"""JSON Schema validation that names the offending field and never echoes a value.

jsonschema's own messages quote the instance (``'hunter2' is too short``), which would put a
password into an exception; :func:`validate` rebuilds the message from the failing keyword.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from rotation_core.exceptions import RotationError

_SCHEMA_PACKAGE = "rotation_core.schemas"


@cache
def load_schema(name: str) -> dict[str, Any]:
    """Load ``schemas/<name>.schema.json`` shipped with this package."""
    text = resources.files(_SCHEMA_PACKAGE).joinpath(f"{name}.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@cache
def _validator(name: str) -> Any:
    from jsonschema import Draft202012Validator

    schema = load_schema(name)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def validate(
    instance: Any, schema_name: str, *, what: str, error: type[RotationError]
) -> dict[str, Any]:
    """Validate ``instance``; raise ``error`` naming the first bad field of ``what``.

    Errors are reported in a stable order (by field path) so the same input always names
    the same field.
    """
    if not isinstance(instance, dict):
        raise error(f"{what} must be a JSON object, got {type(instance).__name__}")
    problems = sorted(
        _validator(schema_name).iter_errors(instance),
        key=lambda e: (list(map(str, e.absolute_path)), e.validator),
    )
    if problems:
        raise error(describe(problems[0], what))
    return instance


def describe(problem: Any, what: str) -> str:
    """Turn a jsonschema ``ValidationError`` into a message that names the field only."""
    path = ".".join(str(p) for p in problem.absolute_path)
    keyword = problem.validator
    expected = problem.validator_value
    if keyword == "required":
        missing = [k for k in expected if k not in problem.instance]
        field = ".".join(filter(None, [path, missing[0] if missing else "?"]))
        return f"{what} field '{field}' is required"
    field = path or "(root)"
    reason = _REASONS.get(keyword, lambda _v: "is not valid")(expected)
    if keyword in ("oneOf", "anyOf"):
        reason = _one_of_reason(problem)
    return f"{what} field '{field}' {reason}"


def _one_of_reason(problem: Any) -> str:
    options = []
    for sub in problem.validator_value:
        if "type" in sub:
            options.append(sub["type"])
        elif "enum" in sub:
            options.append("one of " + ", ".join(map(str, sub["enum"])))
    return "must be " + " or ".join(options) if options else "is not valid"


_REASONS: dict[str, Any] = {
    "type": lambda v: f"must be of type {v if isinstance(v, str) else ' or '.join(v)}",
    "enum": lambda v: "must be one of " + ", ".join(map(str, v)),
    "const": lambda v: f"must be {v}",
    "minLength": lambda v: "must not be empty" if v == 1 else f"must be at least {v} characters",
    "maxLength": lambda v: f"must be at most {v} characters",
    "pattern": lambda _v: "contains characters that are not allowed",
    "minimum": lambda v: f"must be at least {v}",
    "maximum": lambda v: f"must be at most {v}",
    "minProperties": lambda v: f"must have at least {v} keys",
    "additionalProperties": lambda _v: "has keys that are not allowed",
}
