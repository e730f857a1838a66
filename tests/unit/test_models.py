"""Password policy: per deployment, overridable per secret by tags, always validated."""

from __future__ import annotations

import pytest

from rotation_core.exceptions import InvalidConfigurationError, UnsupportedEngineError
from rotation_core.models import PasswordPolicy, engine_family


def test_tags_override_the_deployment_policy() -> None:
    policy = PasswordPolicy.resolve(
        PasswordPolicy(length=32, exclude_characters="/"),
        {"RotationPasswordLength": "48", "RotationExcludeCharacters": "#%"},
    )
    assert policy == PasswordPolicy(length=48, exclude_characters="#%")


def test_without_tags_the_deployment_policy_applies() -> None:
    defaults = PasswordPolicy(length=40, exclude_characters="x")
    assert PasswordPolicy.resolve(defaults, {"Team": "orders"}) == defaults


@pytest.mark.parametrize("value", ["abc", "8", "4096", "-1", ""])
def test_a_bad_length_tag_names_the_tag(value: str) -> None:
    with pytest.raises(InvalidConfigurationError, match="RotationPasswordLength"):
        PasswordPolicy.resolve(PasswordPolicy(), {"RotationPasswordLength": value})


def test_the_policy_round_trips_through_the_step_input() -> None:
    policy = PasswordPolicy(length=20, exclude_characters="ab")
    assert PasswordPolicy.from_input(policy.to_input()) == policy


@pytest.mark.parametrize(
    ("engine", "family"),
    [
        ("postgres", "postgres"),
        ("aurora-postgresql", "postgres"),
        ("mysql", "mysql"),
        ("mariadb", "mysql"),
        ("aurora-mysql", "mysql"),
    ],
)
def test_engines_map_to_their_protocol_family(engine: str, family: str) -> None:
    assert engine_family(engine) == family


def test_an_unknown_engine_is_unsupported() -> None:
    with pytest.raises(UnsupportedEngineError, match="engine"):
        engine_family("sqlserver")
