"""Execution names: deterministic per (secret, step, token, attempt), valid for Step Functions."""

from __future__ import annotations

import re

import pytest

from rotation_core.exceptions import InvalidSecretError
from rotation_core.router import execution_name, resolve_strategy

ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:app/db-AbCdEf"
UUID = "5f0e8b1e-3c2a-4d6f-9b7e-2a1c0d9e8f7a"
VALID_NAME = re.compile(r"[A-Za-z0-9_-]{1,80}")


def test_the_same_step_and_token_give_the_same_name() -> None:
    assert execution_name("setSecret", UUID, ARN, 1) == execution_name("setSecret", UUID, ARN, 1)


def test_the_name_shows_the_step_and_the_token() -> None:
    assert execution_name("setSecret", UUID, ARN, 1).startswith(f"setSecret-{UUID}-")


def test_another_secret_with_the_same_token_gets_another_name() -> None:
    other = ARN.replace("app/db", "app/other")
    assert execution_name("setSecret", UUID, ARN, 1) != execution_name("setSecret", UUID, other, 1)


def test_later_attempts_get_new_names() -> None:
    names = {execution_name("testSecret", UUID, ARN, n) for n in range(1, 26)}
    assert len(names) == 25


@pytest.mark.parametrize("token", [UUID, "a" * 64, "tok/with:odd*chars+=" * 3, "x" * 32])
def test_names_are_always_valid_step_functions_names(token: str) -> None:
    for step in ("createSecret", "finishSecret"):
        assert VALID_NAME.fullmatch(execution_name(step, token, ARN, 25))


def test_a_strategy_tag_wins_over_the_secret_shape() -> None:
    assert (
        resolve_strategy({"RotationStrategy": "single-user"}, {"masterarn": "x"}) == "single-user"
    )


def test_a_master_arn_means_alternating_users() -> None:
    assert resolve_strategy({}, {"masterarn": ARN}) == "alternating-users"


def test_no_tag_and_no_master_means_single_user() -> None:
    assert resolve_strategy({}, {"username": "app"}) == "single-user"


def test_an_unknown_strategy_tag_is_rejected_by_name() -> None:
    with pytest.raises(InvalidSecretError, match="RotationStrategy"):
        resolve_strategy({"RotationStrategy": "yolo"}, {})
