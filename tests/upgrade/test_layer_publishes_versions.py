"""A change to the shared layer alone publishes a new version of every function.

SAM's ``AutoPublishAlias`` names each ``AWS::Lambda::Version`` after a hash (its logical id ends
in it): a new logical id is a new version that "live" moves to; the same id is no new version at
all, whatever ``$LATEST`` now runs. By default that hash covers the function's code location
and environment only, so a layer-only change would reach ``$LATEST`` and never ``live``
(aws/serverless-application-model#3610). template.yaml sets ``AutoPublishAliasAllProperties``
(Globals) and ``PublishLambdaVersion`` on ``RotationCoreLayer``.

The test packages and translates the template as ``sam deploy`` does (content-hashed S3 keys,
the SAM transform) before and after a one-line change in ``functions/shared/rotation_core``.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from rotator.aws_local.stack import PROJECT_ROOT, load_template, package, translate


class _Bucket:
    """What :func:`package` asks of S3: ``put_object`` (the keys are content hashes)."""

    def __init__(self) -> None:
        self.keys: set[str] = set()

    def put_object(self, *, Bucket: str, Key: str, Body: bytes) -> None:
        self.keys.add(Key)


def _versions(root: Path) -> dict[str, str]:
    """Function logical id -> logical id of the version SAM publishes for it."""
    packaged = package(load_template(root / "template.yaml"), _Bucket(), "artifacts", root=root)
    translated = translate(packaged.template, {"NamePrefix": "app"})
    resources: dict[str, Any] = translated["Resources"]
    found: dict[str, str] = {}
    for logical_id, resource in resources.items():
        if resource["Type"] == "AWS::Lambda::Version":
            function = resource["Properties"]["FunctionName"]["Ref"]
            found[function] = logical_id
    return found


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of what sam build reads: the template, the functions, the state machines."""
    shutil.copy(PROJECT_ROOT / "template.yaml", tmp_path / "template.yaml")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for directory in ("functions", "statemachine"):
        shutil.copytree(PROJECT_ROOT / directory, tmp_path / directory, ignore=ignore)
    return tmp_path


def test_every_function_is_published_with_a_version(project: Path) -> None:
    # GIVEN the template
    functions = {
        logical_id
        for logical_id, resource in load_template(project / "template.yaml")["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }
    # WHEN it is translated THEN each function has its version (AutoPublishAlias in Globals)
    assert set(_versions(project)) == functions


def test_the_same_code_publishes_no_new_version(project: Path) -> None:
    # GIVEN a translated template WHEN nothing changed and it is translated again
    # THEN every version keeps its logical id (no spurious versions on a no-op deploy)
    assert _versions(project) == _versions(project)


def test_a_layer_only_change_publishes_a_new_version_of_every_function(project: Path) -> None:
    # GIVEN the versions SAM publishes for the code as it is
    before = _versions(project)
    # WHEN only the layer changes (one line in rotation_core; no function directory is touched)
    module = project / "functions" / "shared" / "rotation_core" / "models.py"
    module.write_text(module.read_text() + "\n# a layer-only change\n")
    after = _versions(project)
    # THEN every function gets a new version resource (a new logical id: "live" moves to it)
    assert set(after) == set(before)
    unchanged = sorted(f for f in before if before[f] == after[f])
    assert unchanged == [], f"a layer change publishes no new version of {unchanged}"


def test_a_function_change_publishes_only_that_strategys_functions(project: Path) -> None:
    # GIVEN the versions SAM publishes for the code as it is
    before = _versions(project)
    # WHEN only the router's own code changes
    handler = project / "functions" / "router" / "app.py"
    handler.write_text(handler.read_text() + "\n# a router-only change\n")
    after = _versions(project)
    # THEN the router gets a new version; the workers keep theirs
    changed = sorted(f for f in before if before[f] != after[f])
    assert changed == ["RouterFunction"]
