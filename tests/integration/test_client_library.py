"""The client library's tests, collected by the repository's test run.

The tests live with the package they test (clients/python/tests/unit: the retry loop on fakes;
clients/python/tests/integration: real servers while rotations run). This module only brings
them under tests/, where the integration fixtures (servers, test CA, local runtime) are.
Owner: clientlib.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from pathlib import Path

import pytest

_CLIENT = Path(__file__).resolve().parents[2] / "clients" / "python"
# tests import their helpers by file name; src only matters when the package is not installed
for _path in (_CLIENT / "tests" / "unit", _CLIENT / "tests" / "integration", _CLIENT / "src"):
    if str(_path) not in sys.path:
        sys.path.append(str(_path))

#: what the package and its tests need besides the repository's own dependencies (dev extras)
_NEEDS = {
    "aws_secretsmanager_caching": "aws-secretsmanager-caching",
    "psycopg": "psycopg[binary]",
    "sqlalchemy": "SQLAlchemy",
}
_missing = [dist for module, dist in _NEEDS.items() if importlib.util.find_spec(module) is None]
if _missing:
    _reason = (
        f"the client library's tests need {', '.join(_missing)} "
        "(add them to the dev extras of pyproject.toml)"
    )
    if os.environ.get("CI") == "true":
        raise ImportError(_reason + "; CI=true, so this is a failure rather than a skip")
    pytest.skip(_reason, allow_module_level=True)

_MODULES = (
    "test_rc_classify",
    "test_rc_retry_loop",
    "test_rc_values",
    "test_rc_sources",
    "test_rc_passthrough",
    "test_rc_live_rotation",
)


def _is_fixture(value: object) -> bool:
    return hasattr(value, "_fixture_function_marker") or hasattr(value, "_pytestfixturefunction")


for _name in _MODULES:
    for _attr, _value in vars(importlib.import_module(_name)).items():
        if not (_attr.startswith("test_") or _is_fixture(_value)):
            continue
        if _attr in globals():
            raise RuntimeError(f"{_name}.{_attr} would hide a test or fixture of the same name")
        globals()[_attr] = _value
